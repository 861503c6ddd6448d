"""First-line's service level, as the supervisor's board shows it: now (the callers
waiting there still within its threshold) and today (the statement's payable share
of the local day so far).  Pure: the queues' view, the day and the statement's
figures come in; the console reads them and keeps today's for a while."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from ivr.config import QueueConfig
from ivr.reports import billing


@dataclass(frozen=True)
class Today:
    """The statement's figures of today: the payable share (None: none offered or the
    ledger away) and the calls offered."""

    share: float | None = None
    offered: int = 0


def today(now: datetime, zone: ZoneInfo) -> billing.Period:
    """The day in `zone` (the report's) of the moment `now` (an aware datetime), as a period."""
    day = now.astimezone(zone).date()
    return billing.period(day.isoformat(), (day + timedelta(days=1)).isoformat(), zone.key)


def level(first: QueueConfig, queues: Mapping[str, Any], figures: Today) -> dict[str, Any]:
    """The board's figures: `queues` is the live queues' view (calls/views.queues)."""
    waiting = queues.get(first.name, {}).get("waiting", [])
    within = sum(1 for w in waiting if w["wait_seconds"] <= first.sla_seconds)
    return {"queue": first.name, "threshold_seconds": first.sla_seconds,
            "waiting": len(waiting), "waiting_within": within,
            "today_share": figures.share, "today_offered": figures.offered}
