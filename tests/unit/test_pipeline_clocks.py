"""The pipeline reads a conversation after a customer's follow-up only when that read can
move something (``router.pipeline.may_move_clocks``): the follow-up on an open
conversation that still owes a response costs no read; a pending, reopened or answered
one, or one that gets a new backlog item, is read and its clocks move as before.

The counting tests run the real pipeline, lifecycle and embedded store (``SqliteStore``
in a temporary file) and counts the store's conversation reads around each message."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from router.backends.memory_broker import MemoryBroker
from router.backends.sqlite_store import SqliteStore
from router.clock import ManualClock
from router.conversations import Conversations
from router.lifecycle import AgentEvent
from router.metrics import Metrics
from router.models import (
    Conversation,
    ConversationState,
    IdentityIn,
    InboundMessage,
    IngestResult,
    Sender,
)
from router.pipeline import Ingestor, may_move_clocks, timed_overflow_queues
from router.policy import load_policy
from router.ports import Store
from router.queue_spec import OverflowSpec, QueueSpec
from router.settings import load

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CONFIG = """
[routing]
queues = ["default"]
default_sla = "standard"

[sla.standard]
[[sla.standard.targets]]
first_response = "1h"
next_response = "2h"
resolution = "1d"
"""


# --- the rule, case by case ---------------------------------------------------------------


def result(
    previous_state: ConversationState | None,
    *,
    awaiting: bool = True,
    reopened: bool = False,
    created: bool = False,
) -> IngestResult:
    return IngestResult(
        message_id="msg_1",
        customer_id="cus_1",
        conversation_id="con_1",
        queue="default",
        priority=3,
        deadline=T0,
        item_id="itm_1",
        conversation_created=created,
        reopened=reopened,
        previous_state=previous_state,
        awaiting_response=awaiting,
    )


def test_an_open_conversation_owing_a_response_is_not_read() -> None:
    assert not may_move_clocks(result("open"), new_item=False)
    assert not may_move_clocks(result("open"), new_item=True, overflow_queues={"billing"})


def test_timed_overflow_queues_are_those_with_an_after_s() -> None:
    queues = {
        "default": QueueSpec(name="default"),
        "billing": QueueSpec(name="billing", overflow=OverflowSpec(to="tier2", after_s=900)),
        "tier2": QueueSpec(name="tier2", overflow=OverflowSpec(to="default", at="warning")),
    }
    assert timed_overflow_queues(queues) == {"billing"}


@pytest.mark.parametrize(
    ("stored", "new_item"),
    [
        (result("pending"), False),  # paused clocks resume
        (result("resolved", reopened=True), False),  # the resolution clock runs on
        (result("open", awaiting=False), False),  # answered (or no SLA): next response
        (result("open"), True),  # a new item: its overflow timer, queues unknown
        (result(None, created=True), True),  # new: on_stored returns without a read
    ],
)
def test_anything_else_is_read(stored: IngestResult, new_item: bool) -> None:
    assert may_move_clocks(stored, new_item)
    assert may_move_clocks(stored, new_item, overflow_queues={"default"})


# --- counted on the real pipeline ---------------------------------------------------------


class CountingStore:
    """The real store; counts ``get_conversation`` calls (what ``on_stored`` costs)."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.reads = 0

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        self.reads += 1
        return await self.inner.get_conversation(conversation_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class Harness:
    store: CountingStore
    clock: ManualClock
    ingestor: Ingestor
    conversations: Conversations
    ids: itertools.count[int]

    async def write(self) -> tuple[IngestResult, int]:
        """Maria writes on thread ``t`` a minute later; the result and the reads it cost."""
        self.clock.advance(60)
        message = InboundMessage(
            channel="chat",
            source="webchat",
            external_id=f"m{next(self.ids)}",
            sender=Sender(identities=[IdentityIn(kind="chat_visitor", value="v1", verified=True)]),
            thread="t",
            text="hello?",
        )
        before = self.store.reads
        stored = await self.ingestor.ingest(message)
        return stored, self.store.reads - before

    async def conversation(self, conversation_id: str) -> Conversation:
        found = await self.store.inner.get_conversation(conversation_id)
        assert found is not None
        return found

    async def agent(self, conversation_id: str, kind: str) -> None:
        event = AgentEvent(type=kind, agent_id="agent-7")  # type: ignore[arg-type]
        await self.conversations.event(conversation_id, event)


@pytest.fixture
def overflow_queues() -> frozenset[str] | None:
    """What the pipeline is told about overflow timers (None: nothing, every new item
    is read); a test overrides it by parametrizing."""
    return None


@pytest.fixture
async def harness(tmp_path: Path, overflow_queues: frozenset[str] | None) -> AsyncIterator[Harness]:
    path = tmp_path / "omniroute.toml"
    path.write_text(CONFIG)
    policy = load_policy(load(path, env={"OMNIROUTE_DATA_DIR": str(tmp_path)}))
    store = CountingStore(SqliteStore(tmp_path / "omniroute.sqlite3"))
    broker = MemoryBroker()
    await store.inner.open()
    await broker.open()
    clock, metrics = ManualClock(T0), Metrics()
    port = cast("Store", store)
    conversations = Conversations(
        store=port,
        broker=broker,
        clock=clock,
        config=policy.lifecycle,
        metrics=metrics,
        on_queued=lambda queue: None,
    )
    ingestor = Ingestor(
        store=port,
        policy=policy,
        clock=clock,
        metrics=metrics,
        default_region=None,
        batch_max=10,
        reopen_window_s=86400,
        on_queued=lambda queue: None,
        on_merged=lambda stored: None,
        on_stored=conversations.customer_message,
        overflow_queues=overflow_queues,
    )
    yield Harness(store, clock, ingestor, conversations, itertools.count())
    await ingestor.close()
    await broker.close()
    await store.inner.close()


def kinds_running(conversation: Conversation) -> list[str]:
    assert conversation.sla is not None
    return sorted(c.kind for c in conversation.sla.clocks if c.status == "running")


async def test_a_follow_up_while_a_response_is_owed_costs_no_read(harness: Harness) -> None:
    first, reads = await harness.write()
    assert (first.conversation_created, first.awaiting_response, reads) == (True, True, 0)

    follow_up, reads = await harness.write()
    assert (follow_up.previous_state, follow_up.awaiting_response) == ("open", True)
    assert reads == 0
    stored = await harness.conversation(first.conversation_id)
    assert stored.version == 1  # nothing was written either
    assert kinds_running(stored) == ["first_response", "resolution"]


async def test_a_follow_up_on_a_pending_conversation_resumes_its_clocks(
    harness: Harness,
) -> None:
    first, _ = await harness.write()
    await harness.agent(first.conversation_id, "pending")
    assert kinds_running(await harness.conversation(first.conversation_id)) == []

    follow_up, reads = await harness.write()
    assert (follow_up.previous_state, follow_up.awaiting_response) == ("pending", False)
    assert reads == 1
    stored = await harness.conversation(first.conversation_id)
    assert stored.state == "open"
    assert kinds_running(stored) == ["first_response", "resolution"]


async def test_after_a_reply_the_next_follow_up_starts_the_next_response_clock(
    harness: Harness,
) -> None:
    first, _ = await harness.write()
    await harness.agent(first.conversation_id, "replied")
    assert not (await harness.conversation(first.conversation_id)).awaiting_response

    follow_up, reads = await harness.write()
    assert (follow_up.previous_state, follow_up.awaiting_response, reads) == ("open", False, 1)
    stored = await harness.conversation(first.conversation_id)
    assert stored.awaiting_response
    assert kinds_running(stored) == ["next_response", "resolution"]

    _, reads = await harness.write()  # the next-response clock is owed now
    assert reads == 0


@pytest.mark.parametrize(
    ("overflow_queues", "expected_reads"),
    [(None, 1), (frozenset({"default"}), 1), (frozenset(), 0)],
)
async def test_a_follow_up_that_queues_a_new_item_is_read_if_its_queue_has_overflow_timers(
    harness: Harness, expected_reads: int
) -> None:
    first, _ = await harness.write()
    claimed = await harness.store.inner.claim(
        "default", 1, now=harness.clock.now(), lease_until=None, history_limit=1
    )
    assert [c.item.item_id for c in claimed] == [first.item_id]

    follow_up, reads = await harness.write()
    assert follow_up.item_id != first.item_id
    assert (follow_up.previous_state, follow_up.awaiting_response) == ("open", True)
    assert reads == expected_reads


async def test_a_follow_up_that_reopens_is_read(harness: Harness) -> None:
    first, _ = await harness.write()
    await harness.agent(first.conversation_id, "resolved")

    follow_up, reads = await harness.write()
    assert follow_up.reopened
    assert (follow_up.previous_state, follow_up.awaiting_response, reads) == (
        "resolved",
        False,
        1,
    )
    assert (await harness.conversation(first.conversation_id)).state == "open"
