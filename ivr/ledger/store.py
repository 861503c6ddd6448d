"""The ledger store: SQLite (embedded default) or PostgreSQL, one interface.

SQLAlchemy 2 Core over aiosqlite or asyncpg.  Every write is one
transaction and idempotent: rows are keyed (pbx, uniqueid) and (pbx,
uniqueid, seq) and inserted with ON CONFLICT DO NOTHING, so writing a call
that is already there (a resync, a replay, a restart, a flushed spool)
changes nothing.  Migrations are Alembic's (ivr/ledger/migrations), run by
`migrate()`; a database at a revision this code does not know is refused.
The statement of a month is counted and hashed here, where the calls are
(statement_tally, statement_digest).  ivr's app drives a Store from a thread
of its own (offloop.py).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import (Connection, String, and_, case, cast, delete, event, func, insert,
                        literal, literal_column, select, text, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ivr.calls.records import FIRST_LINE
from ivr.calls import records as rec
from ivr.ledger import schema as t

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
INCIDENT_CLOSES = "incident_closes"   # a pseudo-table for history(): closes an incident
_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
            "postgres": "postgresql+asyncpg"}


class LedgerError(Exception):
    """A ledger problem a person can act on; the message is one line."""


def driver_url(url: str) -> str:
    """`sqlite:///path` or `postgresql://...` as SQLAlchemy's async drivers want it."""
    scheme, sep, rest = url.partition("://")
    base = scheme.split("+", 1)[0].lower()
    if not sep or base not in _DRIVERS:
        raise LedgerError(f"ledger.url {redact(url)!r}: unknown scheme "
                          f"(expected sqlite:///PATH or postgresql://USER@HOST/DB)")
    return f"{_DRIVERS[base]}://{rest}"


def redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


