"""Token buckets by key (a client address, a visitor): ``per_minute`` on average, bursts
up to ``burst``. Pure and in-process: each router process counts its own clients, and
the keys it remembers are bounded (the least recently seen are forgotten first)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from router.clock import Clock

MAX_KEYS = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: float
    """Seconds since the epoch of the last refill."""


class RateLimiter:
    def __init__(
        self, per_minute: float, *, burst: int, clock: Clock, max_keys: int = MAX_KEYS
    ) -> None:
        self._rate_per_s = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one token of ``key``'s bucket: 0.0 when there was one, else the seconds
        until there is (nothing is spent then)."""
        now = self._clock.now().timestamp()
        bucket = self._buckets.pop(key, None) or _Bucket(tokens=self._burst, at=now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate_per_s)
        bucket.at = now
        self._buckets[key] = bucket
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate_per_s
