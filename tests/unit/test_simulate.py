"""The simulator's parts: agents spec, traffic files, the simulated store's updates."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from router import urgency
from router.errors import ConfigError, InputError
from router.models import ConversationUpdate, InboundMessage, ItemChange, Sender, Timer
from router.simulate.agents import load_agents, parse_agents
from router.simulate.backlog import Backlogs, Item, Timers, apply_update, fifo_key, policy_key
from router.simulate.generate import day_shape, generate
from router.simulate.prepare import Arrival
from router.simulate.traffic import (
    HANDLING,
    TrafficRecord,
    handle_times,
    parse_traffic,
    write_traffic,
)

CONFIG = Path(__file__).parents[2] / "config" / "simulate"
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


# --- agents ---------------------------------------------------------------------------


def test_the_example_agents_spec_loads() -> None:
    spec = load_agents(CONFIG / "agents.toml")
    assert spec.queues == {"support", "billing"}
    early = spec.groups[0]
    start, end = early.shift(date(2026, 3, 10), spec.zone)
    assert (start.hour, end.hour) == (7, 15)  # 08:00-16:00 in Madrid (UTC+1 in March)


def test_a_shift_ending_before_it_starts_ends_the_next_day() -> None:
    spec, problems = parse_agents(
        {
            "groups": [
                {"name": "night", "count": 1, "queues": ["q"], "start": "22:00", "end": "06:00"}
            ]
        }
    )
    assert not problems
    start, end = spec.groups[0].shift(date(2026, 3, 10), spec.zone)
    assert end - start == timedelta(hours=8)


def test_agents_spec_problems_are_all_reported_by_key() -> None:
    raw = {
        "timezone": "Mars/Olympus",
        "color": "red",
        "groups": [
            {"name": "a", "count": 0, "queues": [], "start": "25:00", "end": "9:00", "x": 1},
            {"name": "b", "count": 1, "queues": ["q"], "start": "08:00", "end": "16:00"},
            {"name": "b", "count": 1, "queues": ["q"], "start": "08:00", "end": "16:00"},
        ],
    }
    _, problems = parse_agents(raw)
    text = "\n".join(problems)
    for expected in (
        "color: unknown key",
        "timezone: unknown time zone 'Mars/Olympus'",
        "groups[0].count: must be an integer of at least 1",
        "groups[0].queues: must be a non-empty list",
        'groups[0].start: must be a local time "HH:MM"',
        'groups[0].end: must be a local time "HH:MM"',
        "groups[0].x: unknown key",
        "groups: duplicate name 'b'",
    ):
        assert expected in text


def test_a_json_agents_spec_with_problems_raises_config_error(tmp_path: Path) -> None:
    path = tmp_path / "agents.json"
    path.write_text('{"groups": []}')
    with pytest.raises(ConfigError, match="groups: must be a non-empty list"):
        load_agents(path)


# --- traffic --------------------------------------------------------------------------


def _record(at: datetime, handle_s: float | None = None) -> TrafficRecord:
    message = InboundMessage(
        channel="chat",
        source="webchat",
        external_id=f"m{at.timestamp()}",
        sender=Sender(),
        thread="t1",
        text="hello",
    )
    return TrafficRecord(at=at, message=message, handle_s=handle_s)


def test_traffic_round_trips_through_jsonl_in_arrival_order() -> None:
    records = [_record(T0 + timedelta(minutes=5), 300.0), _record(T0)]
    out = io.StringIO()
    assert write_traffic(records, out) == 2
    back = parse_traffic(out.getvalue().splitlines())
    assert [r.at for r in back] == [T0, T0 + timedelta(minutes=5)]
    assert back[1].handle_s == 300.0


def test_bad_traffic_lines_are_named() -> None:
    message = '{"channel": "chat", "source": "w", "external_id": "1", "sender": {}, "thread": "t"}'
    good = '{"at": "2026-03-10T09:00:00Z", "message": ' + message + "}"
    naive = good.replace("09:00:00Z", "09:00:00")
    with pytest.raises(InputError) as caught:
        parse_traffic([good, "", naive, "{not json"], name="day.jsonl")
    assert "day.jsonl:3:" in caught.value.message
    assert "day.jsonl:4:" in caught.value.message


def test_missing_handling_times_are_drawn_per_channel_with_the_seed() -> None:
    records = [_record(T0 + timedelta(seconds=i)) for i in range(2000)] + [_record(T0, 42.0)]
    first, again = handle_times(records, seed=3), handle_times(records, seed=3)
    assert first == again
    assert first[-1] == 42.0
    mean = sum(first[:-1]) / 2000
    assert mean == pytest.approx(HANDLING["chat"].mean_s, rel=0.08)


# --- the simulated store --------------------------------------------------------------


def _item(seq: int, score: int, queue: str = "q", skills: frozenset[str] = frozenset()) -> Item:
    return Item(
        item_id=f"itm_{seq}",
        conversation_id=f"con_{seq}",
        seq=seq,
        arrived_s=0.0,
        queue=queue,
        priority=3,
        due_s=0.0,
        handle_s=60.0,
        skills=skills,
        score=score,
        current_priority=3,
    )


def test_backlog_gives_the_most_urgent_item_an_agent_may_take() -> None:
    backlogs = Backlogs(policy_key)
    a, b, c = _item(1, 500), _item(2, 100, skills=frozenset({"es"})), _item(3, 300, queue="r")
    for item in (a, b, c):
        backlogs.put(item, item.queue)
    assert backlogs.best(("q", "r"), frozenset()) is c
    assert backlogs.best(("q", "r"), frozenset({"es"})) is b
    backlogs.take(b)
    assert backlogs.best(("q",), frozenset({"es"})) is a
    assert {i.item_id for i in backlogs.waiting()} == {"itm_1", "itm_3"}


def test_fifo_backlog_ignores_the_score() -> None:
    backlogs = Backlogs(fifo_key)
    backlogs.put(_item(1, 900), "q")
    backlogs.put(_item(2, 100), "q")
    found = backlogs.best(("q",), frozenset())
    assert found is not None
    assert found.seq == 1


def _conv_arrival() -> Arrival:
    from router.models import Decision, NormalizedMessage

    message = NormalizedMessage(
        channel="chat",
        source="webchat",
        external_id="1",
        sender_name=None,
        identities=(),
        customer_attributes={},
        thread="t",
        subject=None,
        text="",
        sent_at=T0,
        received_at=T0,
        attachments=(),
        attributes={},
    )
    decision = Decision(queue="q", priority=3, deadline=T0 + timedelta(hours=1))
    return Arrival(
        seq=1,
        at=T0,
        at_s=T0.timestamp(),
        thread="x",
        customer_id="cus_1",
        message=message,
        decision=decision,
        score=urgency.score(decision.deadline, 3),
        due_s=0.0,
        handle_s=60.0,
    )


def test_an_escalation_rescores_never_less_urgent_and_moves_the_item() -> None:
    conv = _conv_arrival().conversation()
    item = _item(1, urgency.score(T0 + timedelta(hours=1), 3))
    backlogs, timers = Backlogs(policy_key), Timers()
    backlogs.put(item, "q")
    timer = Timer(conversation_id=conv.conversation_id, kind="warning", ref="x", at=T0)
    later = ItemChange(priority=2, deadline=T0 + timedelta(hours=5), move_to="r")
    update = ConversationUpdate(expected_version=1, priority=2, item=later, arm=[timer])
    applied = apply_update(conv, update, item, backlogs, timers)
    assert applied.conversation.version == 2
    assert applied.conversation.priority == 2
    assert item.score == urgency.score(T0 + timedelta(hours=1), 2)  # the later deadline is ignored
    assert urgency.deadline_of(item.score) == T0 + timedelta(hours=1)
    assert applied.offered == ["r"]
    assert backlogs.best(("q",), frozenset()) is None
    assert backlogs.best(("r",), frozenset()) is item
    assert timers.fire(timer)
    assert not timers.fire(timer)


def test_also_offer_and_withdraw() -> None:
    conv = _conv_arrival().conversation()
    item = _item(1, 100)
    backlogs, timers = Backlogs(policy_key), Timers()
    backlogs.put(item, "q")
    update = ConversationUpdate(expected_version=1, item=ItemChange(also_offer="r"))
    conv = apply_update(conv, update, item, backlogs, timers).conversation
    assert backlogs.best(("r",), frozenset()) is item
    assert backlogs.best(("q",), frozenset()) is item
    update = ConversationUpdate(
        expected_version=2, state="resolved", item=ItemChange(withdraw=True)
    )
    conv = apply_update(conv, update, item, backlogs, timers).conversation
    assert conv.item_id is None
    assert conv.state == "resolved"
    assert backlogs.best(("q", "r"), frozenset()) is None


def test_an_update_for_another_version_is_a_bug() -> None:
    conv = _conv_arrival().conversation()
    with pytest.raises(AssertionError):
        apply_update(
            conv, ConversationUpdate(expected_version=7), None, Backlogs(fifo_key), Timers()
        )


# --- the generator --------------------------------------------------------------------


def test_the_generated_day_is_deterministic_for_a_seed() -> None:
    spec = load_agents(CONFIG / "agents.toml")
    day = date(2026, 3, 10)
    first = generate(spec, day=day, seed=5, overload=1.2)
    assert first == generate(spec, day=day, seed=5, overload=1.2)
    assert first != generate(spec, day=day, seed=6, overload=1.2)
    assert all(a.at <= b.at for a, b in itertools.pairwise(first))


def test_the_overload_window_brings_twenty_percent_more_work_than_capacity() -> None:
    spec = load_agents(CONFIG / "agents.toml")
    day = date(2026, 3, 10)
    shape = day_shape(spec, day, overload=1.2, overload_hours=2, overload_start=None, load=0.85)
    first, last = shape.overloaded
    assert last - first == 8  # two hours of 15-minute bins
    for i in range(first, last):
        mid = shape.start + timedelta(seconds=900 * i + 450)
        staff = sum(
            g.count
            for g in spec.groups
            if g.shift(day, spec.zone)[0] <= mid < g.shift(day, spec.zone)[1]
        )
        work = sum(shape.rates[c][i] * HANDLING[c].mean_s for c in shape.rates)
        assert work == pytest.approx(1.2 * staff)


def test_chat_peaks_mid_morning_and_mid_afternoon_while_email_stays_flat() -> None:
    spec = load_agents(CONFIG / "agents.toml")
    shape = day_shape(
        spec, date(2026, 3, 10), overload=1.0, overload_hours=0, overload_start=None, load=0.85
    )
    chat, email = shape.rates["chat"], shape.rates["email"]
    local = [
        (shape.start + timedelta(seconds=900 * i)).astimezone(spec.zone).hour
        for i in range(len(chat))
    ]
    by_hour = {h: chat[i] for i, h in enumerate(local)}
    assert by_hour[10] > by_hour[13] < by_hour[15]
    assert max(email) / min(email) < max(chat) / min(chat)
