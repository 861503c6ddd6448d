"""The ledger's history: what people and the router decided, kept, never rewritten.

Escalations, route decisions, operator actions, repeat callers and incidents
(an incident is kept once and closed once, its only change).  Written with the
calls of a batch (store.write) or alone (history()); read by the reports, the
desk and the app at start.
"""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import func, insert, select, update

from ivr.ledger import schema as t
from ivr.ledger.db import Database, of_pbx
from ivr.ledger.outbox import TABLE as OUTBOX
from ivr.ledger.rows import INCIDENT_CLOSES, CallbackEvent, CallbackRow, IncidentRow

FINAL_EVENTS = ("connected", "failed", "cancelled")     # a callback's ends



class HistoryStore(Database):
    """The history tables' writes and reads, a part of the Store."""

    async def history(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Append rows to a history table: escalations, route_decisions, incidents
        (an incident already kept is left alone), incident_closes (the closing of one),
        or webhook_outbox (a message already there is left alone)."""
        if rows:
            async with self.engine.begin() as conn:
                await self._history(conn, table, rows)

    async def _history(self, conn: Any, table: str, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        if table == INCIDENT_CLOSES:
            for row in rows:
                await conn.execute(update(t.incidents)
                                   .where(t.incidents.c.id == row["id"],
                                          t.incidents.c.closed_us.is_(None))
                                   .values(closed_us=row["closed_us"], closed_by=row["closed_by"]))
        elif table == "incidents":
            await conn.execute(self._insert(t.incidents, ("id",)), list(rows))
        elif table == OUTBOX:     # a spool written twice sends no message twice
            await conn.execute(self._insert(t.webhook_outbox, ("id",)), list(rows))
        elif table == "callbacks":   # a request kept twice (a spool replayed) is one
            await conn.execute(self._insert(t.callbacks, ("id",)), list(rows))
        else:
            await conn.execute(insert(t.metadata.tables[table]), list(rows))

    async def open_incidents(self, now_us: int) -> list[IncidentRow]:
        """Incidents neither closed nor expired, oldest first."""
        c = t.incidents.c
        query = (select(t.incidents).where(c.closed_us.is_(None), c.expires_us > now_us)
                 .order_by(c.opened_us))
        return [IncidentRow.of(dict(r)) for r in await self._read(query, mappings=True)]

    async def repeat_counts(self, from_us: int, to_us: int,
                            pbx: str | None = None) -> dict[str, int]:
        """Repeat calls (of `pbx`, or of all) judged in [from_us, to_us), by kind."""
        r = t.repeats.c
        query = (of_pbx(select(r.kind, func.count()), r.pbx, pbx).where(r.at_us >= from_us, r.at_us < to_us)
                 .group_by(r.kind))
        return {str(key): int(n) for key, n in await self._read(query)}

    async def repeat_firsts(self, from_us: int, to_us: int) -> dict[str, int]:
        """Repeat calls judged in [from_us, to_us): uniqueid -> their chain's first join."""
        r = t.repeats.c
        query = select(r.uniqueid, r.first_us).where(r.at_us >= from_us, r.at_us < to_us)
        return {str(uid): int(first) for uid, first in await self._read(query)}

    async def operator_actions(self, pbx: str, uniqueid: str) -> list[dict[str, Any]]:
        a = t.operator_actions.c
        query = (select(t.operator_actions).where(a.pbx == pbx, a.uniqueid == uniqueid)
                 .order_by(a.at_us, a.id))
        return [dict(r) for r in await self._read(query, mappings=True)]

    async def incidents_between(self, from_us: int, to_us: int) -> list[dict[str, Any]]:
        """Incidents that were open at some time in [from_us, to_us), oldest first; an
        incident ends at its close, or at its expiry if never closed."""
        c = t.incidents.c
        ends = func.coalesce(c.closed_us, c.expires_us)
        query = (select(t.incidents).where(c.opened_us < to_us, ends > from_us)
                 .order_by(c.opened_us, c.id))
        return [dict(r) for r in await self._read(query, mappings=True)]

    async def callbacks_open(self) -> list[tuple[CallbackRow, list[CallbackEvent]]]:
        """Callbacks whose last event is not a final one (connected, failed, cancelled),
        with their events in order: what ivr takes back at start."""
        c, e = t.callbacks.c, t.callback_events.c
        final = select(e.callback).where(e.event.in_(FINAL_EVENTS))
        rows = await self._read(select(t.callbacks).where(c.id.not_in(final))
                                .order_by(c.requested_us), mappings=True)
        found = [CallbackRow.of(dict(r)) for r in rows]
        if not found:
            return []
        events = await self._read(select(t.callback_events).where(
            e.callback.in_([f.id for f in found])).order_by(e.id), mappings=True)
        by: dict[str, list[CallbackEvent]] = {f.id: [] for f in found}
        for r in events:
            row = dict(r)
            by[row["callback"]].append(CallbackEvent(row["callback"], row["at_us"], row["event"],
                                                     row["attempt"], row["uniqueid"], row["reason"]))
        return [(f, by[f.id]) for f in found]

    async def callback_counts(self, from_us: int, to_us: int,
                              pbx: str | None = None) -> dict[str, int]:
        """Callbacks requested in [from_us, to_us) (of `pbx`, or of all), by what became
        of them: requested, connected, failed, cancelled (pending: none of those yet)."""
        c, e = t.callbacks.c, t.callback_events.c
        requested = of_pbx(select(c.id), c.pbx, pbx).where(c.requested_us >= from_us,
                                                            c.requested_us < to_us)
        query = (select(e.event, func.count(func.distinct(e.callback)))
                 .where(e.callback.in_(requested), e.event.in_(FINAL_EVENTS)).group_by(e.event))
        counts = {str(k): int(n) for k, n in await self._read(query)}
        total = await self._read(select(func.count()).select_from(requested.subquery()))
        return {"requested": int(total[0][0]), **{k: counts.get(k, 0) for k in FINAL_EVENTS}}