def problem(exc: BaseException) -> str:
    """One line naming a database failure (drivers' messages run to several)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}".rstrip(": ")


class Store:
    def __init__(self, url: str, first_line: str = FIRST_LINE) -> None:
        self.url = url
        self.first_line = first_line
        target = driver_url(url)
        self.dialect = "sqlite" if target.startswith("sqlite") else "postgresql"
        if self.dialect == "sqlite":
            self._sqlite_folder(target)
            self.engine: AsyncEngine = create_async_engine(target)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(target, pool_pre_ping=True, pool_size=2,
                                              connect_args={"timeout": 5})

    @staticmethod
    def _sqlite_folder(target: str) -> None:
        path = make_url(target).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- schema -------------------------------------------------------------

    async def migrate(self) -> str:
        """Upgrade the database in place to this code's schema; the revision it is at."""
        try:
            async with self.engine.begin() as conn:
                return await conn.run_sync(_upgrade)
        except (OSError, SQLAlchemyError) as exc:
            raise LedgerError(f"ledger {redact(self.url)}: {problem(exc)}") from None

    async def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext
        async with self.engine.connect() as conn:
            return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())

    # -- writes -------------------------------------------------------------

    async def write(self, records: Sequence[rec.CallRecord],
                    history: Mapping[str, Sequence[dict[str, Any]]] | None = None) -> int:
        """Write calls with their visits, and history rows, in one transaction: a batch
        is there whole or not at all, so a retry doubles no history row.  How many
        calls were new."""
        if not records and not history:
            return 0
        async with self.engine.begin() as conn:
            new = await self._write(conn, records) if records else 0
            for table, rows in (history or {}).items():
                await self._history(conn, table, rows)
            return new

    async def add_visits(self, visits: Sequence[tuple[str, str, rec.VisitRecord]]) -> int:
        """Visits of calls already in the ledger (a backfill), in one transaction."""
        async with self.engine.begin() as conn:
            return await self._add_visits(conn, visits)

    async def backfill(self, records: Sequence[rec.CallRecord],
                       visits: Sequence[tuple[str, str, rec.VisitRecord]]) -> None:
        """What a reconciliation found missing, whole calls and visits, in one transaction."""
        async with self.engine.begin() as conn:
            if records:
                await self._write(conn, records)
            await self._add_visits(conn, visits)

    async def _write(self, conn: Any, records: Sequence[rec.CallRecord]) -> int:
        call_rows = [self._call_row(r) for r in records]
        visit_rows = [_visit_row(r.pbx, r.uniqueid, v, r.source) for r in records for v in r.visits]
        new = await self._insert_rows(conn, t.calls, ("pbx", "uniqueid"), call_rows)
        await self._insert_rows(conn, t.visits, ("pbx", "uniqueid", "seq"), visit_rows)
        return new

    async def _insert_rows(self, conn: Any, table: Any, keys: tuple[str, ...],
                           rows: list[tuple[Any, ...]]) -> int:
        """Insert what is not there yet (rows are tuples in the table's column order);
        how many rows were new.  Both go to the driver directly: SQLAlchemy's per-row
        parameter processing cost more than the database's own work (records/s, 2,000
        a batch, bench/ledger.py: SQLite 14,500 -> 28,700 with the driver's executemany;
        PostgreSQL 12,100 with INSERT ... SELECT FROM unnest(arrays) -> 21,900 with COPY)."""
        if not rows:
            return 0
        if self.dialect == "postgresql":
            return await _pg_insert(conn, table, keys, rows)
        raw = (await conn.get_raw_connection()).driver_connection
        # The sqlite3 module sums an executemany's changes: rows skipped by
        # ON CONFLICT DO NOTHING are not among them.
        cursor = await raw.executemany(_sqlite_insert(table, keys), rows)
        return int(cursor.rowcount)

    async def _add_visits(self, conn: Any, visits: Sequence[tuple[str, str, rec.VisitRecord]]) -> int:
        """First-line visits fill the call's first-line columns where the ledger had none."""
        rows = [_visit_row(pbx, uid, v, rec.QUEUE_LOG) for pbx, uid, v in visits]
        await self._insert_rows(conn, t.visits, ("pbx", "uniqueid", "seq"), rows)
        c = t.calls.c
        for pbx, uid, v in visits:
            if v.queue == self.first_line:
                this = and_(c.pbx == pbx, c.uniqueid == uid)
                await conn.execute(update(t.calls).where(this, c.fl_entered_us.is_(None))
                                   .values(fl_entered_us=v.entered_us, fl_wait_ms=v.wait_ms,
                                           fl_outcome=v.outcome, fl_member=v.member))
                await conn.execute(update(t.calls).where(this, c.fl_line.is_(None))
                                   .values(fl_line=_line_sql()))
        return len(rows)

    def _insert(self, table: Any, keys: tuple[str, ...]) -> Any:
        dialect = sqlite if self.dialect == "sqlite" else postgresql
        return dialect.insert(table).on_conflict_do_nothing(index_elements=list(keys))

    def _call_row(self, r: rec.CallRecord) -> tuple[Any, ...]:
        """The calls row, in schema.calls' column order (tests hold the two equal)."""
        fl = r.first_visit(self.first_line)
        if fl is None:
            first: tuple[Any, ...] = (None, None, None, None, None)
        else:
            first = (fl.entered_us, fl.wait_ms, fl.outcome, fl.member,
                     rec.statement_line(r.pbx, r.uniqueid, fl.entered_us, fl.wait_ms, fl.outcome,
                                        fl.member, r.payable, r.source))
        return (r.pbx, r.uniqueid, r.linkedid, r.caller, r.account, r.area, r.entered_us,
                r.ended_us, r.outcome, r.payable, r.source, r.precision, r.answered_us,
                r.answered_queue, r.answered_member) + first

    async def history(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Append rows to a history table: escalations, route_decisions, incidents
        (an incident already kept is left alone), or incident_closes (the closing of one)."""
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
        else:
            await conn.execute(insert(t.metadata.tables[table]), list(rows))

    async def open_incidents(self, now_us: int) -> list[dict[str, Any]]:
        """Incidents neither closed nor expired, oldest first."""
        c = t.incidents.c
        query = (select(t.incidents).where(c.closed_us.is_(None), c.expires_us > now_us)
                 .order_by(c.opened_us))
        return [dict(r) for r in await self._read(query, mappings=True)]

    async def _read(self, query: Any, mappings: bool = False) -> Sequence[Any]:
        """All rows of a query (as mappings if asked); a database failure is a LedgerError."""
        try:
            async with self.engine.connect() as conn:
                result = await conn.execute(query)
                return result.mappings().all() if mappings else result.all()
        except (OSError, SQLAlchemyError) as exc:
            raise LedgerError(f"ledger {redact(self.url)}: {problem(exc)}") from None

    # -- the service desk's registry (ivr/desk/registry.py) -------------------

    async def registry_append(self, entry: dict[str, Any]) -> None:
        """One entry and the new head, in one transaction: both or neither.  An
        entry whose seq is taken fails (IntegrityError), so a chain never forks."""
        head = {"id": 1, "seq": entry["seq"], "hash": entry["hash"]}
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(t.registry), [entry])
                if entry["seq"] == 1:
                    await conn.execute(insert(t.registry_head), [head])
                else:
                    done = await conn.execute(update(t.registry_head)
                                              .where(t.registry_head.c.id == 1,
                                                     t.registry_head.c.seq == entry["seq"] - 1)
                                              .values(seq=head["seq"], hash=head["hash"]))
                    if done.rowcount != 1:
                        raise LedgerError(f"registry head is not at entry {entry['seq'] - 1}: "
                                          f"run ivr registry verify")
        except (OSError, SQLAlchemyError) as exc:
            raise LedgerError(f"ledger {redact(self.url)}: {problem(exc)}") from None

    async def registry(self, from_us: int | None = None,
                       to_us: int | None = None) -> tuple[list[dict[str, Any]], tuple[int, str] | None]:
        """The registry's entries in seq order (those made in [from_us, to_us) if given),
        and its head (seq, hash), None if there is none."""
        c = t.registry.c
        query = select(t.registry).order_by(c.seq)
        if from_us is not None:
            query = query.where(c.at_us >= from_us)
        if to_us is not None:
            query = query.where(c.at_us < to_us)
        try:
            async with self.engine.connect() as conn:
                rows = [dict(r) for r in (await conn.execute(query)).mappings()]
                head = (await conn.execute(select(t.registry_head.c.seq, t.registry_head.c.hash)
                                           .where(t.registry_head.c.id == 1))).first()
        except (OSError, SQLAlchemyError) as exc:
            raise LedgerError(f"ledger {redact(self.url)}: {problem(exc)}") from None
        return rows, (int(head[0]), str(head[1])) if head is not None else None

    async def undisposed(self, from_us: int, to_us: int) -> dict[str, int]:
        """Per operator, the calls they answered in first-line (entered in [from_us, to_us))
        that have no disposition."""
        c, a = t.calls.c, t.operator_actions.c
        disposed = (select(literal(1)).where(a.pbx == c.pbx, a.uniqueid == c.uniqueid,
                                             a.action == "disposition").exists())
        query = (select(c.fl_member, func.count()).where(
            c.fl_entered_us >= from_us, c.fl_entered_us < to_us, c.fl_outcome == "answered",
            ~disposed).group_by(c.fl_member))
        return {str(key): int(n) for key, n in await self._read(query)}

    async def contacts(self, from_us: int, to_us: int) -> list[tuple[Any, ...]]:
        """Every call that entered in [from_us, to_us), lightly: uniqueid, caller, account,
        entered_us, ended_us, answered_queue, answered_member, payable (reports/fcr.py)."""
        c = t.calls.c
        query = (select(c.uniqueid, c.caller, c.account, c.entered_us, c.ended_us,
                        c.answered_queue, c.answered_member, c.payable)
                 .where(c.entered_us >= from_us, c.entered_us < to_us).order_by(c.entered_us))
        return [tuple(r) for r in await self._read(query)]

    async def repeat_counts(self, from_us: int, to_us: int) -> dict[str, int]:
        """Repeat calls judged in [from_us, to_us), by kind."""
        r = t.repeats.c
        query = (select(r.kind, func.count()).where(r.at_us >= from_us, r.at_us < to_us)
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
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).mappings().all()
                if not rows:
                    return []
                keys = [(r["pbx"], r["uniqueid"]) for r in rows]
                visits = await self._visits(conn, keys, min(r["entered_us"] for r in rows),
                                            max(r["entered_us"] for r in rows) + 1)
        except (OSError, SQLAlchemyError) as exc:
            raise LedgerError(f"ledger {redact(self.url)}: {problem(exc)}") from None
        return [_record(r, visits.get((r["pbx"], r["uniqueid"]), ())) for r in rows]

    # -- reads --------------------------------------------------------------

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
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).mappings().all()
                visits = await self._visits(conn, [(r["pbx"], r["uniqueid"]) for r in rows],
                                            from_us, to_us)
        except (OSError, SQLAlchemyError) as exc:
            raise LedgerError(f"ledger {redact(self.url)}: {problem(exc)}") from None
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

    async def billing_calls(self, from_us: int, to_us: int) -> list[rec.BillingCall]:
        """Every call whose first visit to first-line began in [from_us, to_us)."""
        c = t.calls.c
        query = (select(c.pbx, c.uniqueid, c.fl_entered_us, c.fl_wait_ms, c.fl_outcome,
                        c.fl_member, c.payable, c.source)
                 .where(c.fl_entered_us >= from_us, c.fl_entered_us < to_us)
                 # The statement's own order: its build skips the sort (0.85 s, not 2 s, per 1M).
                 .order_by(c.fl_entered_us, c.pbx, c.uniqueid))
        try:
            async with self.engine.connect() as conn:
                result = await conn.execute(query)
                return [rec.BillingCall(pbx, uid, entered, wait, outcome, member or "",
                                        bool(payable), source)
                        for pbx, uid, entered, wait, outcome, member, payable, source in result]
        except (OSError, SQLAlchemyError) as exc:
            raise LedgerError(f"ledger {redact(self.url)}: {problem(exc)}") from None


    # -- the statement, counted where the calls are -------------------------

    async def statement_tally(self, boundaries: Sequence[int],
                              short_abandon_ms: int) -> list[tuple[int, str, bool, str, int, int]]:
        """First-line calls of [boundaries[0], boundaries[-1]) counted by (day, operator,
        payable, outcome), days cut at boundaries[1:-1]: rows of (day, operator, payable,
        outcome, short abandons, calls).  A month is a GROUP BY, not a million rows."""
        c = t.calls.c
        cuts = list(boundaries[1:-1])
        day = _bucket(c.fl_entered_us, cuts).label("day")
        operator = func.coalesce(c.fl_member, "").label("operator")
        short = func.sum(case((and_(c.fl_outcome == "abandoned",
                                    c.fl_wait_ms <= short_abandon_ms), 1), else_=0))
        # A one-day period has no cut: its day is the constant 0, which a GROUP BY would
        # read as a column's position (SQLite and PostgreSQL alike).
        query = (select(day, operator, c.payable, c.fl_outcome, short, func.count())
                 .where(c.fl_entered_us >= boundaries[0], c.fl_entered_us < boundaries[-1])
                 .group_by(*([day] if cuts else []), operator, c.payable, c.fl_outcome))
        try:
            async with self.engine.connect() as conn:
                return [(int(d), op, bool(paid), outcome, int(n_short or 0), int(n))
                        for d, op, paid, outcome, n_short, n in await conn.execute(query)]
        except (OSError, SQLAlchemyError) as exc:
            raise LedgerError(f"ledger {redact(self.url)}: {problem(exc)}") from None

    async def statement_digest(self, from_us: int, to_us: int) -> str:
        """SHA-256 over the canonical call lines of the period (reports/billing.py
        defines them; tests hold the two equal), computed without loading the calls."""
        c = t.calls.c
        period = and_(c.fl_entered_us >= from_us, c.fl_entered_us < to_us)
        try:
            async with self.engine.connect() as conn:
                if self.dialect == "postgresql":
                    return await self._pg_digest(conn, period)
                return await _sqlite_digest(conn, from_us, to_us)
        except (OSError, SQLAlchemyError) as exc:
            raise LedgerError(f"ledger {redact(self.url)}: {problem(exc)}") from None

    @staticmethod
    async def _pg_digest(conn: Any, period: Any) -> str:
        """The server hashes: one answer instead of a million lines on the wire.
        COLLATE "C" orders pbx and uniqueid by bytes, as Python compares them."""
        from sqlalchemy.dialects.postgresql import aggregate_order_by
        c = t.calls.c
        lines = func.string_agg(c.fl_line, aggregate_order_by(
            literal(""), c.fl_entered_us, c.pbx.collate("C"), c.uniqueid.collate("C")))
        query = select(func.encode(func.sha256(func.convert_to(lines, "UTF8")), "hex")).where(period)
        found = (await conn.execute(query)).scalar()
        return str(found) if found is not None else hashlib.sha256(b"").hexdigest()

    # -- console sessions (console/sessions.py): not figures, so they may be deleted ---------

    async def session_put(self, row: dict[str, Any]) -> None:
        await self._change(insert(t.console_sessions), [row])

    async def session_drop(self, sid_hash: str) -> None:
        await self._change(delete(t.console_sessions)
                           .where(t.console_sessions.c.sid_hash == sid_hash))

    async def sessions(self, now_us: int) -> list[dict[str, Any]]:
        """The sessions still valid at now_us; the expired ones are deleted."""
        c = t.console_sessions.c
        await self._change(delete(t.console_sessions).where(c.expires_us <= now_us))
        return [dict(r) for r in await self._read(select(t.console_sessions), mappings=True)]

    async def _change(self, statement: Any, rows: Sequence[dict[str, Any]] | None = None) -> None:
        try:
            async with self.engine.begin() as conn:
                if rows is None:
                    await conn.execute(statement)
                else:
                    await conn.execute(statement, rows)
        except (OSError, SQLAlchemyError) as exc:
            raise LedgerError(f"ledger {redact(self.url)}: {problem(exc)}") from None

    async def rows(self, table: str) -> list[tuple[Any, ...]]:
        """A realtime queue_log table (contrib/realtime layout), oldest first."""
        if not _IDENTIFIER.fullmatch(table):
            raise LedgerError(f"queue_log table {table!r}: expected a plain table name")
        columns = "time, callid, queuename, agent, event, data1, data2, data3, data4, data5"
        try:
            async with self.engine.connect() as conn:
                result = await conn.execute(text(f'SELECT {columns} FROM "{table}" ORDER BY time'))
                return [tuple(r) for r in result]
        except (OSError, SQLAlchemyError) as exc:
            raise LedgerError(f"queue_log table {table} in {redact(self.url)}: {problem(exc)}") from None


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@functools.cache
def _sqlite_insert(table: Any, keys: tuple[str, ...]) -> str:
    columns = [c.name for c in table.columns]
    return (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
            f"({', '.join('?' * len(columns))}) ON CONFLICT ({', '.join(keys)}) DO NOTHING")


async def _pg_insert(conn: Any, table: Any, keys: tuple[str, ...],
                     rows: list[tuple[Any, ...]]) -> int:
    """COPY the rows into a session's temporary twin of the table (emptied at each
    commit), then INSERT ... SELECT what is not there yet.  The first statement goes
    through SQLAlchemy, which opens the batch's transaction; the COPY is inside it."""
    staging = f"ivr_in_{table.name}"
    columns = [c.name for c in table.columns]
    listed = ", ".join(columns)
    await conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} "
                               f"(LIKE {table.name}) ON COMMIT DELETE ROWS")
    raw = (await conn.get_raw_connection()).driver_connection
    await raw.copy_records_to_table(staging, records=rows, columns=columns)
    result = await conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({listed}) SELECT {listed} FROM {staging} "
        f"ON CONFLICT ({', '.join(keys)}) DO NOTHING RETURNING 1")
    new = len(result.all())
    await conn.exec_driver_sql(f"DELETE FROM {staging}")   # for the next insert of this batch
    return new


