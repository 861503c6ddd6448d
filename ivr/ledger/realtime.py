"""Asterisk's realtime queue_log table (contrib/realtime layout: time, callid,
queuename, agent, event, data1..data5), read as the reconciliation needs it: a
period filtered by the database on `time` (a range scan when the table has an index
on it), in time order, streamed in batches through a server-side cursor, so the
table is never in memory whole.  ivr only reads it: it is Asterisk's.

`time` is whatever the schema made it.  res_config_pgsql's table and Asterisk's
own alembic scripts make it a TIMESTAMP; the long-standing MySQL/ODBC layout makes
it text (`char(26)` or `varchar`) holding `2026-12-01 09:33:11.000123`, or epoch
seconds.  So a bound is given in the form of the column's own values, found from
one row: a datetime for a timestamp (naive, in UTC, for a column without a zone,
as reconcile/rows.py reads them), epoch text or a date-time string with the same
separator for text, a number for a number.  The comparison is then the
database's own, and its index serves it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from ivr.ledger.db import Database, LedgerError

COLUMNS = "time, callid, queuename, agent, event, data1, data2, data3, data4, data5"
BATCH = 5000
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_EPOCH = re.compile(r"\s*\d+(?:\.\d*)?\s*")


class RealtimeReads(Database):
    """The realtime queue_log table's reads, a part of the Store."""

    async def rows(self, table: str, from_s: int | None = None,
                   to_s: int | None = None) -> list[tuple[Any, ...]]:
        """The table's rows with time in [from_s, to_s) (None: unbounded), oldest first."""
        found: list[tuple[Any, ...]] = []
        async for batch in self.row_batches(table, from_s, to_s):
            found += batch
        return found

    async def row_batches(self, table: str, from_s: int | None = None, to_s: int | None = None,
                          size: int = BATCH) -> AsyncIterator[list[tuple[Any, ...]]]:
        """The same rows, `size` at a time, as the database sends them."""
        if not _IDENTIFIER.fullmatch(table):
            raise LedgerError(f"queue_log table {table!r}: expected a plain table name")
        with self._failing(f"queue_log table {table} in"):
            async with self.engine.connect() as conn:
                where, bounds = "", dict[str, Any]()
                if from_s is not None or to_s is not None:
                    sample = (await conn.execute(text(
                        f'SELECT time FROM "{table}" WHERE time IS NOT NULL LIMIT 1'))).first()
                    if sample is None:
                        return           # an empty table
                    where, bounds = _where(sample[0], from_s, to_s)
                result = await conn.stream(
                    text(f'SELECT {COLUMNS} FROM "{table}"{where} ORDER BY time'), bounds)
                async for part in result.partitions(size):
                    yield [tuple(r) for r in part]


def _where(sample: object, from_s: int | None, to_s: int | None) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of [from_s, to_s) and its bounds, in the form of `sample`."""
    terms: list[str] = []
    bounds: dict[str, Any] = {}
    for name, op, epoch_s in (("lo", ">=", from_s), ("hi", "<", to_s)):
        if epoch_s is not None:
            terms.append(f"time {op} :{name}")
            bounds[name] = bound(sample, epoch_s)
    return " WHERE " + " AND ".join(terms), bounds


def bound(sample: object, epoch_s: int) -> Any:
    """epoch_s in the form of a value of the time column (`sample`)."""
    at = datetime.fromtimestamp(epoch_s, timezone.utc)
    if isinstance(sample, datetime):
        return at if sample.tzinfo is not None else at.replace(tzinfo=None)
    if isinstance(sample, (int, float, Decimal)) and not isinstance(sample, bool):
        return epoch_s
    value = sample.decode() if isinstance(sample, bytes) else str(sample)
    if _EPOCH.fullmatch(value):
        return str(epoch_s)      # as text: the same number of digits compares as numbers do
    separator = value[10] if len(value) > 10 else " "
    return at.strftime(f"%Y-%m-%d{separator}%H:%M:%S")
