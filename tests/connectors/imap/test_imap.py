"""The IMAP poller against a real dovecot: the app (``aiohttp_client(create_app(...))``)
reads a fresh mailbox per test; mail is delivered by APPEND and inspected with imaplib."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from connectors.imap.parse import (
    Cursor,
    backoff_s,
    fetched_body,
    fetched_header,
    fetched_size,
    imap_date,
    oversized,
    search_uids,
    uidnext,
    uidvalidity,
)
from router.app import create_app
from router.clock import ManualClock
from router.errors import ConfigError
from router.http.keys import LEDGER, STORE
from router.settings import Settings, load
from tests.connectors.conftest import AUTH, Client, customer_of, history, quarantine
from tests.connectors.imap.conftest import eventually
from tests.connectors.imap.dovecot import USER, Dovecot, Mailbox, free_port
from tests.connectors.smtp.mails import mail

MARIA = "email:maria@example.com"
SEEN = "\\Seen"
QUIET = {"poll_s": 3600.0}
"""Polling alone would take an hour: what arrives promptly came by IDLE."""

ClientFactory = Callable[[web.Application], Awaitable[Client]]


async def append(
    box: Mailbox, raw: bytes, *, seen: bool = False, arrived: datetime | None = None
) -> int:
    return await asyncio.to_thread(lambda: box.append(raw, seen=seen, arrived=arrived))


async def flags(box: Mailbox, uid: int) -> set[str]:
    return await asyncio.to_thread(box.flags, uid)


async def cursor(client: Client, box: Mailbox) -> str | None:
    key = f"imap:{USER}@127.0.0.1/{box.name}"
    return await client.app[LEDGER].get_cursor(key)


async def cursor_becomes(client: Client, box: Mailbox, uid: int) -> None:
    """The cursor moves on after ``\\Seen``: wait for it to name ``uid``."""
    expected = f"{await asyncio.to_thread(box.uidvalidity)}:{uid}"

    async def reached() -> bool:
        return await cursor(client, box) == expected

    await eventually(reached)


async def texts(client: Client, identity: str = MARIA) -> list[str]:
    """The customer's history, newest first (empty while nothing is stored)."""
    customer = await customer_of(client, identity)
    if customer is None:
        return []
    return [entry["text"].strip() for entry in await history(client, customer["customer_id"])]


def seen_after_stored(client: Client, box: Mailbox, uid: int) -> Callable[[], Awaitable[bool]]:
    """A check that the message is \\Seen, failing if it ever is before it is stored."""

    async def seen_and_stored() -> bool:
        seen = SEEN in await flags(box, uid)  # first: storing comes before \Seen
        stored = bool(await texts(client))
        assert stored or not seen, "marked \\Seen before it was stored"
        return seen

    return seen_and_stored


# --- taking new mail -----------------------------------------------------------------


@pytest.mark.parametrize("imap_extra", [QUIET])
async def test_idle_takes_new_mail_at_once_and_marks_it_seen_after_storing_it(
    client: Client, mailbox: Mailbox
) -> None:
    await eventually(lambda: cursor(client, mailbox))  # the first round is done: idling
    uid = await append(mailbox, mail(message_id="<idle-1@example.com>"))

    await eventually(seen_after_stored(client, mailbox, uid))

    customer = await customer_of(client, MARIA)
    assert customer is not None
    [entry] = await history(client, customer["customer_id"])
    assert (entry["channel"], entry["source"]) == ("email", "email")
    assert entry["external_id"] == "idle-1@example.com"
    assert entry["text"].strip() == "My order arrived broken"
    await cursor_becomes(client, mailbox, uid)


@pytest.mark.parametrize("imap_extra", [{"idle": False, "poll_s": 0.05}])
async def test_without_idle_the_mailbox_is_polled(client: Client, mailbox: Mailbox) -> None:
    await eventually(lambda: cursor(client, mailbox))
    uid = await append(mailbox, mail())

    await eventually(seen_after_stored(client, mailbox, uid))
    assert await texts(client) == ["My order arrived broken"]


async def test_at_first_start_the_unread_mail_is_taken_and_the_read_mail_left(
    aiohttp_client: ClientFactory, settings: Settings, clock: ManualClock, mailbox: Mailbox
) -> None:
    unread = await append(mailbox, mail("still waiting"))
    handled = mail("an agent read this one", sender="Old <old@example.com>")
    read = await append(mailbox, handled, seen=True)

    client = await aiohttp_client(create_app(settings, clock=clock))
    await eventually(seen_after_stored(client, mailbox, unread))

    assert await texts(client) == ["still waiting"]
    assert await customer_of(client, "email:old@example.com") is None
    await cursor_becomes(client, mailbox, read)