async def _sqlite_digest(conn: Any, from_us: int, to_us: int) -> str:
    """The lines straight from the driver, in the covering index's order: SQLAlchemy's
    rows cost 1.8 s a million where aiosqlite's tuples cost 0.7 s."""
    raw = (await conn.get_raw_connection()).driver_connection
    sha = hashlib.sha256()
    async with raw.execute("SELECT fl_line FROM calls WHERE fl_entered_us >= ? AND "
                           "fl_entered_us < ? ORDER BY fl_entered_us, pbx, uniqueid",
                           (from_us, to_us)) as cursor:
        while rows := await cursor.fetchmany(50_000):
            sha.update("".join([r[0] for r in rows]).encode())
    return sha.hexdigest()


def _line_sql() -> Any:
    """records.statement_line in SQL, for a call whose first-line visit came later (a backfill)."""
    c = t.calls.c
    return (c.pbx + "|" + c.uniqueid + "|" + cast(c.fl_entered_us, String) + "|"
            + func.coalesce(cast(c.fl_wait_ms, String), "") + "|" + c.fl_outcome + "|"
            + func.coalesce(c.fl_member, "") + "|" + case((c.payable, "1"), else_="0")
            + "|" + c.source + "\n")


def _bucket(column: Any, cuts: list[int], first: int = 0) -> Any:
    """The index of the interval of `column` among sorted `cuts`, as a balanced CASE:
    log2(days) comparisons a row.  Numbers are inlined, so the SELECT and the GROUP BY
    are one expression to PostgreSQL."""
    if not cuts:
        return literal_column(str(int(first)))
    mid = len(cuts) // 2
    return case((column < literal_column(str(int(cuts[mid]))), _bucket(column, cuts[:mid], first)),
                else_=_bucket(column, cuts[mid + 1:], first + mid + 1))


