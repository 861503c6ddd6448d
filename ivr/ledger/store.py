"""The ledger store: SQLite (embedded default) or PostgreSQL, one interface.

Every write is one transaction and idempotent: rows are keyed (pbx, uniqueid)
and (pbx, uniqueid, seq) and inserted with ON CONFLICT DO NOTHING, so writing a
call that is already there (a resync, a replay, a restart, a flushed spool)
changes nothing.  Migrations are Alembic's (ivr/ledger/migrations), run by
`migrate()` (`ivr run` and `ivr ledger migrate` only; on PostgreSQL under an
advisory lock, so two instances starting together migrate one after the
other); a database at a revision this code does not know is refused.  The
commands that only read open a read-only Store and `require_schema()` first:
a missing ledger, or one whose schema is not this code's, is a SchemaError.

Store is the one interface: the calls' writes are here, and the reads come from
its parts, one module a concern (reads.py the calls, realtime.py Asterisk's realtime
queue_log table, statement.py the month's
statement, history.py the history tables, desk_store.py the registry and the
console's sessions, outbox_store.py the webhooks' outbox, retention.py the purge
of old calls; db.py the engine under them all).  ivr's app drives a Store from a
thread of its own (offloop.py).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import (Any, Callable, Concatenate, Coroutine, Mapping, ParamSpec, Protocol, Sequence,
                    TypeVar)

from sqlalchemy import Connection, String, and_, case, cast, func, update

from ivr.calls import records as rec
from ivr.ledger import schema as t
from ivr.ledger.db import LedgerError, SchemaError, redact
from ivr.ledger.desk_store import DeskStore
from ivr.ledger.history import HistoryStore
from ivr.ledger.outbox_store import OutboxStore
from ivr.ledger.reads import CallReads
from ivr.ledger.realtime import RealtimeReads
from ivr.ledger.retention import RetentionStore
from ivr.ledger.statement import StatementStore

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock's key while the schema is migrated: b"ivr-ledg" as a
# big-endian bigint.  Fixed, so every ivr on one database takes the same lock.
MIGRATE_LOCK = 0x6976722D6C656467
MIGRATE = "run `ivr ledger migrate`"
P = ParamSpec("P")
T = TypeVar("T")


class Ledger(Protocol):
    """What callers hold: a Store, or one on a loop of its own (offloop.OffLoop).  A query
    is a Store method and its arguments, `await ledger.run(Store.calls, from_us, to_us)`:
    written once, in Store, and checked by mypy at every call."""

    url: str
    first_line: str

    async def run(self, query: Callable[Concatenate[Store, P], Coroutine[Any, Any, T]], /,
                  *args: P.args, **kwargs: P.kwargs) -> T: ...

    async def close(self) -> None: ...


class Store(CallReads, RealtimeReads, StatementStore, HistoryStore, DeskStore, OutboxStore,
            RetentionStore):
    async def run(self, query: Callable[Concatenate[Store, P], Coroutine[Any, Any, T]], /,
                  *args: P.args, **kwargs: P.kwargs) -> T:
        """`query(self, *args, **kwargs)`, in the caller's loop (see Ledger)."""
        return await query(self, *args, **kwargs)

    # -- schema -------------------------------------------------------------

    async def migrate(self) -> str:
        """Upgrade the database in place to this code's schema; the revision it is at."""
        with self._failing():
            async with self.engine.begin() as conn:
                return await conn.run_sync(_upgrade)

    async def revision(self) -> str | None:
        with self._failing():
            async with self.engine.connect() as conn:
                return await conn.run_sync(_current)

    async def require_schema(self) -> str:
        """The schema's revision when it is this code's; else a SchemaError that says
        what to do.  Reads only: a missing SQLite file is not created."""
        if self.dialect == "sqlite" and self.path is not None and not self.path.is_file():
            raise SchemaError(f"the ledger at {redact(self.url)} does not exist: {MIGRATE}")
        with self._failing():
            async with self.engine.connect() as conn:
                current = await conn.run_sync(_current)
        head = _known(current)
        if current is None:
            raise SchemaError(f"the ledger at {redact(self.url)} has no schema: {MIGRATE}")
        if current != head:
            raise SchemaError(f"the ledger's schema is at {current}, this ivr needs {head}: "
                              f"{MIGRATE}")
        return head

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


def _line_sql() -> Any:
    """records.statement_line in SQL, for a call whose first-line visit came later (a backfill)."""
    c = t.calls.c
    return (c.pbx + "|" + c.uniqueid + "|" + cast(c.fl_entered_us, String) + "|"
            + func.coalesce(cast(c.fl_wait_ms, String), "") + "|" + c.fl_outcome + "|"
            + func.coalesce(c.fl_member, "") + "|" + case((c.payable, "1"), else_="0")
            + "|" + c.source + "\n")



def _current(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext
    return MigrationContext.configure(conn).get_current_revision()


def _alembic(conn: Connection | None = None) -> Any:
    # Alembic is imported here, not at start-up: most ivr commands never migrate.
    from alembic.config import Config as AlembicConfig
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _known(current: str | None) -> str:
    """This code's head revision; a SchemaError if `current` is not one it knows."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError
    script = ScriptDirectory.from_config(_alembic())
    head = str(script.get_current_head())
    if current is not None:
        try:
            script.get_revision(current)
        except CommandError:
            raise SchemaError(f"the ledger database is at schema revision {current!r}, newer "
                              f"than this ivr knows (up to {head!r}): upgrade ivr first") from None
    return head


def _upgrade(conn: Connection) -> str:
    from alembic import command
    if conn.dialect.name == "postgresql":
        # Held to the end of this transaction, which the migration is part of: a second
        # ivr waits here, then finds the schema at head and has nothing to do.
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
    current = _current(conn)
    head = _known(current)
    if current != head:
        log.info("ledger: migrating the schema from %s to %s", current or "empty", head)
        command.upgrade(_alembic(conn), "head")
    return head


def _visit_row(pbx: str, uniqueid: str, v: rec.VisitRecord, source: str) -> tuple[Any, ...]:
    """The visits row, in schema.visits' column order."""
    return (pbx, uniqueid, v.seq, v.queue, v.entered_us, v.left_us, v.outcome, v.wait_ms,
            v.member, source)