async def test_a_malformed_message_is_quarantined_and_marked_seen(
    client: Client, mailbox: Mailbox
) -> None:
    uid = await append(mailbox, b"To: support@acme.example\r\nSubject: who\r\n\r\nhello\r\n")

    await eventually(lambda: _has_flag(mailbox, uid, SEEN))
    [entry] = await quarantine(client)
    assert entry["connector"] == "imap"
    assert entry["reason"] == "missing From header"


async def _has_flag(box: Mailbox, uid: int, flag: str) -> bool:
    return flag in await flags(box, uid)


@pytest.mark.parametrize("imap_extra", [{"max_message_bytes": 4096}])
async def test_a_message_over_the_size_limit_is_not_fetched_its_header_is_quarantined(
    client: Client, mailbox: Mailbox
) -> None:
    big = mail("photos attached " + "x" * 20_000, subject="Huge mail")
    header = big.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    uid = await append(mailbox, big)
    small = await append(mailbox, mail("a short one"))

    await eventually(lambda: _has_flag(mailbox, small, SEEN))
    assert SEEN in await flags(mailbox, uid)  # handled: quarantined, left in the mailbox
    assert await texts(client) == ["a short one"]
    [entry] = await quarantine(client)
    assert entry["connector"] == "imap"
    assert entry["reason"].startswith(f"message of {len(big)} bytes is over max_message_bytes")
    assert entry["content_type"] == "text/rfc822-headers"
    assert entry["summary"] == {
        "from": "Maria Lopez <maria@example.com>",
        "subject": "Huge mail",
        "message_id": mail_id(big),
        "size": str(len(big)),
    }
    response = await client.get(f"/v1/quarantine/{entry['quarantine_id']}/raw", headers=AUTH)
    assert await response.read() == header


def mail_id(raw: bytes) -> str:
    found = re.search(rb"^Message-ID: (.+?)\r$", raw, re.MULTILINE)
    assert found is not None
    return found.group(1).decode()


@pytest.mark.parametrize("imap_extra", [{"since_days": 30}])
async def test_with_since_days_a_first_run_leaves_older_unread_mail_alone(
    aiohttp_client: ClientFactory, settings: Settings, clock: ManualClock, mailbox: Mailbox
) -> None:
    now = clock.now()
    ancient = await append(mailbox, mail("from last year"), arrived=now - timedelta(days=400))
    edge = await append(mailbox, mail("a month ago"), arrived=now - timedelta(days=31))
    recent = await append(mailbox, mail("yesterday"), arrived=now - timedelta(days=1))

    client = await aiohttp_client(create_app(settings, clock=clock))
    await eventually(seen_after_stored(client, mailbox, recent))
    await cursor_becomes(client, mailbox, recent)

    assert await texts(client) == ["yesterday"]
    assert SEEN not in await flags(mailbox, ancient)
    assert SEEN not in await flags(mailbox, edge)
    later = await append(mailbox, mail("today"))  # after the first run: every new message
    await eventually(lambda: _has_flag(mailbox, later, SEEN))
    assert await texts(client) == ["today", "yesterday"]
    assert SEEN not in await flags(mailbox, ancient)


# --- failures: store, server, restarts -----------------------------------------------


@pytest.mark.parametrize("imap_extra", [QUIET])
async def test_a_store_outage_leaves_the_message_unread_until_it_is_stored(
    client: Client, mailbox: Mailbox
) -> None:
    before = await eventually(lambda: cursor(client, mailbox))
    store = client.app[STORE]
    await store.close()
    try:
        with capture_logs() as logs:
            uid = await append(mailbox, mail())

            async def deferred() -> bool:
                return any("BackendUnavailable" in str(e.get("reason")) for e in logs)

            await eventually(deferred)
        assert SEEN not in await flags(mailbox, uid)
        assert await cursor(client, mailbox) == before
    finally:
        await store.open()

    await eventually(seen_after_stored(client, mailbox, uid))
    assert await texts(client) == ["My order arrived broken"]


@pytest.mark.parametrize("backend", ["embedded", "production"])
async def test_a_restart_resumes_from_the_cursor_and_takes_nothing_twice(
    aiohttp_client: ClientFactory, settings: Settings, clock: ManualClock, mailbox: Mailbox
) -> None:
    first = await aiohttp_client(create_app(settings, clock=clock))
    one = await append(mailbox, mail("one"))
    await eventually(seen_after_stored(first, mailbox, one))
    await first.close()
    # unread again: only the cursor now says it was taken
    await asyncio.to_thread(mailbox.mark_unseen, one)
    two = await append(mailbox, mail("two"))

    second = await aiohttp_client(create_app(settings, clock=clock))
    await eventually(lambda: _has_flag(mailbox, two, SEEN))

    assert SEEN not in await flags(mailbox, one)
    assert await texts(second) == ["two", "one"]
    await cursor_becomes(second, mailbox, two)


