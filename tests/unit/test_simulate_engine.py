"""The discrete-event engine: orderings, agents, shifts, skills, joins, measurements;
then the real policy, its escalations and overflow, and the issue's acceptance day."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from router.models import (
    Conversation,
    ConversationUpdate,
    Decision,
    IdentityIn,
    InboundMessage,
    NormalizedMessage,
    RoutingContext,
    Sender,
    Timer,
)
from router.settings import load
from router.simulate.adapter import load_router, router_for
from router.simulate.agents import AgentsSpec, load_agents, parse_agents
from router.simulate.generate import generate
from router.simulate.report import format_report, percentile, to_json
from router.simulate.simulation import Outcome, default_day, simulate
from router.simulate.traffic import TrafficRecord

CONFIG = Path(__file__).parents[2] / "config" / "simulate"
DAY = date(2026, 3, 10)
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
TARGET_S = {1: 300, 2: 900, 3: 3600, 4: 14400, 5: 28800}


class TableRouter:
    """A supported ``SimRouter`` for engine tests: the message's ``attributes`` say its
    queue, priority and skills; no lifecycle."""

    max_wait_s = (1800.0, 3600.0, 7200.0, 14400.0, 28800.0)
    default_region = None

    def decide(
        self,
        message: NormalizedMessage,
        context: RoutingContext,
        *,
        conversation_id: str,
        item_id: str,
        now: datetime,
    ) -> Decision:
        attrs = message.attributes
        priority = int(attrs.get("p", 3))
        return Decision(
            queue=str(attrs.get("queue", "q")),
            priority=priority,
            deadline=now + timedelta(seconds=TARGET_S[priority]),
            skills=list(attrs.get("skills", [])),
        )

    def on_timer(
        self, conv: Conversation, timer: Timer, now: datetime
    ) -> ConversationUpdate | None:
        return None

    def on_agent(
        self, conv: Conversation, event: str, agent_id: str, now: datetime
    ) -> ConversationUpdate | None:
        return None


def _agents(*groups: dict[str, object]) -> AgentsSpec:
    spec, problems = parse_agents({"groups": list(groups)})
    assert not problems
    return spec


def _group(
    name: str = "g", count: int = 1, queues: tuple[str, ...] = ("q",), **extra: object
) -> dict[str, object]:
    return {
        "name": name,
        "count": count,
        "queues": list(queues),
        "start": "09:00",
        "end": "17:00",
        **extra,
    }


def _msg(
    n: int, at_min: float, handle_s: float = 600.0, thread: str | None = None, **attrs: object
) -> TrafficRecord:
    message = InboundMessage(
        channel="chat",
        source="webchat",
        external_id=f"m{n}",
        sender=Sender(identities=[IdentityIn(kind="chat_visitor", value=f"v{n}")]),
        thread=thread or f"t{n}",
        attributes=dict(attrs),
    )
    return TrafficRecord(at=T0 + timedelta(minutes=at_min), message=message, handle_s=handle_s)


def _run(records: list[TrafficRecord], spec: AgentsSpec, *orderings: str) -> Outcome:
    return simulate(
        records, spec, TableRouter(), day=DAY, orderings=orderings or ("policy", "fifo", "strict")
    )


def _waits(outcome: Outcome, ordering: str) -> dict[int, float]:
    rows = outcome.summary(ordering).rows
    return {r.priority: r.max_s for r in rows}


def test_one_agent_serves_in_the_order_under_test() -> None:
    # one agent busy 10 min with the first; then a p4, a p3, a p1 wait
    records = [_msg(0, 0, p=3), _msg(1, 1, p=4), _msg(2, 2, p=3), _msg(3, 3, p=1)]
    outcome = _run(records, _agents(_group()))
    fifo = outcome.summary("fifo")
    assert [r.max_s for r in fifo.rows] == [27 * 60, 18 * 60, 9 * 60]  # p1, p3, p4
    strict = _waits(outcome, "strict")
    assert strict == {1: 7 * 60, 3: 18 * 60, 4: 29 * 60}
    policy = _waits(outcome, "policy")  # deadline order: p1 due 9:08, p3 due 10:00/10:02, p4 13:01
    assert policy == strict


def test_deadline_order_serves_an_old_low_priority_item_before_a_fresh_urgent_one() -> None:
    # a p4 that waited beyond the p3's whole target is due first under the policy
    records = [_msg(0, 0, handle_s=5 * 3600, p=3), _msg(1, 1, p=4)]
    records += [_msg(2, 60 * 4, p=3)]
    outcome = _run(records, _agents(_group()), "policy", "strict")
    assert _waits(outcome, "policy")[4] < _waits(outcome, "strict")[4]


def test_items_needing_skills_wait_for_an_agent_with_them() -> None:
    spec = _agents(_group("plain", start="09:00"), _group("es", skills=["es"], start="10:00"))
    outcome = _run([_msg(0, 0, skills=["es"]), _msg(1, 0)], spec, "fifo")
    (row,) = outcome.summary("fifo").rows
    assert (row.p50_s, row.max_s) == (0.0, 3600.0)  # the Spanish one waits for 10:00


def test_agents_take_work_only_on_shift_and_utilisation_is_busy_over_shift() -> None:
    spec = _agents(_group(start="10:00", end="12:00"))
    outcome = _run([_msg(0, 0, handle_s=1800)], spec, "fifo")
    summary = outcome.summary("fifo")
    assert summary.rows[0].max_s == 3600  # arrived 09:00, shift at 10:00
    assert summary.utilisation == {"q": pytest.approx(0.25)}
    assert summary.groups == {"g": pytest.approx(0.25)}


def test_work_left_at_the_end_of_the_day_counts_unserved_and_breached() -> None:
    spec = _agents(_group(start="09:00", end="09:30"))
    outcome = _run([_msg(0, 0, handle_s=3600, p=1), _msg(1, 1, p=1)], spec, "fifo")
    summary = outcome.summary("fifo")
    assert (summary.count, summary.unserved, summary.breaches) == (2, 1, 1)
    row = summary.rows[0]
    assert row.max_s == 29 * 60  # censored at the end of the last shift
    assert row.attainment == 0.5


def test_a_message_on_a_waiting_thread_joins_its_item() -> None:
    spec = _agents(_group())
    records = [
        _msg(0, 0, handle_s=600),
        _msg(1, 1, handle_s=300, thread="x"),
        _msg(2, 2, handle_s=300, thread="x"),
    ]
    records[2].message.sender.identities = records[1].message.sender.identities
    outcome = _run(records, spec, "fifo")
    summary = outcome.summary("fifo")
    assert summary.count == 2
    assert summary.rows[0].max_s == 9 * 60


def test_the_report_prints_every_ordering_side_by_side() -> None:
    outcome = _run([_msg(0, 0, p=2), _msg(1, 0, p=5)], _agents(_group(count=2)))
    text = format_report(outcome.summaries, max_wait_s=TableRouter.max_wait_s)
    assert "policy" in text
    assert "fifo" in text
    assert "strict" in text
    assert "q             p2" in text
    assert "lowest priority p5" in text
    data = to_json(outcome.summaries)
    assert data["fifo"]["rows"][0]["attainment"] == 1.0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile([], 0.5)) == (50, 95, 0)


# --- the real policy ------------------------------------------------------------------


def _policy_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[routing]\nqueues = ["support", "billing"]\ndefault_queue = "support"\n'
        '[sla.default]\n[[sla.default.targets]]\nfirst_response = "1h"\n' + extra
    )
    return path


def test_escalation_timers_fire_through_the_real_lifecycle(tmp_path: Path) -> None:
    router = load_router(_policy_config(tmp_path))
    records = [_msg(n, 0, handle_s=1300) for n in range(5)]
    outcome = simulate(records, _agents(_group(queues=("support",))), router, day=DAY)
    policy = outcome.summary("policy")
    # waits 0, 21.7, 43.3, 65, 86.7 min: the last two warned at 45 and breached at 60 min
    assert policy.escalations == 4
    assert policy.breaches == 2
    assert outcome.summary("fifo").escalations == 0


def test_overflow_offers_a_waiting_item_to_another_queue(tmp_path: Path) -> None:
    extra = '[queues.billing]\noverflow = { to = "support", after_s = 600, mode = "also" }\n'
    router = load_router(
        _policy_config(
            tmp_path,
            extra + '[[rules]]\nname = "b"\nmatch.words = ["refund"]\nthen.queue = "billing"\n',
        )
    )
    record = _msg(0, 0)
    record.message.text = "refund please"
    outcome = simulate([record], _agents(_group(queues=("support",))), router, day=DAY)
    assert outcome.summary("policy").rows[0].max_s == 600
    assert outcome.summary("fifo").unserved == 1  # the baselines have no overflow


# --- acceptance: the overload day ---------------------------------------------


@pytest.fixture(scope="module")
def overload_day() -> tuple[Outcome, tuple[float, ...], float]:
    spec = load_agents(CONFIG / "agents.toml")
    settings = load(CONFIG / "policy.toml", env={})
    router = router_for(settings)
    records = generate(spec, day=DAY, seed=1, overload=1.2, overload_hours=2)
    started = time.perf_counter()
    outcome = simulate(records, spec, router, day=default_day(records, spec), seed=1)
    return outcome, settings.routing.max_wait_s, time.perf_counter() - started


def test_on_the_overload_day_the_policy_breaches_at_most_half_as_often_as_fifo(
    overload_day: tuple[Outcome, tuple[float, ...], float],
) -> None:
    outcome, _, _ = overload_day
    policy, fifo = outcome.summary("policy"), outcome.summary("fifo")
    assert fifo.breaches > 0
    assert policy.breach_rate <= fifo.breach_rate / 2
    assert policy.unserved == fifo.unserved == 0


def test_on_the_overload_day_the_lowest_priority_waits_within_its_aging_bound(
    overload_day: tuple[Outcome, tuple[float, ...], float],
) -> None:
    outcome, max_wait_s, _ = overload_day
    policy = outcome.summary("policy")
    lowest = max(r.priority for r in policy.rows)
    assert lowest == 5
    assert 0 < policy.max_wait_s(lowest) <= max_wait_s[lowest - 1]


def test_a_simulated_day_takes_seconds(
    overload_day: tuple[Outcome, tuple[float, ...], float],
) -> None:
    outcome, _, elapsed_s = overload_day
    assert outcome.summary("policy").count > 500
    assert elapsed_s < 10
