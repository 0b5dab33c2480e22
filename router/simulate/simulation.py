"""One simulation: the same arrivals, decided once by the real policy, replayed under
each ordering, and summarized side by side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from router.simulate.adapter import SimRouter
from router.simulate.agents import AgentsSpec
from router.simulate.engine import make_agents, run
from router.simulate.prepare import prepare
from router.simulate.report import Summary, summarize
from router.simulate.traffic import TrafficRecord, handle_times

ORDERINGS = ("policy", "fifo", "strict")


class Ticker(Protocol):
    def advance(self, n: int = 1) -> None: ...


@dataclass(frozen=True)
class Outcome:
    summaries: list[Summary]
    rejected: list[str]
    """Traffic records that did not normalize (the daemon would refuse them)."""

    def summary(self, ordering: str) -> Summary:
        return next(s for s in self.summaries if s.ordering == ordering)


def simulate(
    records: list[TrafficRecord],
    spec: AgentsSpec,
    router: SimRouter,
    *,
    day: date,
    seed: int = 1,
    orderings: tuple[str, ...] = ORDERINGS,
    ticker: Ticker | None = None,
) -> Outcome:
    """``ticker`` advances once per record decided and once per arrival replayed
    (``len(records) * (1 + len(orderings))`` in all)."""
    tick = ticker.advance if ticker is not None else _nothing
    prepared = prepare(records, handle_times(records, seed), router, on_record=tick)
    agents = make_agents(spec, day)
    summaries = [
        summarize(run(prepared.arrivals, agents, ordering, router, on_arrival=tick))
        for ordering in orderings
    ]
    return Outcome(summaries, prepared.rejected)


def _nothing(n: int = 1) -> None:
    """No progress to report."""


def default_day(records: list[TrafficRecord], spec: AgentsSpec) -> date:
    """The day the agents work: the first arrival's date where they are."""
    if not records:
        raise ValueError("no traffic to simulate")
    return records[0].at.astimezone(spec.zone).date()