async def test_a_rebuilt_mailbox_new_uidvalidity_is_read_afresh(
    aiohttp_client: ClientFactory, settings: Settings, clock: ManualClock, mailbox: Mailbox
) -> None:
    first = await aiohttp_client(create_app(settings, clock=clock))
    await append(mailbox, mail("one"))
    two = await append(mailbox, mail("two"))
    await eventually(seen_after_stored(first, mailbox, two))
    old = await cursor(first, mailbox)
    await first.close()

    await asyncio.to_thread(mailbox.recreate)
    three = await append(mailbox, mail("three"))  # UID 1 again, below the old cursor
    second = await aiohttp_client(create_app(settings, clock=clock))
    await eventually(lambda: _has_flag(mailbox, three, SEEN))

    assert three < two
    assert await texts(second) == ["three", "two", "one"]
    await cursor_becomes(second, mailbox, three)
    assert old is not None
    assert old.partition(":")[0] != str(await asyncio.to_thread(mailbox.uidvalidity))


async def test_the_poller_reconnects_when_the_server_comes_back(
    aiohttp_client: ClientFactory, env: dict[str, str], tmp_path: Path, clock: ManualClock
) -> None:
    server = Dovecot()
    server.start()
    try:
        box = Mailbox(server, "INBOX")
        conf = tmp_path / "imap.toml"
        conf.write_text(server.toml("INBOX", **QUIET))
        client = await aiohttp_client(create_app(load(conf, env=env), clock=clock))
        await eventually(lambda: cursor(client, box))

        with capture_logs() as logs:
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            uid = await append(box, mail("after the restart"))
            await eventually(seen_after_stored(client, box, uid))

        assert await texts(client) == ["after the restart"]
        assert any(e["event"] == "imap.retry" for e in logs)
        await client.close()
    finally:
        server.remove()


@pytest.mark.parametrize("imap_extra", [QUIET | {"idle_renew_s": 0.05}])
async def test_idle_is_renewed_and_still_takes_new_mail(client: Client, mailbox: Mailbox) -> None:
    with capture_logs() as logs:

        async def renewed_twice() -> bool:
            return sum(e["event"] == "imap.idle_ended" for e in logs) >= 2

        await eventually(renewed_twice)
    uid = await append(mailbox, mail())

    await eventually(seen_after_stored(client, mailbox, uid))


async def test_stopping_ends_idle_at_once(client: Client, mailbox: Mailbox) -> None:
    await eventually(lambda: cursor(client, mailbox))
    with capture_logs() as logs:
        await client.close()

    events = [e["event"] for e in logs]
    assert "imap.stopped" in events
    assert "imap.stop_deadline" not in events


# --- start-up ------------------------------------------------------------------------


async def start_app(settings: Settings, clock: ManualClock) -> None:
    runner = web.AppRunner(create_app(settings, clock=clock))
    try:
        await runner.setup()
    finally:
        await runner.cleanup()


async def test_a_refused_login_refuses_start_up(
    env: dict[str, str], tmp_path: Path, clock: ManualClock
) -> None:
    server = Dovecot()  # its own: dovecot delays the next logins from an address that failed one
    server.start()
    try:
        conf = tmp_path / "imap.toml"
        conf.write_text(server.toml("INBOX", password="wrong"))
        with pytest.raises(ConfigError, match="LOGIN refused: NO"):
            await start_app(load(conf, env=env), clock)
    finally:
        server.remove()


@pytest.mark.parametrize("imap_extra", [{"mailbox": "NoSuchBox"}])
async def test_a_missing_mailbox_refuses_start_up(settings: Settings, clock: ManualClock) -> None:
    with pytest.raises(ConfigError, match="SELECT NoSuchBox refused"):
        await start_app(settings, clock)


@pytest.mark.parametrize("imap_extra", [{"port": free_port()}])
async def test_an_unreachable_server_refuses_start_up(
    settings: Settings, clock: ManualClock
) -> None:
    with pytest.raises(ConfigError, match=r"cannot read 127\.0\.0\.1:\d+/T"):
        await start_app(settings, clock)


@pytest.mark.parametrize("imap_extra", [{"tls": True}])
async def test_tls_is_required_unless_turned_off(settings: Settings, clock: ManualClock) -> None:
    with pytest.raises(ConfigError, match="SSL"):  # this dovecot speaks plain IMAP
        await start_app(settings, clock)


# --- pure parts ----------------------------------------------------------------------

SELECT = [
    b"FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
    b"OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.",
    b"2 EXISTS",
    b"0 RECENT",
    b"OK [UIDVALIDITY 1795388948] UIDs valid",
    b"OK [UIDNEXT 3] Predicted next UID",
    b"[READ-WRITE] Select completed (0.002 + 0.000 + 0.001 secs).",
]


