"""What every inbound-email webhook test checks against the running app, once.

The Postmark, Mailgun and SendGrid fixtures carry the same mails (see each fixtures
README.txt): ``plain`` and ``attachments`` from Maria, ``html_only`` from Jonas,
``reply`` (Maria answering the agent's reply to ``plain``), ``auto_reply`` (Jonas's
out-of-office answering the agent's reply to ``html_only``), ``raw`` (Maria's invoice,
raw MIME: an ISO-8859-1 subject and body and a PDF) and ``spoofed`` (someone else writing
Maria's address in From, without the provider finding a passing DMARC or aligned DKIM
verdict for it). Each provider's test module runs
``SharedMails`` with a ``Post`` that sends a fixture the way that provider does
(credentials, signatures).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from tests.connectors.conftest import AUTH, Client, customer_of, history

Post = Callable[[str], Awaitable[tuple[int, Any]]]
"""Sends one fixture by name; the HTTP status and the decoded answer."""

MARIA = "email:maria.lopez@example.com"
JONAS = "email:jonas.weber@example.net"
PLAIN_ID = "CAKmaria.1001@mail.example.com"


async def stored(client: Client, identity: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The customer owning the verified ``identity`` and their history, newest first."""
    customer = await customer_of(client, identity)
    assert customer is not None, f"no customer with {identity}"
    return customer, await history(client, customer["customer_id"])


async def accepted(post: Post, name: str, **counts: int) -> dict[str, Any]:
    """Posts ``name``; it must answer 200 with ``counts`` (default: one message accepted)."""
    status, answer = await post(name)
    assert status == 200, answer
    for key, value in (counts or {"accepted": 1}).items():
        assert answer[key] == value, (key, answer)
    return dict(answer)


async def sender_of(client: Client, conversation_id: str) -> dict[str, Any]:
    """The customer a conversation belongs to."""
    response = await client.get(f"/v1/conversations/{conversation_id}", headers=AUTH)
    assert response.status == 200, await response.text()
    customer_id = (await response.json())["customer_id"]
    response = await client.get(f"/v1/customers/{customer_id}", headers=AUTH)
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def nothing_stored(client: Client) -> None:
    assert await customer_of(client, MARIA) is None
    assert await customer_of(client, JONAS) is None


async def blob(client: Client, key: str) -> bytes:
    response = await client.get(f"/v1/attachments/{key}", headers=AUTH)
    assert response.status == 200, await response.text()
    return await response.read()


