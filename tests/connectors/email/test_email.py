"""parse_email on recorded real-shaped mail, one fixture at a time."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.email import EmailOptions, parse_email
from router.errors import ConfigError
from router.settings import load
from tests.connectors.conftest import fixture_bytes
from tests.connectors.email.helpers import AT, MARIA, OPTIONS, TOKEN, one, parse


def test_plain_mail_is_one_verified_message_on_its_own_thread() -> None:
    message = one("plain.eml")
    assert (message.channel, message.source, message.kind) == ("email", "email", "message")
    assert message.external_id == MARIA
    assert message.thread == MARIA
    assert message.sender.name == "Maria Lopez"
    [identity] = message.sender.identities
    assert (identity.kind, identity.value, identity.verified) == (
        "email",
        "maria.lopez@example.com",
        True,
    )
    assert message.subject == "Order A-1001 arrived broken"
    assert message.sent_at == datetime(2026, 11, 23, 9, 58, 1, tzinfo=UTC)
    assert message.text.startswith("Hello,\n\nmy order A-1001 arrived today")
    assert "before packing.\n" in message.text  # quoted-printable soft break joined
    assert message.references == []
    assert message.conversation_hint is None
    assert message.inbox == "email:support@acme.test"
    assert message.attributes == {
        "via": "raw",
        "to": ["support@acme.test"],
        "email_auth": {
            "trust_from": "always",
            "verified": True,
            "authenticated": False,
            "reason": "no DMARC pass or aligned DKIM pass",
            "checks": [],
        },
    }


@pytest.mark.parametrize(
    ("name", "sender", "subject", "text"),
    [
        ("subject_iso2022jp.eml", "田中 健二", "注文した商品が届きません", "注文番号A-2040の商品"),
        (
            "subject_koi8r.eml",
            "Ольга Смирнова",
            "Не работает доставка",  # noqa: RUF001 — Cyrillic on purpose: KOI8-R
            "Заказ A-3310 застрял",
        ),
        (
            "subject_utf8_b.eml",
            "Lukas Meier",
            "Rückfrage zur Bestellung A-1188 – Lieferung nach Zürich",  # noqa: RUF001 — en dash
            "Lieferung nach Zürich",
        ),
        (
            "subject_utf8_q.eml",
            "Chloé Dubois",
            "Problème de facturation – commande A-9012",  # noqa: RUF001 — en dash
            "129,00 € au lieu de 119,00 €",
        ),
        ("latin1_declared.eml", "José García", "Devolución del pedido A-5120", "¿Cómo lo envío?"),
        ("latin1_undeclared.eml", "Joao Silva", "Encomenda A-7734", "cabo de alimentação"),
    ],
)
def test_charsets_of_subjects_names_and_bodies(
    name: str, sender: str, subject: str, text: str
) -> None:
    message = one(name)
    assert message.sender.name == sender
    assert message.subject == subject
    assert text in message.text
    assert "\ufffd" not in message.text


def test_multipart_alternative_prefers_the_text_and_keeps_the_html() -> None:
    raw = fixture_bytes("email", "alternative.eml")
    parsed = parse(raw)
    [message] = parsed.messages
    assert "Plain text wins over HTML." in message.text
    assert "HTML version" not in message.text
    html = parsed.blobs[message.attributes["html_blob"]].decode()
    assert "<b>A-6620</b>" in html
    assert "HTML version" in html


def test_html_only_mail_gets_its_text_from_the_html() -> None:
    parsed = parse(fixture_bytes("email", "html_only.eml"))
    [message] = parsed.messages
    assert message.text == (
        "Guten Tag,\n"
        'gilt das Angebot "Wasserkocher & Toaster" auch für Bestellungen > 100 €?\n'
        "Vielen Dank!\n"
        "Lea Wagner"
    )
    assert "<script" in parsed.blobs[message.attributes["html_blob"]].decode()


def test_attachments_and_inline_images_are_blobs() -> None:
    parsed = parse(fixture_bytes("email", "attachments.eml"))
    [message] = parsed.messages
    image, pdf = message.attachments
    assert (image.name, image.content_type, image.inline) == ("lid.png", "image/png", True)
    assert (pdf.name, pdf.content_type, pdf.inline) == (
        "Lieferschein Müller.pdf",
        "application/pdf",
        False,
    )
    assert parsed.blobs[str(pdf.blob)].startswith(b"%PDF-1.4")
    assert parsed.blobs[str(image.blob)].startswith(b"\x89PNG")
    assert image.size == len(parsed.blobs[str(image.blob)])
    assert hashlib.sha256(parsed.blobs[str(pdf.blob)]).hexdigest() == pdf.blob
    assert message.attributes["inline_images"] == {"ii_lq3x9k2a0": image.blob}
    assert 'src="cid:ii_lq3x9k2a0"' in parsed.blobs[message.attributes["html_blob"]].decode()
    assert message.text.startswith("Here is a photo of the lid:")


def test_an_attachment_over_the_limit_is_metadata_only() -> None:
    small = EmailOptions(own_addresses=OPTIONS.own_addresses, max_attachment_bytes=100)
    parsed = parse(fixture_bytes("email", "attachments.eml"), small)
    [message] = parsed.messages
    image, pdf = message.attachments
    assert image.blob in parsed.blobs  # 73 bytes: kept
    assert pdf.blob is None
    assert pdf.size == 193
    assert message.attributes["attachments_dropped"] == [
        {"name": "Lieferschein Müller.pdf", "size": 193, "reason": "over max_attachment_bytes"}
    ]
    assert all(
        len(content) <= 100 or key == message.attributes["html_blob"]
        for key, content in parsed.blobs.items()
    )


@pytest.mark.parametrize(
    ("name", "new", "quoted"),
    [
        ("reply_gmail.eml", "Yes, the address is the same. Thank you!\n\nMaria", "Jon from Acme"),
        (
            "reply_outlook.eml",
            "Hi Jon,\n\nthe VAT number is DE123456789. Please send the corrected invoice to "
            "accounts@contoso.example.\n\nKind regards\nPeter Schmidt\n"
            "Contoso GmbH | Straße des 17. Juni 1 | Berlin",
            "could you tell us your VAT number?",
        ),
        (
            "reply_apple.eml",
            "The label printed fine, I will drop the parcel off tomorrow.",
            "here is your return label.",
        ),
        (
            "reply_signature.eml",
            "Thanks, that answers it. I will keep the receipt.",
            "Svensk Design AB",
        ),
    ],
)
def test_replies_keep_the_new_text_and_the_full_text_aside(
    name: str, new: str, quoted: str
) -> None:
    message = one(name)
    assert message.text == new
    assert quoted not in message.text
    assert quoted in message.attributes["full_text"]
    assert message.attributes["full_text"].startswith(new.split("\n", maxsplit=1)[0])


def test_a_reply_references_in_reply_to_then_references_newest_first() -> None:
    message = one("reply_gmail.eml")
    assert message.references == [f"{TOKEN}.8f3a2c@acme.test", MARIA]
    assert message.thread == message.external_id
    assert message.conversation_hint == TOKEN


@pytest.mark.parametrize("name", ["token_subject.eml", "token_plus.eml"])
def test_a_conversation_token_in_the_subject_or_a_plus_address(name: str) -> None:
    message = one(name)
    assert message.conversation_hint == TOKEN
    assert message.references == []


def test_a_plus_address_token_counts_only_on_our_own_addresses() -> None:
    raw = fixture_bytes("email", "token_plus.eml").replace(b"@acme.test", b"@elsewhere.test")
    [message] = parse(raw).messages
    assert message.conversation_hint is None


def test_a_subject_without_a_token_names_no_conversation() -> None:
    message = one("same_subject.eml")
    assert message.subject == one("plain.eml").subject
    assert (message.conversation_hint, message.references) == (None, [])
    assert message.thread == message.external_id != MARIA


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("auto_reply_rfc3834.eml", "Auto-Submitted: auto-replied"),
        ("auto_reply_exchange.eml", "Auto-Submitted: auto-generated"),
        ("auto_reply_x_autoreply.eml", "X-Autoreply"),
        ("auto_reply_precedence.eml", "Precedence: auto_reply"),
        ("out_of_office.eml", "out-of-office subject"),
    ],
)
def test_auto_replies_are_recorded_as_such(name: str, reason: str) -> None:
    message = one(name)
    assert message.kind == "auto_reply"
    assert message.attributes["auto_reply"] == reason
    assert message.sender.identities[0].verified


def test_x_auto_response_suppress_alone_is_not_an_auto_reply() -> None:
    assert one("suppress_only.eml").kind == "message"


def test_a_postfix_bounce_joins_the_bounced_message_and_is_flagged() -> None:
    message = one("bounce_postfix.eml")
    assert message.kind == "bounce"
    assert message.attributes["flagged"] is True
    assert message.attributes["bounce"] == {
        "action": "failed",
        "status": "5.2.2",
        "diagnostic": "smtp; 552 5.2.2 <maria.lopez@example.com>: Mailbox full",
        "final_recipient": "maria.lopez@example.com",
        "reporting_mta": "dns; mx1.acme.test",
    }
    assert message.references[:2] == [f"{TOKEN}.8f3a2c@acme.test", MARIA]
    assert message.conversation_hint == TOKEN
    # never MAILER-DAEMON: the unreachable recipient, unverified
    assert message.sender.name is None
    [identity] = message.sender.identities
    assert (identity.value, identity.verified) == ("maria.lopez@example.com", False)
    assert [a.content_type for a in message.attachments] == [
        "message/delivery-status",
        "message/rfc822",
    ]


def test_an_exchange_bounce_reads_its_rfc822_headers_part() -> None:
    message = one("bounce_exchange.eml")
    assert message.kind == "bounce"
    assert message.attributes["bounce"]["status"] == "5.1.10"
    assert message.attributes["bounce"]["diagnostic"] == (
        "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
    )
    assert message.references == [
        "con_01jdq9z2y4x6w8v0u2t4s6r8q0.91b4@acme.test",
        "AM6PR05MB5921A1B2C3D4E5F6A7B8C9D0E1F2A3B4@AM6PR05MB5921.eurprd05.prod.outlook.com",
    ]
    assert message.sender.identities[0].value == "accounts@contoso.example"
    assert not message.sender.identities[0].verified
    assert message.text.startswith("Your message to accounts@contoso.example couldn't")


def test_missing_from_is_quarantined_with_the_raw_mail() -> None:
    raw = fixture_bytes("email", "missing_from.eml")
    parsed = parse(raw)
    assert parsed.messages == []
    [held] = parsed.quarantined
    assert held.reason == "missing From header"
    assert (held.raw, held.content_type) == (raw, "message/rfc822")
    assert held.summary["subject"] == "Scanned document"


def test_a_broken_boundary_is_quarantined() -> None:
    raw = fixture_bytes("email", "broken_boundary.eml")
    [held] = parse(raw).quarantined
    assert held.reason.startswith("broken MIME structure: StartBoundaryNotFoundDefect")
    assert held.raw == raw
    assert held.summary["from"] == "Shop Builder <noreply@shop-builder.example>"


def test_a_missing_close_boundary_is_still_read() -> None:
    raw = fixture_bytes("email", "alternative.eml").replace(
        b"--00000000000073b91d05f1e9a4d6--", b""
    )
    [message] = parse(raw).messages
    assert "Plain text wins" in message.text
    assert "CloseBoundaryNotFoundDefect" in message.attributes["mime_defects"]


def test_mail_from_our_own_address_is_ignored_as_a_loop() -> None:
    raw = fixture_bytes("email", "plain.eml").replace(
        b"From: Maria Lopez <maria.lopez@example.com>", b"From: Acme <Support+x@ACME.test>"
    )
    parsed = parse(raw)
    assert (parsed.messages, parsed.quarantined, parsed.ignored) == ([], [], ["own_address"])


def test_without_a_message_id_the_id_is_the_content_hash() -> None:
    raw = fixture_bytes("email", "plain.eml").replace(
        b"Message-ID: <CAJ8mX3vQk2Lp9dR7sT1uW4yZ6bN0cF5hG@mail.gmail.com>\n", b""
    )
    [message] = parse(raw).messages
    assert message.external_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert parse(raw).messages[0].external_id == message.external_id
    assert message.thread == message.external_id


def test_a_date_in_the_future_is_not_believed() -> None:
    raw = fixture_bytes("email", "plain.eml").replace(b"Mon, 23 Nov 2026", b"Tue, 23 Nov 2038")
    [message] = parse(raw).messages
    assert message.sent_at is None


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (b"Auto-Submitted: auto-notified", "auto_reply"),
        (b"Auto-Submitted: no", "message"),
        (b"X-Autorespond: Vacation", "auto_reply"),
        (b"X-Autoreply: no", "message"),
        (b"X-Autogenerated: Reply", "auto_reply"),
        (b"Precedence: junk", "auto_reply"),
        (b"Precedence: bulk", "auto_reply"),
        (b"Precedence: list", "message"),
    ],
)
def test_auto_reply_markers(header: bytes, kind: str) -> None:
    raw = fixture_bytes("email", "plain.eml").replace(b"MIME-Version: 1.0\n", header + b"\n")
    [message] = parse(raw).messages
    assert message.kind == kind


def test_settings_check_the_own_addresses(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text('[connectors.email]\nown_addresses = ["support", "help+x@acme.test"]\n')
    with pytest.raises(ConfigError) as raised:
        load(path, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    assert raised.value.problems == [
        "connectors.email.own_addresses (config file): 'support' is not an email address"
    ]
    env = {
        "OMNIROUTE_DATA_DIR": str(tmp_path),
        "OMNIROUTE_CONNECTORS_EMAIL_OWN_ADDRESSES": "Support@ACME.test,billing@acme.test",
    }
    settings = load(env=env).connectors["email"]
    assert settings.options.own_addresses == ("support@acme.test", "billing@acme.test")
    assert settings.max_body_bytes == 25 * 1024 * 1024


def test_a_read_receipt_is_an_auto_reply() -> None:
    raw = (
        b"From: Peter Schmidt <p.schmidt@contoso.example>\n"
        b"To: support@acme.test\n"
        b"Subject: Read: Invoice 2026-311\n"
        b"Message-ID: <mdn-1@contoso.example>\n"
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=r\n\n"
        b"--r\nContent-Type: text/plain\n\nYour message was read.\n"
        b"--r\nContent-Type: message/disposition-notification\n\n"
        b"Final-Recipient: rfc822;p.schmidt@contoso.example\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\n"
        b"--r--\n"
    )
    [message] = parse(raw).messages
    assert (message.kind, message.attributes["auto_reply"]) == ("auto_reply", "read receipt")
    assert message.text == "Your message was read."


def test_a_reply_to_other_than_the_sender_is_an_unverified_suggestion() -> None:
    raw = fixture_bytes("email", "plain.eml").replace(
        b"MIME-Version: 1.0\n", b"Reply-To: Maria at work <M.Lopez@Work.example>\n"
    )
    [message] = parse(raw).messages
    sender, reply_to = message.sender.identities
    assert (sender.value, sender.verified) == ("maria.lopez@example.com", True)
    assert (reply_to.value, reply_to.verified) == ("m.lopez@work.example", False)
    assert message.attributes["reply_to"] == "m.lopez@work.example"
    ours = fixture_bytes("email", "plain.eml").replace(
        b"MIME-Version: 1.0\n", b"Reply-To: support+con_x@acme.test, maria.lopez@example.com\n"
    )
    assert len(parse(ours).messages[0].sender.identities) == 1


def test_an_envelope_recipient_carries_a_plus_address_token() -> None:
    raw = fixture_bytes("email", "plain.eml")
    envelope = ["support+con_01envelope@acme.test"]
    [message] = parse_email(
        raw, options=OPTIONS, received_at=AT, via="smtp", recipients=envelope
    ).messages
    assert message.conversation_hint == "con_01envelope"
    assert message.attributes["via"] == "smtp"