def test_select_answer() -> None:
    assert uidvalidity(SELECT) == 1795388948
    assert uidnext(SELECT) == 3
    assert uidvalidity(SELECT[:4]) is None


@pytest.mark.parametrize(
    ("lines", "uids"),
    [
        ([b"7 3 12", b"Search completed (0.001 + 0.000 secs)."], [3, 7, 12]),
        ([b"", b"Search completed (0.001 + 0.000 secs)."], []),
        ([b"Search completed."], []),
    ],
)
def test_search_answer(lines: list[bytes], uids: list[int]) -> None:
    assert search_uids(lines) == uids


def test_fetch_answer() -> None:
    raw = b"From: a@example.com\r\n\r\n{5}\r\n)\r\n"
    lines: list[Any] = [
        b"1 FETCH (UID 4 BODY[] {36}",
        bytearray(raw),
        b")",
        b"Fetch completed (0.001 + 0.000 secs).",
    ]
    assert fetched_body(lines) == raw
    assert fetched_body([b"Fetch completed (0.001 + 0.000 secs)."]) is None


def test_size_and_header_answers() -> None:
    header = b"From: a@example.com\r\nSubject: big\r\n\r\n"
    assert fetched_size([b"1 FETCH (UID 4 RFC822.SIZE 31457280)", b"Fetch completed."]) == (
        31457280
    )
    assert fetched_size([b"Fetch completed."]) is None
    lines: list[Any] = [b"1 FETCH (UID 4 BODY[HEADER] {38}", bytearray(header), b")", b"done."]
    assert fetched_header(lines) == header
    assert fetched_header([b"Fetch completed."]) is None


@pytest.mark.parametrize(
    ("day", "text"),
    [(date(2026, 11, 1), "1-Nov-2026"), (date(2025, 1, 22), "22-Jan-2025")],
)
def test_search_dates_are_english_whatever_the_locale(day: date, text: str) -> None:
    assert imap_date(day) == text


def test_an_oversized_message_keeps_its_header_and_what_it_says() -> None:
    header = (
        b"From: =?utf-8?q?Jos=C3=A9?= <jose@example.com>\r\nSubject: =?utf-8?q?Fotos_=C3=B1?=\r\n"
        b"Message-ID: <m1@example.com>\r\n\r\n"
    )
    [held] = oversized(header, 30_000_000, 26_214_400).quarantined
    assert held.raw == header
    assert held.reason.startswith("message of 30000000 bytes is over max_message_bytes (26214400)")
    assert held.summary == {
        "from": "=?utf-8?q?Jos=C3=A9?= <jose@example.com>",
        "subject": "Fotos ñ",
        "message_id": "<m1@example.com>",
        "size": "30000000",
    }
    assert oversized(b"\r\n", 9, 1).quarantined[0].summary == {"size": "9"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1795388948:42", Cursor(1795388948, 42)),
        ("7:0", Cursor(7, 0)),
        (None, None),
        ("", None),
        ("42", None),
        ("x:1", None),
        ("1:-1", None),
    ],
)
def test_cursor_decode(value: str | None, expected: Cursor | None) -> None:
    assert Cursor.decode(value) == expected
    if expected is not None:
        assert expected.encode() == value


@pytest.mark.parametrize(
    ("failures", "pause_s"), [(0, 0.0), (1, 1.0), (2, 2.0), (5, 16.0), (9, 256.0), (10, 300.0)]
)
def test_backoff_doubles_up_to_the_maximum(failures: int, pause_s: float) -> None:
    assert backoff_s(failures, 1.0, 300.0) == pause_s
    assert backoff_s(10_000, 1.0, 300.0) == 300.0


@pytest.mark.parametrize("imap_extra", [QUIET | {"authserv_ids": ["mx.acme.example"]}])
async def test_a_from_is_verified_only_with_a_trusted_dkim_pass(
    client: Client, mailbox: Mailbox
) -> None:
    """With the mail server's authserv-id configured, the poller trusts its verdicts and
    nothing else: a spoofed From stays an unverified suggestion."""
    await eventually(lambda: cursor(client, mailbox))
    verdict = b"Authentication-Results: mx.acme.example; dkim=pass header.d=example.com\r\n"
    signed = await append(mailbox, verdict + mail("signed by example.com"))
    await eventually(seen_after_stored(client, mailbox, signed))
    assert await texts(client) == ["signed by example.com"]

    forged = b"Authentication-Results: mx.evil.example; dkim=pass header.d=example.com\r\n"
    spoof = await append(mailbox, forged + mail("please change my address"))
    await eventually(lambda: _has_flag(mailbox, spoof, SEEN))
    assert await texts(client) == ["signed by example.com"], "the spoof joined nobody"
