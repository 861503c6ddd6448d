"""The ledger's database: the engine, its errors, and the few helpers every part of
the store shares (store.py composes the parts into the one Store).

SQLAlchemy 2 Core over aiosqlite or asyncpg.  A database failure reaches callers
as a LedgerError with a one-line message, never a driver's exception.

A read-only Database (what every report, history and reconcile command opens)
cannot write, whatever runs on it: SQLite is opened as a `mode=ro` URI (so a
missing file is an error, never a new empty ledger), and a PostgreSQL session's
transactions are READ ONLY (default_transaction_read_only).
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import quote

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from ivr.calls.judge import FIRST_LINE

CACHE_KIB = 65536              # SQLite's page cache a connection (see _sqlite_pragmas)
_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
            "postgres": "postgresql+asyncpg"}


class LedgerError(Exception):
    """A ledger problem a person can act on; the message is one line."""


class SchemaError(LedgerError):
    """The ledger is not there, or its schema is not this code's: nothing was read or
    changed, and the remedy is `ivr ledger migrate` (or a newer ivr)."""


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


def of_pbx(query: Any, column: Any, pbx: str | None) -> Any:
    """`query` kept to one PBX's rows, or as it is for all (pbx None)."""
    return query if pbx is None else query.where(column == pbx)


def problem(exc: BaseException) -> str:
    """One line naming a database failure (drivers' messages run to several)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}".rstrip(": ")


class Database:
    """The engine of one ledger URL; the store's parts (store.py) build on it."""

    def __init__(self, url: str, first_line: str = FIRST_LINE, read_only: bool = False) -> None:
        self.url = url
        self.first_line = first_line
        self.read_only = read_only
        target = driver_url(url)
        self.dialect = "sqlite" if target.startswith("sqlite") else "postgresql"
        if self.dialect == "sqlite":
            path = make_url(target).database
            self.path = Path(path) if path and path != ":memory:" else None
            self.engine: AsyncEngine = self._sqlite_engine(target)
            event.listen(self.engine.sync_engine, "connect",
                         functools.partial(_sqlite_pragmas, read_only))
        else:
            self.path = None
            settings = {"default_transaction_read_only": "on"} if read_only else {}
            self.engine = create_async_engine(
                target, pool_pre_ping=True, pool_size=2,
                connect_args={"timeout": 5, "server_settings": settings})

    def _sqlite_engine(self, target: str) -> AsyncEngine:
        if self.path is None:
            return create_async_engine(target)
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return create_async_engine(target)
        # The URI is built here, quoted: SQLAlchemy's own `?mode=ro&uri=true` form
        # decodes the path first, and a `?` or `#` in it would then open another file.
        uri = f"file:{quote(os.path.abspath(self.path))}?mode=ro"

        async def connect() -> Any:
            import aiosqlite
            return await aiosqlite.connect(uri, uri=True)
        return create_async_engine("sqlite+aiosqlite://", async_creator=connect,
                                   poolclass=AsyncAdaptedQueuePool)

    async def close(self) -> None:
        await self.engine.dispose()

    @contextlib.contextmanager
    def _failing(self, what: str = "ledger") -> Iterator[None]:
        """A database failure inside becomes a LedgerError naming `what` and the URL."""
        try:
            yield
        except (OSError, SQLAlchemyError) as exc:
            raise LedgerError(f"{what} {redact(self.url)}: {problem(exc)}") from None

    async def _read(self, query: Any, mappings: bool = False) -> Sequence[Any]:
        """All rows of a query (as mappings if asked); a database failure is a LedgerError."""
        with self._failing():
            async with self.engine.connect() as conn:
                result = await conn.execute(query)
                return result.mappings().all() if mappings else result.all()

    async def _change(self, statement: Any, rows: Sequence[dict[str, Any]] | None = None) -> None:
        with self._failing():
            async with self.engine.begin() as conn:
                if rows is None:
                    await conn.execute(statement)
                else:
                    await conn.execute(statement, rows)

    def _insert(self, table: Any, keys: tuple[str, ...]) -> Any:
        dialect = sqlite if self.dialect == "sqlite" else postgresql
        return dialect.insert(table).on_conflict_do_nothing(index_elements=list(keys))



def _sqlite_pragmas(read_only: bool, dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    # Five indexes with random keys (caller, account) want their pages at hand, and
    # fewer checkpoints: 10,700 -> 12,900 records/s in interleaved runs here.
    cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")    # 64 MiB a connection, as it fills
    cursor.execute("PRAGMA temp_store=MEMORY")
    if read_only:
        # Setting the journal mode is a write: a reader takes the file as it is.
        cursor.execute("PRAGMA query_only=ON")
    else:
        cursor.execute("PRAGMA journal_mode=WAL")     # readers never block the writer
        cursor.execute("PRAGMA synchronous=NORMAL")   # durable at each checkpoint, safe in WAL
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()
