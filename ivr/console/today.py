"""The figures of today the board and the wallboard show beside the live queues: the
statement's payable share, each queue's answered, abandoned and moved, and first-line's
chart in 15-minute intervals (reports/service_level.py).  They come from the ledger,
so they are read again at most every TODAY_SECONDS, not at each second's push; the
ledger away, the pages go on with the figures of the last read (or none)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from ivr.app import Services
from ivr.ledger.store import Store
from ivr.reports import service
from ivr.reports import service_level as sl

log = logging.getLogger(__name__)
TODAY_SECONDS = 30      # how long the figures of today are kept before they are read again


class Today:
    def __init__(self, app: Services) -> None:
        self.app = app
        self._read: tuple[float, dict[str, Any]] | None = None     # (when, figures)
        self._lock = asyncio.Lock()       # one read at a time, whoever many pages ask

    async def figures(self) -> dict[str, Any]:
        """{"statement": sl.Today, "queues": per queue, "chart": first-line's day}."""
        async with self._lock:
            now = time.monotonic()
            if self._read is None or now - self._read[0] > TODAY_SECONDS:
                self._read = (now, await self._figures(self._read[1] if self._read else None))
            return self._read[1]

    async def _figures(self, last: dict[str, Any] | None) -> dict[str, Any]:
        config = self.app.config
        zone = ZoneInfo(config.report.timezone)
        now = datetime.fromtimestamp(self.app.clock(), timezone.utc)
        day = sl.today(now, zone)
        first = config.first_line
        cuts = sl.edges(day)
        try:
            built = await service.statement(self.app.store, config, day)
            statement = sl.Today(built.totals.payable_share, built.totals.offered)
            rows = await self.app.store.run(Store.service_intervals, cuts,
                                            round(first.sla_seconds * 1000))
            outcomes = await self.app.store.run(Store.queue_outcomes, day.from_us, day.to_us)
        except Exception as exc:        # the ledger away: the board goes on without it
            log.warning("board: no figures of today from the ledger: %s", exc)
            if last is not None:
                return last
            statement, rows, outcomes = sl.Today(), [], []
        intervals = sl.intervals(cuts, rows, zone)
        return {"statement": statement,
                "queues": sl.per_queue(outcomes, config.queue_names, first.name, statement),
                "chart": sl.chart(first, config.report.service_level_target, intervals,
                                  round(now.timestamp() * 1e6))}
