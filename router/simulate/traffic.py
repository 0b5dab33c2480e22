"""Traffic for the simulator: one JSON object per line, a canonical message plus when it
arrives and how long an agent needs for it::

    {"at": "2026-03-10T09:12:03Z", "handle_s": 340.0, "message": {<InboundMessage>}}

``handle_s`` may be absent: it is then drawn from the channel's handling-time
distribution (lognormal, ``HANDLING``), with a seed, so every ordering compared in one
run handles the same message for the same time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, TextIO

import msgspec

from router.errors import InputError
from router.models import InboundMessage

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class TrafficRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    at: AwareDatetime
    message: InboundMessage
    handle_s: Annotated[float, msgspec.Meta(gt=0)] | None = None


class Handling(msgspec.Struct, frozen=True):
    """A lognormal handling time: its mean in seconds and the sigma of its logarithm."""

    mean_s: float
    sigma: float

    def draw(self, rng: random.Random) -> float:
        mu = math.log(self.mean_s) - self.sigma**2 / 2
        return round(rng.lognormvariate(mu, self.sigma), 1)


HANDLING: dict[str, Handling] = {
    "chat": Handling(360, 0.5),
    "email": Handling(540, 0.6),
    "social": Handling(300, 0.5),
    "sms": Handling(240, 0.5),
    "voice": Handling(420, 0.4),
    "other": Handling(480, 0.6),
}

_decoder = msgspec.json.Decoder(TrafficRecord)
_encoder = msgspec.json.Encoder()
_MAX_PROBLEMS = 10


def read_traffic(path: Path) -> list[TrafficRecord]:
    """Every record of a JSONL file, in arrival order; ``InputError`` names the bad lines."""
    try:
        with path.open("rb") as fh:
            return parse_traffic(fh.readlines(), name=str(path))
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None


def parse_traffic(lines: Iterable[bytes | str], *, name: str = "traffic") -> list[TrafficRecord]:
    records: list[TrafficRecord] = []
    problems: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(_decoder.decode(line))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            problems.append(f"{name}:{number}: {exc}")
    if problems:
        more = len(problems) - _MAX_PROBLEMS
        tail = [f"... and {more} more"] if more > 0 else []
        raise InputError("bad traffic lines:\n  " + "\n  ".join(problems[:_MAX_PROBLEMS] + tail))
    records.sort(key=lambda r: r.at)
    return records


def write_traffic(records: Iterable[TrafficRecord], out: TextIO) -> int:
    count = 0
    for record in records:
        out.write(_encoder.encode(record).decode())
        out.write("\n")
        count += 1
    return count


def handle_times(records: list[TrafficRecord], seed: int) -> list[float]:
    """Each record's handling time: its own, else a seeded draw for its channel."""
    rng = random.Random(seed)  # noqa: S311 — a simulation, not cryptography
    return [
        r.handle_s if r.handle_s is not None else HANDLING[r.message.channel].draw(rng)
        for r in records
    ]
