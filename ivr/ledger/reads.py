"""The calls as the ledger has them: by period, by caller or account, by uniqueid,
by who answered; each with its visits (reports, the desk, the API, the backfill)."""

from __future__ import annotations

import re
from typing import Any, Iterable

from sqlalchemy import and_, func, select, text

from ivr.calls import records as rec
from ivr.ledger import schema as t
from ivr.ledger.db import Database, LedgerError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class CallReads(Database):
    """The calls' reads, a part of the Store."""

    async def calls(self, from_us: int, to_us: int, caller: str | None = None,
                    account: str | None = None, pbx: str | None = None,
                    limit: int | None = None) -> list[rec.CallRecord]:
        """Calls that entered a queue in [from_us, to_us), oldest first, with their visits."""
        c = t.calls.c
        query = select(t.calls).where(c.entered_us >= from_us, c.entered_us < to_us)
        if caller is not None:
            query = query.where(c.caller == caller)
        if account is not None:
            query = query.where(c.account == account)
        if pbx is not None:
            query = query.where(c.pbx == pbx)
        query = query.order_by(c.entered_us, c.pbx, c.uniqueid)
        if limit is not None:
            query = query.limit(limit)
        with self._failing():
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).mappings().all()
                visits = await self._visits(conn, [(r["pbx"], r["uniqueid"]) for r in rows],
                                            from_us, to_us)
        return [_record(r, visits.get((r["pbx"], r["uniqueid"]), ())) for r in rows]

    async def _visits(self, conn: Any, keys: list[tuple[str, str]], from_us: int,
                      to_us: int) -> dict[tuple[str, str], list[rec.VisitRecord]]:
        if not keys:
            return {}
        wanted = set(keys)
        v = t.visits.c
        # A call's visits start at or after its first entry: bound the scan by the period,
        # then keep those of the calls asked for.
        query = (select(*t.visits.c)
                 .select_from(t.visits.join(t.calls, and_(t.calls.c.pbx == v.pbx,
                                                          t.calls.c.uniqueid == v.uniqueid)))
                 .where(t.calls.c.entered_us >= from_us, t.calls.c.entered_us < to_us)
                 .order_by(v.pbx, v.uniqueid, v.entered_us, v.seq))
        found: dict[tuple[str, str], list[rec.VisitRecord]] = {}
        for r in (await conn.execute(query)).mappings():
            key = (r["pbx"], r["uniqueid"])
            if key in wanted:
                found.setdefault(key, []).append(rec.VisitRecord(
                    r["seq"], r["queue"], r["entered_us"], r["left_us"], r["outcome"],
                    r["wait_ms"], r["member"]))
        return found

    async def call(self, uniqueid: str) -> list[rec.CallRecord]:
        """The call of that uniqueid, with its visits (one per PBX that has it)."""
        return await self._calls_where(t.calls.c.uniqueid == uniqueid)

    async def answered_by(self, member: str, from_us: int, to_us: int) -> list[rec.CallRecord]:
        """Calls a member answered in [from_us, to_us)."""
        c = t.calls.c
        return await self._calls_where(and_(c.answered_member == member,
                                            c.answered_us >= from_us, c.answered_us < to_us))

    async def ended_since(self, ended_from_us: int, entered_from_us: int) -> list[rec.CallRecord]:
        """Calls that ended at or after ended_from_us (and entered at or after
        entered_from_us, which the index finds), for the repeat callers at start."""
        c = t.calls.c
        return await self._calls_where(and_(c.entered_us >= entered_from_us,
                                            c.ended_us >= ended_from_us))

    async def newest_us(self, pbx: str) -> int | None:
        """When the newest call of `pbx` ended (µs), or None without one: where the
        start-up backfill (catchup.py) begins.  Read once at start."""
        rows = await self._read(select(func.max(t.calls.c.ended_us)).where(t.calls.c.pbx == pbx))
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    async def _calls_where(self, condition: Any) -> list[rec.CallRecord]:
        c = t.calls.c
        query = select(t.calls).where(condition).order_by(c.entered_us, c.pbx, c.uniqueid)
        with self._failing():
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).mappings().all()
                if not rows:
                    return []
                keys = [(r["pbx"], r["uniqueid"]) for r in rows]
                visits = await self._visits(conn, keys, min(r["entered_us"] for r in rows),
                                            max(r["entered_us"] for r in rows) + 1)
        return [_record(r, visits.get((r["pbx"], r["uniqueid"]), ())) for r in rows]

    async def rows(self, table: str) -> list[tuple[Any, ...]]:
        """A realtime queue_log table (contrib/realtime layout), oldest first."""
        if not _IDENTIFIER.fullmatch(table):
            raise LedgerError(f"queue_log table {table!r}: expected a plain table name")
        columns = "time, callid, queuename, agent, event, data1, data2, data3, data4, data5"
        with self._failing(f"queue_log table {table} in"):
            async with self.engine.connect() as conn:
                result = await conn.execute(text(f'SELECT {columns} FROM "{table}" ORDER BY time'))
                return [tuple(r) for r in result]


def _record(r: Any, visits: Iterable[rec.VisitRecord]) -> rec.CallRecord:
    return rec.CallRecord(
        r["pbx"], r["uniqueid"], r["linkedid"], r["caller"], r["account"], r["area"],
        r["entered_us"], r["ended_us"], tuple(visits), r["outcome"], bool(r["payable"]),
        r["source"], r["precision"], r["answered_us"], r["answered_queue"], r["answered_member"])
