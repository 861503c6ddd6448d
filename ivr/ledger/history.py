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
from ivr.ledger.rows import INCIDENT_CLOSES, IncidentRow



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
