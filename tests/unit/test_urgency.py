from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from router.urgency import deadline_of, score

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

deadlines = st.integers(min_value=0, max_value=10**11).map(
    lambda ms: EPOCH + timedelta(milliseconds=ms)
)
priorities = st.integers(min_value=1, max_value=5)


@given(st.lists(st.tuples(deadlines, priorities), min_size=1, max_size=50))
def test_score_order_is_deadline_then_priority(items: list[tuple[datetime, int]]) -> None:
    by_score = sorted(items, key=lambda it: score(*it))
    by_model = sorted(items, key=lambda it: (it[0], it[1]))
    assert [(d, p) for d, p in by_score] == by_model


@given(deadlines, priorities)
def test_score_is_exact_in_a_double_and_round_trips(deadline: datetime, priority: int) -> None:
    value = score(deadline, priority)
    assert float(value) == value
    assert deadline_of(value) == deadline
