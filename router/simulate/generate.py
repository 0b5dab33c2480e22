"""A realistic day of traffic, sized against the agents who will work it.

Per channel an hourly arrival curve (email flat through the day, chat and social peaking
mid-morning and mid-afternoon, sms low) and a share of the volume; handling times are
lognormal per channel (``traffic.HANDLING``). The volume is scaled so that the busiest
hour keeps the agents on shift ``load`` busy (0.85), and with ``overload`` > 1 the
busiest ``overload_hours`` get arrivals worth ``overload`` times the capacity on shift
(1.2: 20 % more work than the agents can do). Priorities are not drawn here: they arise
from the policy's rules, from what the messages carry (a VIP tier, urgent words, a
billing topic, a customer's language, repeated contacts). Deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from router.models import IdentityIn, InboundMessage, Sender
from router.simulate.agents import AgentsSpec
from router.simulate.traffic import HANDLING, TrafficRecord

BIN_S = 900
# Relative arrivals per local hour 0..23.
CURVES: dict[str, tuple[float, ...]] = {
    "email": (2, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 9, 8, 8, 9, 9, 8, 7, 6, 5, 4, 3, 3, 2),
    "chat": (1, 0, 0, 0, 0, 0, 1, 3, 6, 9, 10, 9, 6, 6, 8, 10, 9, 6, 4, 3, 3, 2, 2, 1),
    "social": (2, 1, 1, 0, 0, 0, 1, 2, 4, 7, 8, 7, 6, 6, 7, 8, 8, 7, 6, 6, 5, 4, 3, 2),
    "sms": (0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 3, 3, 4, 4, 4, 3, 2, 2, 1, 1, 1, 0),
}
SHARES = {"email": 0.40, "chat": 0.35, "social": 0.15, "sms": 0.10}
SOURCES = {"email": "postmark", "chat": "webchat", "social": "twitter", "sms": "twilio"}


@dataclass(frozen=True)
class DayShape:
    """The generated day's arrival rates: per channel, per ``BIN_S`` bin, per second."""

    start: datetime
    rates: dict[str, list[float]]
    overloaded: tuple[int, int]
    """The overloaded bins [first, last) (empty when there is no overload)."""


def generate(
    spec: AgentsSpec,
    *,
    day: date,
    seed: int,
    overload: float = 1.0,
    overload_hours: float = 2.0,
    overload_start: time | None = None,
    load: float = 0.85,
) -> list[TrafficRecord]:
    shape = day_shape(
        spec,
        day,
        overload=overload,
        overload_hours=overload_hours,
        overload_start=overload_start,
        load=load,
    )
    rng = random.Random(seed)  # noqa: S311 — a simulation, not cryptography
    people = _Customers(rng)
    times = [(at, channel) for channel in CURVES for at in _arrivals(shape, channel, rng)]
    times.sort()
    return [people.record(n, at, channel) for n, (at, channel) in enumerate(times)]