def _upgrade(conn: Connection) -> str:
    # Alembic is imported here, not at start-up: most ivr commands never migrate.
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    script = ScriptDirectory.from_config(cfg)
    from alembic.runtime.migration import MigrationContext
    current = MigrationContext.configure(conn).get_current_revision()
    head = script.get_current_head()
    if current is not None:
        try:
            script.get_revision(current)
        except CommandError:
            raise LedgerError(f"the ledger database is at schema revision {current!r}, newer than "
                              f"this ivr knows (up to {head!r}): upgrade ivr first") from None
    if current != head:
        log.info("ledger: migrating the schema from %s to %s", current or "empty", head)
        command.upgrade(cfg, "head")
    return str(head)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")     # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")   # durable at each checkpoint, safe in WAL
    cursor.execute("PRAGMA busy_timeout=5000")
    # Five indexes with random keys (caller, account) want their pages at hand, and
    # fewer checkpoints: 10,700 -> 12,900 records/s in interleaved runs here.
    cursor.execute("PRAGMA cache_size=-65536")    # 64 MiB a connection, as it fills
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def _visit_row(pbx: str, uniqueid: str, v: rec.VisitRecord, source: str) -> tuple[Any, ...]:
    """The visits row, in schema.visits' column order."""
    return (pbx, uniqueid, v.seq, v.queue, v.entered_us, v.left_us, v.outcome, v.wait_ms,
            v.member, source)


def _record(r: Any, visits: Iterable[rec.VisitRecord]) -> rec.CallRecord:
    return rec.CallRecord(
        r["pbx"], r["uniqueid"], r["linkedid"], r["caller"], r["account"], r["area"],
        r["entered_us"], r["ended_us"], tuple(visits), r["outcome"], bool(r["payable"]),
        r["source"], r["precision"], r["answered_us"], r["answered_queue"], r["answered_member"])