class SharedMails:
    """The shared mails, each stored as every inbound-email webhook must store it. A
    provider's test module subclasses this as ``TestSharedMails`` naming ``via`` (the
    message's ``via`` attribute), and defines a ``post`` fixture: its ``Post``."""

    via: ClassVar[str]

    async def test_plain_mail_is_stored(self, client: Client, post: Post) -> None:
        """Maria's mail: one verified email customer, one routed email message."""
        answer = await accepted(post, "plain")
        customer, [entry] = await stored(client, MARIA)
        assert customer["name"] == "Maria López"
        identity = {"kind": "email", "value": "maria.lopez@example.com", "verified": True}
        assert identity in customer["identities"]
        assert (entry["channel"], entry["source"], entry["kind"]) == ("email", "email", "message")
        assert entry["external_id"] == PLAIN_ID
        assert entry["subject"] == "Order A-1001 arrived broken"
        assert entry["text"].startswith("Hi,\n\nmy order A-1001 arrived today")
        assert entry["attributes"]["via"] == self.via
        assert entry["attributes"]["inbox"] == "email:support@acme.example"
        assert entry["attributes"]["email_auth"]["verified"] is True
        assert entry["message_id"] == answer["message_ids"][0]
        html = await blob(client, entry["attributes"]["html_blob"])
        assert html.startswith(b"<html><body><p>Hi,</p>")

    async def test_a_spoofed_from_is_a_suggestion_not_a_merge(
        self, client: Client, post: Post
    ) -> None:
        """Maria's address forged in From: stored and routed, but for a new customer who
        has it only as an unverified suggestion pointing at Maria; her history is hers."""
        await accepted(post, "plain")
        spoof = await accepted(post, "spoofed")
        maria, [entry] = await stored(client, MARIA)
        assert entry["external_id"] == PLAIN_ID
        other = await sender_of(client, spoof["conversation_ids"][0])
        assert other["customer_id"] != maria["customer_id"]
        assert not [i for i in other["identities"] if i["verified"]]
        [link] = other["suggested"]
        assert (link["identity"]["kind"], link["identity"]["value"]) == (
            "email",
            "maria.lopez@example.com",
        )
        assert link["other_customer_id"] == maria["customer_id"]
        [spoofed] = await history(client, other["customer_id"])
        assert spoofed["subject"] == "Change of delivery address"
        auth = spoofed["attributes"]["email_auth"]
        assert (auth["trust_from"], auth["verified"]) == ("authenticated", False)

    async def test_a_retried_post_is_stored_once(self, client: Client, post: Post) -> None:
        """The provider posting the same mail again: answered 200, stored once."""
        await accepted(post, "plain")
        await accepted(post, "plain", accepted=0, duplicates=1)
        _, entries = await stored(client, MARIA)
        assert len(entries) == 1

    async def test_html_only_mail(self, client: Client, post: Post) -> None:
        """A mail with only an HTML body: its text is derived, the HTML kept as a file."""
        await accepted(post, "html_only")
        customer, [entry] = await stored(client, JONAS)
        assert customer["name"] == "Jonas Weber"
        assert "the shoes I got (order B-2002) are a size too small." in entry["text"]
        assert "<" not in entry["text"]
        assert b"<b>B-2002</b>" in await blob(client, entry["attributes"]["html_blob"])

    async def test_attachments_are_served_by_hash(self, client: Client, post: Post) -> None:
        """The photo (inline in the HTML) and the invoice, kept as files served by hash."""
        await accepted(post, "attachments")
        _, [entry] = await stored(client, MARIA)
        photo, invoice = entry["attachments"]
        assert (photo["name"], photo["content_type"], photo["inline"]) == (
            "lamp.png",
            "image/png",
            True,
        )
        assert (invoice["name"], invoice["content_type"]) == ("invoice.pdf", "application/pdf")
        assert not invoice.get("inline", False)
        for attachment in (photo, invoice):
            content = await blob(client, attachment["blob"])
            assert hashlib.sha256(content).hexdigest() == attachment["blob"]
            assert len(content) == attachment["size"]
        assert (await blob(client, photo["blob"])).startswith(b"\x89PNG\r\n\x1a\n")
        assert (await blob(client, invoice["blob"])).startswith(b"%PDF-1.4")
        assert entry["attributes"]["inline_images"] == {"lamp1@mail.example.com": photo["blob"]}

    async def test_a_reply_joins_its_conversation(self, client: Client, post: Post) -> None:
        """Maria's reply names her first mail in References: same conversation, quote gone."""
        first = await accepted(post, "plain")
        reply = await accepted(post, "reply")
        assert reply["conversation_ids"] == first["conversation_ids"]
        _, [newest, oldest] = await stored(client, MARIA)
        assert newest["external_id"] == "CAKmaria.reply@mail.example.com"
        assert newest["conversation_id"] == oldest["conversation_id"]
        assert newest["text"] == "Yes, please send the replacement to the same address."
        assert "> Sorry about that!" in newest["attributes"]["full_text"]

    async def test_an_auto_reply_is_recorded_not_routed(self, client: Client, post: Post) -> None:
        """Jonas's out-of-office: recorded in his conversation, routed nowhere."""
        first = await accepted(post, "html_only")
        answer = await accepted(post, "auto_reply", accepted=0, recorded=1)
        assert answer["conversation_ids"] == first["conversation_ids"]
        _, [newest, _] = await stored(client, JONAS)
        assert newest["kind"] == "auto_reply"
        assert newest["attributes"]["auto_reply"].startswith("Auto-Submitted")

    async def test_the_raw_mime_variant(self, client: Client, post: Post) -> None:
        """The raw MIME variant: encoded-word subject, an ISO-8859-1 body, a PDF."""
        await accepted(post, "raw")
        _, [entry] = await stored(client, MARIA)
        assert entry["external_id"] == "CAKmaria.raw@mail.example.com"
        assert entry["subject"] == "Factura de la lámpara"
        assert entry["text"] == "La factura está adjunta.\n\nMaria"
        [pdf] = entry["attachments"]
        assert pdf["name"] == "factura.pdf"
        assert (await blob(client, pdf["blob"])).startswith(b"%PDF-1.4")


async def check_refused(client: Client, status: int, answer: Any, words: str) -> None:
    """A 401 naming the problem, and nothing stored."""
    assert status == 401, answer
    assert answer["error"]["code"] == "unauthorized"
    assert words in answer["error"]["message"]
    await nothing_stored(client)
