"""The calls as the ledger has them: by period, by caller or account, by uniqueid,
by who answered; each with its visits (reports, the desk, the API, the backfill)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable

from sqlalchemy import and_, func, literal_column, or_, select

from ivr.calls import records as rec
from ivr.ledger import schema as t
from ivr.ledger.db import CACHE_KIB, Database

STREAM_CACHE_KIB = 4096


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

    async def visit_batches(self, from_us: int, to_us: int, pbx: str | None = None,
                            size: int = 5000, going_at_us: int | None = None
                            ) -> AsyncIterator[list[CallVisits]]:
        """The calls that entered in [from_us, to_us), oldest first, each with its
        visits and what a reconciliation needs of it (CallVisits), streamed in batches
        of about `size` rows: one query joined with the visits, read through a cursor,
        so a month is never in memory whole (reconcile/scan.py reads it beside
        queue_log).  With `going_at_us`, of the calls that entered before that instant
        only those that had not ended."""
        head: tuple[Any, ...] | None = None        # the call whose rows are being gathered
        visits: list[rec.VisitRecord] = []
        c, v = t.calls.c, t.visits.c
        query = (select(c.pbx, c.uniqueid, c.entered_us, c.ended_us, c.source,
                        *(v[name] for name in _VISIT_COLUMNS))
                 .select_from(t.calls.outerjoin(t.visits, and_(v.pbx == c.pbx,
                                                               v.uniqueid == c.uniqueid)))
                 .where(c.entered_us >= from_us, c.entered_us < to_us))
        if going_at_us is not None:
            query = query.where(or_(c.entered_us >= going_at_us, c.ended_us >= going_at_us))
        if pbx is not None:
            # In SQLite `+pbx` keeps the primary key (pbx first) out of the plan: with it
            # SQLite sorts the whole period before its first row (a month's run: past 560 MB),
            # where calls_entered walks it in order.
            query = query.where((literal_column("+calls.pbx") if self.dialect == "sqlite"
                                 else c.pbx) == pbx)
        query = query.order_by(c.entered_us, c.pbx, c.uniqueid)
        with self._failing():
            async with self.engine.connect() as conn:
                if self.dialect == "sqlite":
                    # One pass in order: a small page cache does, and keeps a month's
                    # read from filling the 64 MiB one (db.py) for nothing.
                    await conn.exec_driver_sql(f"PRAGMA cache_size=-{STREAM_CACHE_KIB}")
                result = await conn.stream(query)
                async for part in result.partitions(size):
                    batch: list[CallVisits] = []
                    for row in part:
                        if head is not None and (row[0], row[1]) != (head[0], head[1]):
                            batch.append(_call_visits(head, visits))
                            visits = []
                        head = tuple(row[:5])
                        if row[5] is not None:
                            visits.append(rec.VisitRecord(*row[5:]))
                    if batch:
                        yield batch
                if self.dialect == "sqlite":
                    await conn.exec_driver_sql(f"PRAGMA cache_size=-{CACHE_KIB}")
        if head is not None:
            yield [_call_visits(head, visits)]

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


_VISIT_COLUMNS = ("seq", "queue", "entered_us", "left_us", "outcome", "wait_ms", "member")


@dataclass(slots=True)
class CallVisits:
    """A call as a reconciliation holds it against queue_log: who it is, when, where
    its record came from, and its visits (in order of entry, then seq).  A CallRecord
    has all of it; this is the part visit_batches() reads, at a fifth of the cost of
    a whole frozen record (a month is 1.5 million of them)."""

    pbx: str
    uniqueid: str
    entered_us: int
    ended_us: int
    source: str
    visits: tuple[rec.VisitRecord, ...]


def _call_visits(head: tuple[Any, ...], visits: list[rec.VisitRecord]) -> CallVisits:
    visits.sort(key=lambda v: (v.entered_us, v.seq))
    pbx, uniqueid, entered_us, ended_us, source = head
    return CallVisits(pbx, uniqueid, entered_us, ended_us, source, tuple(visits))


def _record(r: Any, visits: Iterable[rec.VisitRecord]) -> rec.CallRecord:
    return rec.CallRecord(
        r["pbx"], r["uniqueid"], r["linkedid"], r["caller"], r["account"], r["area"],
        r["entered_us"], r["ended_us"], tuple(visits), r["outcome"], bool(r["payable"]),
        r["source"], r["precision"], r["answered_us"], r["answered_queue"], r["answered_member"])
