"""What a run measured, per (queue, priority) as decided at arrival: attainment (first
responses within target), breaches, waits p50/p95/max; per queue the utilisation of
the agents who serve it; overall the breach rate. Plain text side by side, or JSON.

Items still waiting when the day ends count with the wait they had so far (a lower
bound) and as breached when their due time passed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from router.simulate.engine import RunResult, Served


@dataclass(frozen=True)
class RowStats:
    queue: str
    priority: int
    count: int
    served: int
    attained: int
    breaches: int
    p50_s: float
    p95_s: float
    max_s: float

    @property
    def attainment(self) -> float:
        return self.attained / self.count if self.count else 1.0


@dataclass(frozen=True)
class Summary:
    ordering: str
    rows: list[RowStats]
    count: int
    breaches: int
    unserved: int
    escalations: int
    utilisation: dict[str, float]
    """Per queue: busy time / on-shift time of the agents serving it."""
    groups: dict[str, float]
    """Per agent group: busy time / on-shift time."""

    @property
    def breach_rate(self) -> float:
        return self.breaches / self.count if self.count else 0.0

    def row(self, queue: str, priority: int) -> RowStats | None:
        return next((r for r in self.rows if (r.queue, r.priority) == (queue, priority)), None)

    def max_wait_s(self, priority: int) -> float:
        return max((r.max_s for r in self.rows if r.priority == priority), default=0.0)


def summarize(result: RunResult) -> Summary:
    cells: dict[tuple[str, int], list[Served]] = defaultdict(list)
    for outcome in result.outcomes:
        cells[(outcome.queue, outcome.priority)].append(outcome)
    rows = [_row(queue, priority, cells[(queue, priority)]) for queue, priority in sorted(cells)]
    return Summary(
        ordering=result.ordering,
        rows=rows,
        count=len(result.outcomes),
        breaches=sum(o.breached for o in result.outcomes),
        unserved=sum(not o.served for o in result.outcomes),
        escalations=result.escalations,
        utilisation=_utilisation(result, lambda a: a.queues),
        groups=_utilisation(result, lambda a: (a.group,)),
    )


def _row(queue: str, priority: int, outcomes: list[Served]) -> RowStats:
    waits = sorted(o.wait_s for o in outcomes)
    return RowStats(
        queue=queue,
        priority=priority,
        count=len(outcomes),
        served=sum(o.served for o in outcomes),
        attained=sum(o.served and not o.breached for o in outcomes),
        breaches=sum(o.breached for o in outcomes),
        p50_s=percentile(waits, 0.50),
        p95_s=percentile(waits, 0.95),
        max_s=waits[-1],
    )


def percentile(ordered: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least ``share`` of the values at or below."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def _utilisation(result: RunResult, keys: Any) -> dict[str, float]:
    busy: dict[str, float] = defaultdict(float)
    shift: dict[str, float] = defaultdict(float)
    for agent in result.agents:
        for key in keys(agent):
            busy[key] += agent.busy_s
            shift[key] += agent.end_s - agent.start_s
    return {key: busy[key] / shift[key] for key in sorted(shift) if shift[key] > 0}


# --- output -------------------------------------------------------------------------


def format_report(summaries: list[Summary], *, max_wait_s: tuple[float, ...]) -> str:
    lines = [_header(summaries), *_body(summaries), "", _totals(summaries)]
    lines += ["", *_utilisation_lines(summaries)]
    lowest = max((r.priority for s in summaries for r in s.rows), default=5)
    bound = max_wait_s[lowest - 1]
    waits = "  ".join(f"{s.ordering} {duration(s.max_wait_s(lowest))}" for s in summaries)
    lines.append(f"lowest priority p{lowest}: max wait {waits} (aging bound {duration(bound)})")
    return "\n".join(lines)


_CELL = "{:>6} {:>5} {:>6} {:>6} {:>6}"


def _header(summaries: list[Summary]) -> str:
    top = (f"{'':<12}{'':>7}" + "".join(f" | {s.ordering:^34}" for s in summaries)).rstrip()
    sub = f"{'queue':<12}{'prio':>4}{'n':>5}" + "".join(
        " | " + _CELL.format("attain", "brch", "p50", "p95", "max") for _ in summaries
    )
    return f"{top}\n{sub}\n" + "-" * len(sub)


def _body(summaries: list[Summary]) -> list[str]:
    keys = sorted({(r.queue, r.priority) for s in summaries for r in s.rows})
    lines = []
    for queue, priority in keys:
        rows = [s.row(queue, priority) for s in summaries]
        count = next(r.count for r in rows if r is not None)
        cells = "".join(" | " + _cell(r) for r in rows)
        lines.append(f"{queue:<12}  p{priority}{count:>5}{cells}")
    return lines


def _cell(row: RowStats | None) -> str:
    if row is None:
        return _CELL.format("-", "-", "-", "-", "-")
    return _CELL.format(
        f"{row.attainment:.1%}",
        row.breaches,
        duration(row.p50_s),
        duration(row.p95_s),
        duration(row.max_s),
    )


def _totals(summaries: list[Summary]) -> str:
    parts = [
        f"{s.ordering}: {s.breaches}/{s.count} breached ({s.breach_rate:.1%}), "
        f"{s.unserved} unserved, {s.escalations} escalations"
        for s in summaries
    ]
    return "overall  " + "   ".join(parts)


def _utilisation_lines(summaries: list[Summary]) -> list[str]:
    names = sorted({q for s in summaries for q in s.utilisation})
    lines = ["agent utilisation (busy / on shift, agents serving the queue)"]
    for name in names:
        cells = "  ".join(f"{s.ordering} {s.utilisation.get(name, 0.0):.1%}" for s in summaries)
        lines.append(f"  {name:<12}{cells}")
    return lines


def duration(seconds: float) -> str:
    """``42s``, ``4m05s``, ``1h07m``: short and sortable by eye."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def to_json(summaries: list[Summary]) -> dict[str, Any]:
    return {
        s.ordering: {
            "count": s.count,
            "breaches": s.breaches,
            "breach_rate": s.breach_rate,
            "unserved": s.unserved,
            "escalations": s.escalations,
            "rows": [asdict(r) | {"attainment": r.attainment} for r in s.rows],
            "utilisation": s.utilisation,
            "groups": s.groups,
        }
        for s in summaries
    }
