"""First-line's service level, as the supervisor's board and the wallboard show it: now
(the callers waiting there still within its threshold), today (the statement's payable
share of the local day so far, and each queue's answered, abandoned and moved), and
the day's chart: the share answered within the threshold in 15-minute intervals of
the report's zone.  Pure: the queues' view, the day and the ledger's counts come in;
the console reads them and keeps today's for a while."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from ivr.calls.judge import Outcome
from ivr.config import QueueConfig
from ivr.reports import billing

STEP_US = 15 * 60 * 1_000_000      # the chart's interval
HOUR = 4                           # intervals an hour
MOVED = (Outcome.TIMEOUT, Outcome.WITHDRAWN, Outcome.TRANSFERRED)   # moved on, not lost


@dataclass(frozen=True)
class Today:
    """The statement's figures of today: the payable share (None: none offered or the
    ledger away) and the calls offered."""

    share: float | None = None
    offered: int = 0


@dataclass(frozen=True)
class Interval:
    """One interval of the day: first-line's calls that first entered it (offered), those
    answered, answered within the threshold (inclusive) and abandoned."""

    start_us: int
    label: str                  # its start, HH:MM in the report's zone
    offered: int = 0
    answered: int = 0
    within: int = 0
    abandoned: int = 0

    @property
    def share(self) -> float | None:
        """Answered within the threshold, of the calls offered (None: none offered)."""
        return self.within / self.offered if self.offered else None

    def to_json(self) -> dict[str, Any]:
        return {"start": self.label, "offered": self.offered, "answered": self.answered,
                "within": self.within, "abandoned": self.abandoned, "share": self.share}


def today(now: datetime, zone: ZoneInfo) -> billing.Period:
    """The day in `zone` (the report's) of the moment `now` (an aware datetime), as a period."""
    day = now.astimezone(zone).date()
    return billing.period(day.isoformat(), (day + timedelta(days=1)).isoformat(), zone.key)


def edges(day: billing.Period, step_us: int = STEP_US) -> list[int]:
    """The intervals of `day`, as their edges: its start, every step, its end.  Every
    zone's offset is a whole number of quarter-hours, so the edges are the local
    quarter-hours; a day of a DST change has 92 or 100 of them."""
    return [*range(day.from_us, day.to_us, step_us), day.to_us]


def intervals(cuts: list[int], rows: Iterable[tuple[int, int, int, int, int]],
              zone: ZoneInfo) -> list[Interval]:
    """Every interval of `cuts` (edges()), with the ledger's counts (Store.service_intervals:
    interval, offered, answered, within, abandoned); an interval without calls has zeros."""
    counts = {row[0]: row[1:] for row in rows}
    return [Interval(start, datetime.fromtimestamp(start / 1e6, zone).strftime("%H:%M"),
                     *counts.get(i, (0, 0, 0, 0)))
            for i, start in enumerate(cuts[:-1])]


def shown(day: list[Interval], now_us: int, hours: int = 4) -> list[Interval]:
    """What the chart shows of the day: whole hours from the first call's (at least
    `hours` of them) to the end of now's hour."""
    if not day:
        return []
    now = max((i for i, x in enumerate(day) if x.start_us <= now_us), default=0)
    end = min(now - now % HOUR + HOUR, len(day))
    first = next((i for i, x in enumerate(day) if x.offered), end)
    start = max(min(first - first % HOUR, end - hours * HOUR), 0)
    return day[start:end]


def chart(first: QueueConfig, target: float, day: list[Interval], now_us: int) -> dict[str, Any]:
    """The chart of the day as the pages draw it (and its table): the intervals shown,
    the day's totals and the target line."""
    offered = sum(x.offered for x in day)
    within = sum(x.within for x in day)
    return {"queue": first.name, "threshold_seconds": first.sla_seconds, "target": target,
            "offered": offered, "within": within, "share": within / offered if offered else None,
            "intervals": [x.to_json() for x in shown(day, now_us)]}


def per_queue(rows: Iterable[tuple[str, str, int]], queues: Iterable[str], first_line: str,
              statement: Today) -> dict[str, dict[str, Any]]:
    """Each queue's day (Store.queue_outcomes: queue, outcome, visits): visits offered,
    answered, abandoned, moved on (timed out, moved by hand, taken out); first-line's
    payable share is the statement's (the others pay nothing: None)."""
    day: dict[str, dict[str, Any]] = {q: {"offered": 0, "answered": 0, "abandoned": 0, "moved": 0,
                                          "payable_share": statement.share if q == first_line
                                          else None} for q in queues}
    for queue, outcome, n in rows:
        if (figures := day.get(queue)) is None:
            continue
        figures["offered"] += n
        if outcome in (Outcome.ANSWERED, Outcome.ABANDONED):
            figures[outcome] += n
        elif outcome in MOVED:
            figures["moved"] += n
    return day


def level(first: QueueConfig, queues: Mapping[str, Any], figures: Today) -> dict[str, Any]:
    """The board's figures: `queues` is the live queues' view (calls/views.queues)."""
    waiting = queues.get(first.name, {}).get("waiting", [])
    within = sum(1 for w in waiting if w["wait_seconds"] <= first.sla_seconds)
    return {"queue": first.name, "threshold_seconds": first.sla_seconds,
            "waiting": len(waiting), "waiting_within": within,
            "today_share": figures.share, "today_offered": figures.offered}
