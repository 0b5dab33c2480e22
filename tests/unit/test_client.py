"""router.client's pieces that need no daemon, and what the reference agent prints."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from router.agent_cli import Keys, due_in, human, one_line, summary
from router.client import ClientError, Offer
from router.client.models import decode_item, error_from
from router.models import WorkItem

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def work_item(**overrides: Any) -> WorkItem:
    body: dict[str, Any] = {
        "item_id": "itm_1",
        "conversation_id": "cnv_1",
        "customer_id": "cus_1",
        "queue": "default",
        "priority": 2,
        "deadline": "2026-11-22T10:04:12Z",
        "channel": "chat",
        "message": {
            "message_id": "msg_3",
            "channel": "chat",
            "source": "acme-webchat",
            "subject": None,
            "text": "My order\narrived   broken",
            "sender": {"name": "Maria (chat)", "identities": []},
            "sent_at": "2026-11-22T10:00:00Z",
            "attachments": [],
            "attributes": {},
        },
        "customer": {"name": "Maria Lopez", "identities": [], "attributes": {}},
        "history": [
            _entry("msg_3", "chat", "My order arrived broken", "2026-11-22T10:00:00Z"),
            _entry("msg_2", "email", "Where is my order?", "2026-11-21T09:30:00Z"),
            _entry("msg_1", "sms", "Hello", "2026-11-20T08:00:00Z"),
        ],
        "reasons": [{"kind": "default", "name": "default"}],
        "created_at": "2026-11-22T10:00:00Z",
        "released_at": "2026-11-22T10:00:01Z",
        "a_field_from_a_newer_daemon": 1,
    }
    body.update(overrides)
    return decode_item(msgspec.json.encode(body))


def _entry(message_id: str, channel: str, text: str, at: str) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "conversation_id": "cnv_1",
        "channel": channel,
        "source": "s",
        "subject": None,
        "text": text,
        "sent_at": at,
    }


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[bool, bool]] = []

    async def __call__(self, ack: bool, requeue: bool) -> None:
        self.calls.append((ack, requeue))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (252, "4m12s"),
        (180, "3m"),
        (3725, "1h2m"),
        (7200, "2h"),
        (90000, "1d1h"),
        (-180, "3m"),
        (59.9, "59s"),
    ],
)
def test_human_durations_keep_the_two_largest_units(seconds: float, text: str) -> None:
    assert human(seconds) == text


def test_due_in_and_overdue() -> None:
    assert due_in(NOW + timedelta(minutes=4, seconds=12), NOW) == "due in 4m12s"
    assert due_in(NOW - timedelta(minutes=3), NOW) == "overdue 3m"
    assert due_in(NOW, NOW) == "due in 0s"


def test_one_line_flattens_and_truncates() -> None:
    assert one_line("a\n b\t\tc", 10) == "a b c"
    assert one_line("x" * 20, 10) == "x" * 9 + "…"


def test_summary_shows_urgency_customer_text_and_earlier_history_oldest_first() -> None:
    offer = Offer(work_item(), True, Recorder())
    lines = summary(offer, NOW).splitlines()
    assert lines[0] == "── default  P2  due in 4m12s  Maria Lopez  chat  (redelivered)"
    assert lines[1] == "  > My order arrived broken"
    assert lines[2:] == [
        "    11-20 08:00 sms    Hello",
        "    11-21 09:30 email  Where is my order?",
    ]


def test_summary_with_subject_and_no_name_and_a_short_history() -> None:
    item = work_item(customer={"name": None, "identities": [], "attributes": {}})
    item.message.subject = "Broken"
    text = summary(Offer(item, False, Recorder()), NOW + timedelta(minutes=10), history=1)
    assert text.splitlines() == [
        "── default  P2  overdue 5m48s  Maria (chat)  chat",
        "  > Broken: My order arrived broken",
        "    11-21 09:30 email  Where is my order?",
    ]


def test_decode_ignores_unknown_fields_and_refuses_what_is_not_an_item() -> None:
    assert work_item().item_id == "itm_1"
    with pytest.raises(ClientError) as caught:
        decode_item(b'{"item_id": 1}')
    assert caught.value.code == "bad_item"


async def test_an_offer_settles_once() -> None:
    settle = Recorder()
    offer = Offer(work_item(), False, settle)
    await offer.nack(requeue=False)
    with pytest.raises(ClientError) as caught:
        await offer.ack()
    assert caught.value.code == "already_settled"
    assert settle.calls == [(False, False)]
    assert offer.settled


def test_error_bodies() -> None:
    error = error_from(404, {"error": {"code": "not_found", "message": "no conversation 'x'"}})
    assert (error.status, error.code, error.message) == (404, "not_found", "no conversation 'x'")
    assert error_from(502, None).code == "http_error"
    assert error_from(500, {"detail": "?"}).message == "HTTP 500"


async def test_keys_from_a_pipe_are_one_per_line_and_end_as_quit() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"A\n\ntransfer me\nbilling\n")
    reader.feed_eof()
    keys, out = Keys(reader), io.StringIO()
    assert await keys.key("> ", out) == "a"
    assert await keys.key("> ", out) == ""
    assert await keys.key("> ", out) == "t"
    assert await keys.line("queue> ", out) == "billing"
    assert await keys.key("> ", out) == "q"
    assert out.getvalue() == "> \n> \n> \nqueue> \n> \n"


async def test_keys_on_a_terminal_are_single_bytes_and_lines_are_cooked() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"R\nhello there\n")
    cooked: list[str] = []

    @contextlib.contextmanager
    def line_mode() -> Iterator[None]:
        cooked.append("on")
        yield

    keys, out = Keys(reader, cooked=line_mode), io.StringIO()
    assert await keys.key("> ", out) == "r"
    assert await keys.key("> ", out) == ""  # Enter
    assert await keys.line("reply> ", out) == "hello there"
    assert cooked == ["on"]
