"""Retention: delete the per-call rows older than ledger.retention_days, in batches.

What goes: `calls` entered before the cut-off with their `visits`, and the
history rows that belong to one call (escalations, route decisions, operator
actions, repeats) made before it.  What stays, whatever its age: the registry
(`registry`, `registry_head`: the desk's tickets, complaints and claims and the
transparency log over them, appended and never rewritten), incidents (an
area's, not a call's), the console's sessions, and every call a ticket or
complaint still in hand names (`keep`), with its history: the desk may need it.

Each batch is its own transaction, so ivr's writer waits at most one batch for
the database.  A dry run walks the same rows in the same order and deletes
none, so its counts are those a real run would give.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import and_, delete, func, select, tuple_

from ivr.ledger import schema as t
from ivr.ledger.db import Database

BATCH = 1000
HISTORY = (t.escalations, t.route_decisions, t.operator_actions, t.repeats)
# Never deleted from, by any purge: what a test compares byte for byte.
UNTOUCHED = ("registry", "registry_head", "incidents", "console_sessions")


@dataclass
class Purged:
    """Rows deleted (or, in a dry run, that would be) per table, and the calls kept
    because the desk still has them in hand."""
    tables: dict[str, int] = field(default_factory=lambda: {
        "calls": 0, "visits": 0, **{h.name: 0 for h in HISTORY}})
    kept_for_desk: int = 0


class RetentionStore(Database):
    async def purge(self, before_us: int, keep: frozenset[str], dry_run: bool,
                    batch: int = BATCH) -> Purged:
        """Delete (or count) the calls entered before `before_us` and the per-call history
        made before it, but those of the uniqueids in `keep`."""
        done = Purged()
        with self._failing():
            await self._purge_calls(done, before_us, keep, dry_run, batch)
            for table in HISTORY:
                await self._purge_history(done, table, before_us, keep, dry_run, batch)
        return done

    async def _purge_calls(self, done: Purged, before_us: int, keep: frozenset[str],
                           dry_run: bool, batch: int) -> None:
        c = t.calls.c
        order = (c.entered_us, c.pbx, c.uniqueid)
        last: tuple[Any, ...] | None = None
        while True:
            query = select(*order).where(c.entered_us < before_us).order_by(*order).limit(batch)
            if last is not None:        # keyset: calls kept for the desk are passed once
                query = query.where(tuple_(*order) > tuple_(*last))
            async with self.engine.begin() as conn:
                rows = (await conn.execute(query)).all()
                if not rows:
                    return
                last = tuple(rows[-1])
                gone = [(pbx, uid) for _, pbx, uid in rows if uid not in keep]
                done.kept_for_desk += len(rows) - len(gone)
                for pbx, uids in _by_pbx(gone).items():
                    done.tables["visits"] += await _rows(conn, t.visits, dry_run, and_(
                        t.visits.c.pbx == pbx, t.visits.c.uniqueid.in_(uids)))
                    done.tables["calls"] += await _rows(conn, t.calls, dry_run, and_(
                        c.pbx == pbx, c.uniqueid.in_(uids)))

    async def _purge_history(self, done: Purged, table: Any, before_us: int,
                             keep: frozenset[str], dry_run: bool, batch: int) -> None:
        # By id: rows are appended in time order, so the old ones come first and
        # each batch reads little past them.
        last = 0
        while True:
            query = (select(table.c.id, table.c.uniqueid)
                     .where(table.c.at_us < before_us, table.c.id > last)
                     .order_by(table.c.id).limit(batch))
            async with self.engine.begin() as conn:
                rows = (await conn.execute(query)).all()
                if not rows:
                    return
                last = int(rows[-1][0])
                ids = [i for i, uid in rows if uid not in keep]
                if ids:
                    done.tables[table.name] += await _rows(conn, table, dry_run,
                                                           table.c.id.in_(ids))


async def _rows(conn: Any, table: Any, dry_run: bool, where: Any) -> int:
    """Delete the rows `where` selects, or count them in a dry run; how many."""
    if dry_run:
        return int((await conn.execute(select(func.count()).select_from(table)
                                       .where(where))).scalar_one())
    return int((await conn.execute(delete(table).where(where))).rowcount)


def _by_pbx(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for pbx, uid in keys:
        found.setdefault(pbx, []).append(uid)
    return found
