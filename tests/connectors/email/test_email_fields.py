"""The pieces webhook connectors reuse: email_message on provider-split fields (Postmark,
Mailgun, SendGrid give headers, bodies and attachments already apart), split_headers,
html_to_text, strip_reply."""

from __future__ import annotations

import pytest

from connectors.email import (
    EmailAttachment,
    EmailFields,
    email_message,
    html_to_text,
    split_headers,
    strip_reply,
)
from tests.connectors.email.helpers import AT, MARIA, OPTIONS, TOKEN, one

POSTMARK_LIKE = EmailFields(
    headers=(
        ("From", "Maria Lopez <maria.lopez@example.com>"),
        ("To", "Acme Support <support+con_01jdq3x8k2m4n6p8r0t2v4x6z8@acme.test>"),
        ("Subject", "Re: Order A-1001 arrived broken"),
        ("Date", "Mon, 23 Nov 2026 14:20:37 +0100"),
        ("Message-ID", "<CAJ8mX3tN5cQ2rS4uW6yA8bD0fH2jK4mP@mail.gmail.com>"),
        ("In-Reply-To", f"<{TOKEN}.8f3a2c@acme.test>"),
        ("References", f"<{MARIA}> <{TOKEN}.8f3a2c@acme.test>"),
    ),
    text="Yes, the address is the same. Thank you!\n\nMaria\n\n"
    "On Mon, Nov 23, 2026 at 12:03 PM Acme Support <support@acme.test>\nwrote:\n\n> Hi Maria,\n",
    html="<div>Yes, the address is the same.</div>",
    attachments=(EmailAttachment(name="lid.png", content_type="image/png", content=b"\x89PNG"),),
)


def test_provider_fields_make_the_same_message_as_the_raw_mail() -> None:
    parsed = email_message(POSTMARK_LIKE, options=OPTIONS, received_at=AT, via="postmark")
    [message] = parsed.messages
    raw = one("reply_gmail.eml")
    for field in ("external_id", "thread", "subject", "sent_at", "text", "references", "sender"):
        assert getattr(message, field) == getattr(raw, field), field
    assert message.conversation_hint == TOKEN
    assert message.attributes["via"] == "postmark"
    [photo] = message.attachments
    assert parsed.blobs[str(photo.blob)] == b"\x89PNG"


def test_provider_fields_without_from_are_quarantined_as_json() -> None:
    fields = EmailFields(headers=(("Subject", "hello"),), text="hi")
    parsed = email_message(fields, options=OPTIONS, received_at=AT, via="mailgun")
    [held] = parsed.quarantined
    assert held.content_type == "application/json"
    assert b'"hello"' in held.raw
    assert held.summary == {"subject": "hello"}


def test_provider_fields_bounce_from_their_report_attachments() -> None:
    status = b"Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; bob@example.com\nAction: failed\n"
    status += b"Status: 5.1.1\n"
    original = b"Message-ID: <con_01abc.1@acme.test>\nTo: bob@example.com\n\nhello\n"
    fields = EmailFields(
        headers=(("From", "Mail Delivery Subsystem <mailer-daemon@googlemail.com>"),),
        attachments=(
            EmailAttachment(None, "message/delivery-status", status),
            EmailAttachment(None, "message/rfc822", original),
        ),
    )
    [message] = email_message(fields, options=OPTIONS, received_at=AT, via="sendgrid").messages
    assert message.kind == "bounce"
    assert message.references == ["con_01abc.1@acme.test"]
    assert message.conversation_hint == "con_01abc"
    assert message.attributes["bounce"]["final_recipient"] == "bob@example.com"
    assert [a.name for a in message.attachments] == ["attachment-1.txt", "attachment-2.eml"]


def test_a_daemon_bounce_without_a_report_is_still_a_bounce() -> None:
    fields = EmailFields(
        headers=(
            ("From", "MAILER-DAEMON@mail.example.org"),
            ("Subject", "failure notice"),
            ("In-Reply-To", "<con_01abc.2@acme.test>"),
        ),
        text="Hi. This is the qmail-send program at mail.example.org.\n",
    )
    [message] = email_message(fields, options=OPTIONS, received_at=AT, via="raw").messages
    assert message.kind == "bounce"
    assert message.sender.identities == []  # the daemon is nobody's identity
    assert message.conversation_hint == "con_01abc"


def test_split_headers_unfolds_and_keeps_order() -> None:
    block = "Received: from a\r\n\tby b\r\nDKIM-Signature: v=1;\r\n b=xyz\r\nTo: x@y.z\r\n\r\nbody"
    assert split_headers(block) == (
        ("Received", "from a\tby b"),
        ("DKIM-Signature", "v=1; b=xyz"),
        ("To", "x@y.z"),
    )
    assert split_headers(b"Subject: caf\xc3\xa9\n") == (("Subject", "café"),)


def test_html_to_text_keeps_breaks_drops_scripts_and_marks_quotes() -> None:
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<div>Hello &amp; welcome,<br>second&nbsp;line</div><script>alert(1)</script>"
        "<blockquote>quoted <b>text</b><br>more</blockquote><pre>  a\n  b</pre>"
        "<ul><li>one</li><li>two</li></ul><img src='x.png' alt='logo'></body></html>"
    )
    assert html_to_text(html) == (
        "Hello & welcome,\nsecond line\n> quoted text\n> more\n  a\n  b\none\ntwo\n[logo]"
    )


@pytest.mark.parametrize(
    ("text", "new"),
    [
        ("Thanks!\n\nOn Mon, 23 Nov 2026, Jon <j@acme.test> wrote:\n> old\n", "Thanks!"),
        ("Danke\n\nAm 23.11.2026 um 10:00 schrieb Jon <j@acme.test>:\n> alt\n", "Danke"),
        ("Merci\n\nLe lun. 23 nov. 2026, Jon a écrit :\n> ancien\n", "Merci"),
        ("Ok\n-----Original Message-----\nFrom: Jon\nSent: Monday\n\nold", "Ok"),
        ("Ok\n\nFrom: Jon <j@acme.test>\nSent: Monday\nTo: Peter\n\nold", "Ok"),
        ("Ok\n\nVon: Jon\nGesendet: Montag\n\nalt", "Ok"),
        ("Fine\n-- \nPeter\nContoso", "Fine"),
        ("Yes\n\nSent from my Galaxy\n", "Yes"),
        ("Yes\n\nGet Outlook for iOS\n", "Yes"),
        (
            "See inline\n> question 1\nanswer 1\n> question 2\nanswer 2",
            "See inline\nanswer 1\nanswer 2",
        ),
        ("Jon wrote:\n> old\nnew", "new"),
        ("> only a quote", "> only a quote"),
        ("---------- Forwarded message ---------\nFrom: Bob\nDate: Mon\n\nhi", None),
        (
            "From: the warehouse, nothing yet.\nSent it twice?",
            "From: the warehouse, nothing yet.\nSent it twice?",
        ),
    ],
)
def test_strip_reply(text: str, new: str | None) -> None:
    assert strip_reply(text) == (text.strip() if new is None else new)
