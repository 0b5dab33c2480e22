"""The contract of the ``Ledger`` port (``router/ledger.py``), run against ``SqliteLedger``
(a file in a temporary directory) and ``RedisLedger`` (the real server, a prefix of its
own). Times are fixed datetimes passed in; nothing sleeps.

Readings of the protocol this suite pins down:

- A re-delivered report (same source, external id and status) keeps the first one.
- Reports with the same ``at`` are listed in the order of ``DeliveryStatus``.
- The quarantine lists ties on ``received_at`` by ``quarantine_id``, descending; a
  cursor stays valid when the entry it names is dropped.
- A nonce is free from its ``expires_at`` on (``now >= expires_at``); a claim with the
  holder's fingerprint does not extend it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from router.errors import BackendUnavailable, InputError
from router.ledger import DeliveryReport, Ledger, QuarantineEntry
from router.models import DeliveryStatus

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
WINDOW = 5 * 60 * SECOND
BLOB = "0123456789abcdef" * 4

MakeLedger = Callable[[], Awaitable[Ledger]]


@pytest.fixture(params=["sqlite", "redis"])
async def make_ledger(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, redis_prefix: str
) -> AsyncIterator[MakeLedger]:
    """Opens ledgers on one storage (one file, one prefix), as several processes would."""
    opened: list[Ledger] = []

    async def make() -> Ledger:
        impl: Ledger
        if request.param == "sqlite":
            from router.backends.sqlite_ledger import SqliteLedger

            impl = SqliteLedger(tmp_path / "ledger.sqlite3")
        else:
            from router.backends.redis_ledger import RedisLedger

            impl = RedisLedger(redis_url, redis_prefix)
        await impl.open()
        opened.append(impl)
        return impl

    yield make
    for impl in opened:
        await impl.close()


@pytest.fixture
async def ledger(make_ledger: MakeLedger) -> Ledger:
    return await make_ledger()


def report(
    status: DeliveryStatus,
    at: datetime = T0,
    external_id: str = "wamid.HBgL1",
    *,
    recipient: str | None = None,
    error: str | None = None,
) -> DeliveryReport:
    return DeliveryReport(
        source="whatsapp:+15550001111",
        external_id=external_id,
        status=status,
        at=at,
        recipient=recipient,
        error=error,
    )


def entry(quarantine_id: str, at: datetime = T0, reason: str = "no From header") -> QuarantineEntry:
    return QuarantineEntry(
        quarantine_id=quarantine_id,
        connector="email",
        reason=reason,
        received_at=at,
        size=1234,
        blob=BLOB,
    )


async def claim(
    ledger: Ledger, nonce: str, fingerprint: str, now: datetime, scope: str = "mailgun"
) -> bool:
    return await ledger.claim_nonce(
        scope, nonce, fingerprint=fingerprint, expires_at=now + WINDOW, now=now
    )


async def all_pages(ledger: Ledger, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    before: str | None = None
    while True:
        page = await ledger.quarantined(limit=limit, before=before)
        pages.append([e.quarantine_id for e in page.entries])
        if page.next_before is None:
            return pages
        before = page.next_before


# --- lifecycle ------------------------------------------------------------------------


async def test_open_is_idempotent_and_a_second_ledger_sees_what_the_first_wrote(
    ledger: Ledger, make_ledger: MakeLedger
) -> None:
    await ledger.open()
    await ledger.record_delivery(report("sent"))
    await ledger.quarantine(entry("q1"))
    await ledger.set_cursor("imap:support:INBOX", "4711")
    assert await claim(ledger, "tok1", "sig-a", T0)

    other = await make_ledger()

    assert await other.deliveries("whatsapp:+15550001111", "wamid.HBgL1") == [report("sent")]
    assert await other.get_quarantined("q1") == entry("q1")
    assert await other.get_cursor("imap:support:INBOX") == "4711"
    assert not await claim(other, "tok1", "sig-b", T0 + SECOND)


async def test_sqlite_outage_is_backend_unavailable(tmp_path: Path) -> None:
    from router.backends.sqlite_ledger import SqliteLedger

    with pytest.raises(BackendUnavailable):
        await SqliteLedger(tmp_path).open()  # a directory, not a database file


async def test_sqlite_file_of_a_newer_layout_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from router.backends.sqlite_ledger import SCHEMA_VERSION, SqliteLedger

    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(BackendUnavailable, match="schema version"):
        await SqliteLedger(path).open()


async def test_redis_outage_is_backend_unavailable() -> None:
    from router.backends.redis_ledger import RedisLedger

    ledger = RedisLedger("redis://127.0.0.1:1/0", "omniroute-test-nowhere")
    try:
        with pytest.raises(BackendUnavailable):
            await ledger.open()
    finally:
        await ledger.close()


# --- deliveries -----------------------------------------------------------------------


async def test_a_report_is_kept_once_per_status(ledger: Ledger) -> None:
    first = report("failed", T0, recipient="15550002222", error="131026 Message undeliverable")

    assert await ledger.record_delivery(first)
    assert not await ledger.record_delivery(report("failed", T0 + SECOND, error="other"))
    assert await ledger.record_delivery(report("sent", T0 - SECOND))

    assert await ledger.deliveries("whatsapp:+15550001111", "wamid.HBgL1") == [
        report("sent", T0 - SECOND),
        first,
    ]


async def test_reports_are_per_message_and_source(ledger: Ledger) -> None:
    assert await ledger.record_delivery(report("sent"))
    assert await ledger.record_delivery(report("sent", external_id="wamid.other"))
    elsewhere = DeliveryReport(source="telegram", external_id="wamid.HBgL1", status="sent", at=T0)
    assert await ledger.record_delivery(elsewhere)

    assert await ledger.deliveries("whatsapp:+15550001111", "wamid.HBgL1") == [report("sent")]
    assert await ledger.deliveries("telegram", "wamid.HBgL1") == [elsewhere]
    assert await ledger.deliveries("whatsapp:+15550001111", "wamid.unknown") == []


async def test_reports_are_listed_oldest_first_and_ties_in_status_order(ledger: Ledger) -> None:
    reports = [
        report("read", T0 + 2 * SECOND),
        report("delivered", T0 + SECOND),
        report("sent", T0 + SECOND),
        report("accepted", T0),
    ]
    for each in reports:
        assert await ledger.record_delivery(each)

    assert await ledger.deliveries("whatsapp:+15550001111", "wamid.HBgL1") == reports[::-1]


# --- quarantine -----------------------------------------------------------------------


async def test_a_quarantined_entry_round_trips_and_unknown_ones_are_none(ledger: Ledger) -> None:
    full = QuarantineEntry(
        quarantine_id="qua_01",
        connector="email",
        reason="broken MIME boundary",
        received_at=T0 + timedelta(microseconds=123_456),
        size=98_765,
        blob=BLOB,
        content_type="message/rfc822",
        summary={"from": "ana@example.com", "subject": "Pedido nº 7", "message_id": "<a@b>"},
    )
    await ledger.quarantine(full)

    assert await ledger.get_quarantined("qua_01") == full
    assert await ledger.get_quarantined("qua_02") is None
    page = await ledger.quarantined(limit=10)
    assert page.entries == [full]
    assert page.next_before is None


async def test_the_quarantine_is_empty_at_first(ledger: Ledger) -> None:
    page = await ledger.quarantined(limit=10)

    assert page.entries == []
    assert page.next_before is None


async def test_quarantined_pages_run_newest_first_then_by_id(ledger: Ledger) -> None:
    entries = [
        entry("q-a", T0),
        entry("q-b", T0 + SECOND),
        entry("q-c", T0 + SECOND),  # a tie: q-c before q-b
        entry("q-d", T0 + 3 * SECOND),
        entry("q-e", T0 - 60 * SECOND),
    ]
    for each in entries:
        await ledger.quarantine(each)

    assert await all_pages(ledger, limit=2) == [["q-d", "q-c"], ["q-b", "q-a"], ["q-e"]]
    assert await all_pages(ledger, limit=5) == [["q-d", "q-c", "q-b", "q-a", "q-e"]]
    assert await all_pages(ledger, limit=1000) == [["q-d", "q-c", "q-b", "q-a", "q-e"]]


async def test_a_full_last_page_has_no_cursor(ledger: Ledger) -> None:
    for i in range(4):
        await ledger.quarantine(entry(f"q{i}", T0 + i * SECOND))

    assert await all_pages(ledger, limit=2) == [["q3", "q2"], ["q1", "q0"]]


async def test_a_cursor_survives_the_drop_of_its_entry(ledger: Ledger) -> None:
    for i in range(4):
        await ledger.quarantine(entry(f"q{i}", T0 + i * SECOND))
    first = await ledger.quarantined(limit=2)
    assert first.next_before is not None

    assert await ledger.drop_quarantined("q2")
    rest = await ledger.quarantined(limit=2, before=first.next_before)

    assert [e.quarantine_id for e in rest.entries] == ["q1", "q0"]
    assert rest.next_before is None


@pytest.mark.parametrize(
    "before", ["", "abc", "123:q1", "000000000000000000", "000000000000000000:", "x" * 18 + ":q"]
)
async def test_a_malformed_cursor_is_an_input_error(ledger: Ledger, before: str) -> None:
    with pytest.raises(InputError):
        await ledger.quarantined(limit=2, before=before)


async def test_a_limit_below_one_is_an_input_error(ledger: Ledger) -> None:
    with pytest.raises(InputError):
        await ledger.quarantined(limit=0)


async def test_quarantining_an_id_again_replaces_the_entry_and_its_place(ledger: Ledger) -> None:
    await ledger.quarantine(entry("q-old", T0))
    await ledger.quarantine(entry("q-x", T0 + SECOND))
    replacement = entry("q-old", T0 + 2 * SECOND, reason="missing From, second look")

    await ledger.quarantine(replacement)

    assert await ledger.get_quarantined("q-old") == replacement
    page = await ledger.quarantined(limit=10)
    assert page.entries == [replacement, entry("q-x", T0 + SECOND)]


async def test_a_dropped_entry_is_gone_and_a_second_drop_is_false(ledger: Ledger) -> None:
    await ledger.quarantine(entry("q1", T0))
    await ledger.quarantine(entry("q2", T0 + SECOND))

    assert await ledger.drop_quarantined("q1")
    assert not await ledger.drop_quarantined("q1")
    assert not await ledger.drop_quarantined("never")

    assert await ledger.get_quarantined("q1") is None
    assert [e.quarantine_id for e in (await ledger.quarantined(limit=10)).entries] == ["q2"]


# --- nonces ---------------------------------------------------------------------------


async def test_a_nonce_is_claimed_once_per_fingerprint(ledger: Ledger) -> None:
    assert await claim(ledger, "tok1", "sig-a", T0)
    assert await claim(ledger, "tok1", "sig-a", T0 + SECOND)  # the provider's retry
    assert not await claim(ledger, "tok1", "sig-b", T0 + 2 * SECOND)  # a replay
    assert await claim(ledger, "tok1", "sig-b", T0, scope="other")  # scopes are apart
    assert await claim(ledger, "tok2", "sig-b", T0)


async def test_an_expired_nonce_is_free_and_its_new_claim_holds(ledger: Ledger) -> None:
    assert await claim(ledger, "tok1", "sig-a", T0)
    assert not await claim(ledger, "tok1", "sig-b", T0 + WINDOW - SECOND)

    assert await claim(ledger, "tok1", "sig-b", T0 + WINDOW)  # expires_at reached

    assert not await claim(ledger, "tok1", "sig-a", T0 + WINDOW + SECOND)
    assert await claim(ledger, "tok1", "sig-b", T0 + WINDOW + SECOND)


async def test_a_retry_does_not_extend_the_claim(ledger: Ledger) -> None:
    assert await claim(ledger, "tok1", "sig-a", T0)
    assert await claim(ledger, "tok1", "sig-a", T0 + 60 * SECOND)  # asks until T0 + 6 min

    assert await claim(ledger, "tok1", "sig-b", T0 + WINDOW)


async def test_concurrent_claims_of_a_new_nonce_have_one_winner(make_ledger: MakeLedger) -> None:
    ledgers = [await make_ledger() for _ in range(6)]
    for round_ in range(5):
        nonce = f"race-{round_}"
        won = await asyncio.gather(
            *(claim(each, nonce, f"sig-{i}", T0) for i, each in enumerate(ledgers))
        )
        assert sum(won) == 1, won
        winner = won.index(True)
        assert await claim(ledgers[0], nonce, f"sig-{winner}", T0 + SECOND)
        assert not await claim(ledgers[0], nonce, f"sig-{(winner + 1) % 6}", T0 + SECOND)


async def test_redis_forgets_a_nonce_when_its_claim_would_have_expired(
    redis_url: str, redis_prefix: str
) -> None:
    from router.backends.redis_ledger import RedisLedger

    ledger = RedisLedger(redis_url, redis_prefix)
    await ledger.open()
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await claim(ledger, "tok1", "sig-a", T0)  # T0 is long past: the TTL is relative
        ttl_ms = await client.pttl(f"{{{redis_prefix}}}:nonce:mailgun\0tok1")
    finally:
        await client.aclose()
        await ledger.close()

    assert 0 < ttl_ms <= WINDOW // timedelta(milliseconds=1)


# --- poller cursors -------------------------------------------------------------------


async def test_a_cursor_is_none_until_set_and_then_overwritten(ledger: Ledger) -> None:
    assert await ledger.get_cursor("imap:support:INBOX") is None

    await ledger.set_cursor("imap:support:INBOX", "4711")
    await ledger.set_cursor("imap:sales:INBOX", "12")
    await ledger.set_cursor("imap:support:INBOX", "4712")

    assert await ledger.get_cursor("imap:support:INBOX") == "4712"
    assert await ledger.get_cursor("imap:sales:INBOX") == "12"