def day_shape(
    spec: AgentsSpec,
    day: date,
    *,
    overload: float,
    overload_hours: float,
    overload_start: time | None,
    load: float,
) -> DayShape:
    """Arrival rates sized against the agents on shift in each bin."""
    shifts = [(g.count, *g.shift(day, spec.zone)) for g in spec.groups]
    start = min(s for _, s, _ in shifts)
    end = max(e for _, _, e in shifts) - timedelta(minutes=30)
    bins = [
        start + timedelta(seconds=BIN_S * i)
        for i in range(int((end - start).total_seconds() // BIN_S))
    ]
    shape = {c: [SHARES[c] * _curve(c, b.astimezone(spec.zone)) for b in bins] for c in CURVES}
    work = [sum(shape[c][i] * HANDLING[c].mean_s for c in CURVES) for i in range(len(bins))]
    staff = [
        sum(n for n, s, e in shifts if s <= b + timedelta(seconds=BIN_S / 2) < e) for b in bins
    ]
    first, last = _window(
        bins, work, spec, overload=overload, hours=overload_hours, start=overload_start
    )
    busy = [work[i] / staff[i] for i in range(len(bins)) if staff[i] and not first <= i < last]
    scale = load / max(busy)
    rates = {c: [scale * v for v in shape[c]] for c in CURVES}
    for i in range(first, last):
        boost = overload * staff[i] / (scale * work[i])
        for c in CURVES:
            rates[c][i] *= boost
    return DayShape(start, rates, (first, last))


def _curve(channel: str, local: datetime) -> float:
    """The channel's curve, linear between hour midpoints."""
    curve = CURVES[channel]
    hour = local.hour + local.minute / 60 + 0.125 - 0.5
    low = int(hour // 1) % 24
    frac = hour - int(hour // 1)
    return curve[low] * (1 - frac) + curve[(low + 1) % 24] * frac + 0.01


def _window(
    bins: list[datetime],
    work: list[float],
    spec: AgentsSpec,
    *,
    overload: float,
    hours: float,
    start: time | None,
) -> tuple[int, int]:
    if overload <= 1.0 or hours <= 0:
        return (0, 0)
    width = min(len(bins), round(hours * 3600 / BIN_S))
    if start is not None:
        local = [b.astimezone(spec.zone).time() for b in bins]
        first = next((i for i, t in enumerate(local) if t >= start), 0)
    else:
        sums = [sum(work[i : i + width]) for i in range(len(bins) - width + 1)]
        first = sums.index(max(sums))
    return first, min(len(bins), first + width)


def _arrivals(shape: DayShape, channel: str, rng: random.Random) -> list[datetime]:
    out: list[datetime] = []
    for i, rate in enumerate(shape.rates[channel]):
        t = rng.expovariate(rate) if rate > 0 else BIN_S
        while t < BIN_S:
            out.append(shape.start + timedelta(seconds=BIN_S * i + round(t, 3)))
            t += rng.expovariate(rate)
    return out


# --- messages ------------------------------------------------------------------------

GENERAL = (
    "Where is my order {n}? It has not arrived yet",
    "I cannot log in to my account since yesterday",
    "How do I change the delivery address of my order {n}",
    "The app crashes when I open the basket",
    "Can you tell me if the blue model is back in stock",
    "I want to return the shoes from order {n}",
)
BILLING = (
    "I was charged twice for order {n}, please refund one payment",
    "Please send me the invoice for order {n}",
    "Why is there an extra charge on my card",
    "My refund for order {n} has not arrived",
)
FEEDBACK = (
    "Some feedback: the new checkout is great, thanks",
    "A suggestion for your website: add a dark mode",
)
URGENT = ("URGENT: ", "Please help asap, ", "Urgent - ")


class _Customers:
    """A pool of customers; some write more than once in the day (repeat contacts)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._size = 0

    def record(self, n: int, at: datetime, channel: str) -> TrafficRecord:
        rng = self._rng
        returning = self._size > 40 and rng.random() < 0.12
        who = rng.randrange(self._size) if returning else self._size
        self._size += not returning
        message = InboundMessage(
            channel=channel,  # type: ignore[arg-type]  # one of CURVES, all channels
            source=SOURCES[channel],
            external_id=f"sim-{n}",
            sender=_sender(who, channel),
            text=_text(rng),
            thread=f"t{n}",
            subject="Customer request" if channel == "email" else None,
            sent_at=at,
        )
        return TrafficRecord(
            at=at.astimezone(UTC), message=message, handle_s=HANDLING[channel].draw(rng)
        )


def _sender(who: int, channel: str) -> Sender:
    """The customer's profile is fixed by who they are (8 % VIP, 15 % Spanish)."""
    identity = {
        "email": IdentityIn(kind="email", value=f"customer{who}@example.com", verified=True),
        "sms": IdentityIn(kind="sms", value=f"+34600{who:06d}", verified=True),
        "chat": IdentityIn(kind="chat_visitor", value=f"visitor-{who}"),
        "social": IdentityIn(kind="twitter", value=f"user{who}", verified=True),
    }[channel]
    tier = "vip" if (who * 2654435761) % 100 < 8 else "standard"
    language = "es" if (who * 40503) % 100 < 15 else "en"
    return Sender(
        name=f"Customer {who}",
        identities=[identity],
        attributes={"tier": tier, "language": language},
    )


def _text(rng: random.Random) -> str:
    pick = rng.random()
    pool = FEEDBACK if pick < 0.08 else BILLING if pick < 0.30 else GENERAL
    text = rng.choice(pool).format(n=rng.randrange(100000, 999999))
    if pool is not FEEDBACK and rng.random() < 0.10:
        text = rng.choice(URGENT) + text[0].lower() + text[1:]
    return text
