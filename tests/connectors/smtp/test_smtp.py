"""The SMTP listener: the real aiosmtpd listener the app starts on a free loopback port,
spoken to by the standard library's smtplib (in a thread: the app serves on this loop)."""

from __future__ import annotations

import asyncio
import smtplib
import socket
from pathlib import Path

import pytest
from aiohttp import web

from connectors.base import ConnectorContext
from connectors.smtp import SmtpConnector, SmtpSettings
from connectors.smtp.recipients import Recipients
from router.app import create_app
from router.clock import ManualClock
from router.errors import ConfigError
from router.http.keys import STORE
from router.settings import Settings, load
from tests.connectors.conftest import Client, customer_of, history, quarantine
from tests.connectors.smtp.mails import mail

MARIA = "email:maria@example.com"
LIMIT = 20_000

Reply = tuple[int, bytes]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def policy(smtp_port: int) -> str:
    return (
        "[connectors.smtp]\n"
        f"port = {smtp_port}\n"
        'own_addresses = ["support@acme.example"]\n'
        'accept_domains = ["help.acme.example"]\n'
        f"max_message_bytes = {LIMIT}\n"
        'hostname = "mx.omniroute.test"\n'
    )


def _transact(port: int, sender: str, recipients: list[str], raw: bytes) -> list[Reply]:
    """One mail transaction, every reply kept (smtplib raises only for DATA)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        replies: list[Reply] = [smtp.ehlo("client.example"), smtp.mail(sender)]
        replies += [smtp.rcpt(rcpt) for rcpt in recipients]
        try:
            replies.append(smtp.data(raw))
        except smtplib.SMTPDataError as exc:
            replies.append((exc.smtp_code, exc.smtp_error))
        return replies


async def transact(
    port: int,
    raw: bytes,
    *,
    recipients: tuple[str, ...] = ("support@acme.example",),
    sender: str = "maria@example.com",
) -> list[Reply]:
    return await asyncio.to_thread(_transact, port, sender, list(recipients), raw)


async def delivered(port: int, raw: bytes, **kwargs: tuple[str, ...]) -> bytes:
    """The DATA reply of a transaction that must succeed."""
    *_, (code, text) = await transact(port, raw, **kwargs)
    assert code == 250, text
    return text


# --- stored before the 250 -----------------------------------------------------------


async def test_a_mail_is_stored_before_its_250(client: Client, smtp_port: int) -> None:
    answer = await delivered(smtp_port, mail(message_id="<order-1@example.com>"))

    assert answer.startswith(b"2.0.0 OK stored as msg_")
    customer = await customer_of(client, MARIA)
    assert customer is not None
    [entry] = await history(client, customer["customer_id"])
    assert entry["channel"] == "email"
    assert entry["source"] == "email"
    assert entry["external_id"] == "order-1@example.com"
    assert entry["subject"] == "Broken order"
    assert entry["text"].strip() == "My order arrived broken"
    assert answer.endswith(entry["message_id"].encode())


async def test_the_greeting_names_the_configured_host_and_announces_the_size_limit(
    client: Client, smtp_port: int
) -> None:
    def ehlo() -> tuple[bytes, dict[str, str]]:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            _, text = smtp.ehlo("client.example")
            return text, smtp.esmtp_features

    text, features = await asyncio.to_thread(ehlo)
    assert text.startswith(b"mx.omniroute.test")
    assert features["size"] == str(LIMIT)
    assert "smtputf8" in features


async def test_the_same_mail_sent_twice_is_stored_once(client: Client, smtp_port: int) -> None:
    raw = mail(message_id="<retry-1@example.com>")
    first = await delivered(smtp_port, raw)
    second = await delivered(smtp_port, raw)

    assert first == second
    customer = await customer_of(client, MARIA)
    assert customer is not None
    assert len(await history(client, customer["customer_id"])) == 1


# --- whom it takes mail for ----------------------------------------------------------


async def test_a_foreign_recipient_gets_550_and_nothing_is_stored(
    client: Client, smtp_port: int
) -> None:
    replies = await transact(smtp_port, mail(), recipients=("someone@elsewhere.example",))

    _, mail_from, (rcpt_code, rcpt_text), (data_code, _) = replies
    assert mail_from[0] == 250
    assert rcpt_code == 550
    assert b"relaying denied" in rcpt_text
    assert data_code == 503  # no recipient accepted: no DATA
    assert await customer_of(client, MARIA) is None


async def test_only_the_accepted_recipients_of_a_mail_are_taken(
    client: Client, smtp_port: int
) -> None:
    recipients = ("SUPPORT+billing@Acme.Example", "anyone@help.acme.example", "x@acme.example")
    replies = await transact(smtp_port, mail(), recipients=recipients)

    assert [code for code, _ in replies[2:]] == [250, 250, 550, 250]
    assert await customer_of(client, MARIA) is not None


async def test_a_plus_addressed_envelope_recipient_joins_its_conversation(
    client: Client, smtp_port: int
) -> None:
    await delivered(smtp_port, mail("first", message_id="<first@example.com>"))
    customer = await customer_of(client, MARIA)
    assert customer is not None
    [first] = await history(client, customer["customer_id"])
    conversation = first["conversation_id"]

    # Bcc'd to the conversation's plus-address: only the envelope names it
    raw = mail("second", message_id="<second@example.com>", to="team@example.org", subject="x")
    await delivered(smtp_port, raw, recipients=(f"support+{conversation}@acme.example",))

    second, _ = await history(client, customer["customer_id"])
    assert second["external_id"] == "second@example.com"
    assert second["conversation_id"] == conversation


async def test_the_inbox_is_the_own_address_the_envelope_names(
    client: Client, smtp_port: int
) -> None:
    """Bcc'd: To names someone else; the envelope's support+tag@ is the inbox, untagged."""
    raw = mail(message_id="<inbox-1@example.com>", to="team@example.org")
    await delivered(smtp_port, raw, recipients=("Support+billing@acme.example",))
    customer = await customer_of(client, MARIA)
    assert customer is not None
    [entry] = await history(client, customer["customer_id"])
    assert entry["attributes"]["inbox"] == "email:support@acme.example"


def test_the_mx_authserv_id_makes_the_from_need_authentication() -> None:
    """No authserv-id known: nothing to verify a From with, so it is trusted (with a
    start-up warning); the MX's authserv-id set: only an authenticated From is verified."""
    base = SmtpSettings(own_addresses=("support@acme.example",))
    assert base.options.trust_from == "always"
    checked = SmtpSettings(own_addresses=("support@acme.example",), authserv_ids=("MX.Acme",))
    assert (checked.options.trust_from, checked.options.authserv_ids) == (
        "authenticated",
        ("mx.acme",),
    )
    assert SmtpSettings(trust_from="always", authserv_ids=("mx",)).options.trust_from == "always"


