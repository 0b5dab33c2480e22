from __future__ import annotations

from datetime import UTC, datetime

from router.clock import ManualClock
from router.ratelimit import RateLimiter


def test_a_burst_then_the_rate() -> None:
    clock = ManualClock(datetime(2026, 11, 22, tzinfo=UTC))
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 1.0, "one token a second: the next in 1 s"
    assert limiter.take("b") == 0.0, "every key has its own bucket"
    clock.advance(1)
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0.0
    clock.advance(600)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0], "refills up to the burst"
    assert limiter.take("a") > 0.0


def test_the_keys_remembered_are_bounded() -> None:
    clock = ManualClock(datetime(2026, 11, 22, tzinfo=UTC))
    limiter = RateLimiter(per_minute=1, burst=1, clock=clock, max_keys=2)
    assert limiter.take("a") == 0.0
    assert limiter.take("b") == 0.0
    assert limiter.take("c") == 0.0  # "a" is forgotten: the least recently seen
    assert limiter.take("a") == 0.0, "a forgotten key starts with a full bucket"
    assert limiter.take("c") > 0.0
