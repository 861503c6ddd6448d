"""Where a scan (scan.py) reads queue_log from: files (files.py) or Asterisk's
realtime table (ledger/realtime.py), as batches of parsed rows in time order, and
how far the read is, for a person watching (scan.Progress)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from ivr.ledger.store import Store
from ivr.reconcile.files import Damage, Lines, LogFile
from ivr.reconcile.rows import BadLine, Row, parse_table

BATCH = 5000                   # rows a batch: between two looks at the ledger


class Progress(Protocol):
    """A progress display (cli/progress.py): the source sets its total and advances
    it, the scan says what it found so far."""

    def begin(self, total: int | None, unit: str) -> None: ...

    def advance(self, amount: int) -> None: ...

    def status(self, text: str) -> None: ...


class Source(Protocol):
    """queue_log's rows in time order, a batch at a time."""

    @property
    def rows(self) -> int:
        """Rows read so far, bad ones included."""

    @property
    def damaged(self) -> list[Damage]:
        """Compressed files found cut short."""

    def batches(self) -> AsyncIterator[list[Row | BadLine]]: ...


class FileSource:
    """queue_log files (see files.py), read over [start_s, stop_s).  The reads block:
    this is for a command, not for ivr's event loop (catchup.py reads in a thread)."""

    def __init__(self, files: Sequence[LogFile], start_s: int | None, stop_s: int | None,
                 progress: Progress | None = None,
                 follow: tuple[int, Callable[[str], bool]] | None = None) -> None:
        self.lines = Lines(files, start_s, stop_s, progress.advance if progress else None,
                           follow)
        if progress is not None:
            progress.begin(self.lines.total_bytes, "bytes")

    @property
    def rows(self) -> int:
        return self.lines.rows

    @property
    def damaged(self) -> list[Damage]:
        return self.lines.damaged

    async def batches(self) -> AsyncIterator[list[Row | BadLine]]:
        batch: list[Row | BadLine] = []
        past = False
        for item in self.lines:
            batch.append(item)
            if len(batch) >= BATCH or past != self.lines.past:
                # The batch ends at the first row past the cut: the lines after it are
                # judged by what the scan holds, so it must hold the calls before it.
                past = self.lines.past
                yield batch
                batch = []
                await asyncio.sleep(0)   # a turn for the ledger's read ahead (scan.py)
        if batch:
            yield batch


class TableSource:
    """The realtime queue_log table, its rows with time in [start_s, stop_s) (None:
    unbounded) as the database sends them, in time order (ORDER BY time)."""

    def __init__(self, db: Store, table: str, start_s: int | None, stop_s: int | None,
                 progress: Progress | None = None) -> None:
        self.db, self.table = db, table
        self.start_s, self.stop_s = start_s, stop_s
        self.progress = progress
        self._rows = 0
        if progress is not None:     # how far: queue_log's own time through the period
            bounded = start_s is not None and stop_s is not None
            progress.begin(stop_s - start_s if start_s is not None and stop_s is not None
                           else None, "seconds" if bounded else "rows")

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def damaged(self) -> list[Damage]:
        return []

    async def batches(self) -> AsyncIterator[list[Row | BadLine]]:
        at = self.start_s
        async for rows in self.db.row_batches(self.table, self.start_s, self.stop_s, BATCH):
            batch = [item if isinstance(item, BadLine) else item[1]
                     for item in parse_table(rows, start=self._rows + 1)]
            self._rows += len(rows)
            if self.progress is not None:
                newest = max((r.time_s for r in batch if isinstance(r, Row)), default=None)
                if at is None or newest is None:
                    self.progress.advance(len(rows))
                elif newest > at:
                    self.progress.advance(newest - at)
                    at = newest
            yield batch