# --- limits, outages, bad input ------------------------------------------------------


async def test_a_mail_over_the_size_limit_gets_552(client: Client, smtp_port: int) -> None:
    big = mail("\n".join(["x" * 70] * (LIMIT // 70 + 10)))
    announced = await asyncio.to_thread(_send_with_size, smtp_port, big)
    *_, (code, text) = await transact(smtp_port, big)  # no SIZE: refused after DATA

    assert announced == 552
    assert code == 552, text
    assert b"Too much mail data" in text
    assert await customer_of(client, MARIA) is None


def _send_with_size(port: int, raw: bytes) -> int:
    """smtplib announces ``SIZE=`` in MAIL FROM when the server offers it."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        try:
            smtp.sendmail("maria@example.com", ["support@acme.example"], raw)
        except smtplib.SMTPSenderRefused as exc:
            return int(exc.smtp_code)
    return 250


async def test_a_store_outage_answers_451_so_the_sender_retries(
    client: Client, smtp_port: int
) -> None:
    store = client.app[STORE]
    raw = mail(message_id="<outage-1@example.com>")
    await store.close()
    try:
        *_, (code, text) = await transact(smtp_port, raw)
    finally:
        await store.open()

    assert (code, text) == (451, b"4.3.0 try again later")
    await delivered(smtp_port, raw)  # the sending MTA's retry
    customer = await customer_of(client, MARIA)
    assert customer is not None
    assert len(await history(client, customer["customer_id"])) == 1


async def test_a_malformed_mail_is_quarantined_and_the_listener_goes_on(
    client: Client, smtp_port: int
) -> None:
    no_from = b"To: support@acme.example\r\nSubject: who am I\r\n\r\nhello\r\n"
    await delivered(smtp_port, no_from)

    def garbage() -> list[int]:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            codes = [smtp.docmd("NONSENSE")[0], smtp.docmd("MAIL", "FROM:<<<")[0]]
            smtp.send(b"\xff\xfe\x00 binary junk\r\n")
            codes.append(smtp.getreply()[0])
            return codes

    assert await asyncio.to_thread(garbage) == [500, 503, 500]
    await delivered(smtp_port, mail())

    [entry] = await quarantine(client)
    assert entry["connector"] == "smtp"
    assert entry["reason"] == "missing From header"
    assert await customer_of(client, MARIA) is not None


async def test_a_port_already_taken_refuses_start_up(
    settings: Settings, clock: ManualClock, smtp_port: int
) -> None:
    runner = web.AppRunner(create_app(settings, clock=clock))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", smtp_port))
        taken.listen()
        try:
            with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{smtp_port}"):
                await runner.setup()
        finally:
            await runner.cleanup()


async def test_shutdown_closes_the_listener(client: Client, smtp_port: int) -> None:
    await delivered(smtp_port, mail())
    await client.close()

    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", smtp_port, timeout=5)


# --- pure parts ----------------------------------------------------------------------


@pytest.fixture
def recipients() -> Recipients:
    settings = SmtpSettings(
        own_addresses=("support@acme.example",),
        recipients=("Sales@Acme.Example",),
        accept_domains=("help.acme.example.",),
    )
    return Recipients.of(settings)


@pytest.mark.parametrize(
    "address",
    [
        "support@acme.example",
        "SUPPORT+con_abc@ACME.example",
        "sales@acme.example",
        "<sales+x@acme.example>",
        "anyone@help.acme.example",
        "Anyone+tag@Help.Acme.Example",
    ],
)
def test_accepted_recipients(recipients: Recipients, address: str) -> None:
    assert recipients.accepts(address)


@pytest.mark.parametrize(
    "address",
    [
        "other@acme.example",
        "support@acme.example.evil.example",
        "anyone@sub.help.acme.example",
        "support",
        "@acme.example",
        "support@",
        "",
    ],
)
def test_refused_recipients(recipients: Recipients, address: str) -> None:
    assert not recipients.accepts(address)


def test_a_listener_with_no_one_to_take_mail_for_is_refused() -> None:
    context = ConnectorContext(clock=ManualClock())
    with pytest.raises(ValueError, match="never an open relay"):
        SmtpConnector(SmtpSettings(), context)


def test_bad_settings_are_named(tmp_path: Path) -> None:
    conf = tmp_path / "omniroute.toml"
    conf.write_text(
        '[connectors.smtp]\nport = 0\nrecipients = ["support"]\n'
        'accept_domains = ["a@b.example"]\nmax_message_bytes = 0\n'
        'trust_from = "sometimes"\nauthserv_ids = ["mx acme.example"]\n'
    )
    with pytest.raises(ConfigError) as raised:
        load(conf, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})

    problems = "\n".join(raised.value.problems)
    keys = ("port", "recipients", "accept_domains", "max_message_bytes")
    for key in (*keys, "trust_from", "authserv_ids"):
        assert f"connectors.smtp.{key}" in problems
