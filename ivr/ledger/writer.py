"""The ledger writer: records leave the event loop's hot path here.

The tracker's JourneyEnded carries the call's record; `on_fact` appends it
to a list and returns (a few hundred nanoseconds).  A background task
writes what has gathered every `interval` seconds, or as soon as `batch`
records wait, in one transaction per batch, through the store's own thread
(offloop.OffLoop).  At a call center's rates a flush holds tens of records;
batches reach 2,000 only while a backlog drains, where they double what
SQLite takes per second (22,000 records/s against 14,000 in batches of 500),
at the price of up to 50 ms of ivr's loop a batch (the GIL) while it does.

When the database is unreachable, slow or failing, calls go on: the batch
goes to a spool on disk (JSON lines, fsynced, at most `spool_max` records)
and the writer retries with a capped backoff, spool first (it holds the
older records).  Writes are idempotent (see store.py), so a batch that was
written but whose answer was lost is written again harmlessly: nothing
lost, nothing doubled.  Only records past the spool's bound are dropped,
each counted and logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from ivr import journeys as jr
from ivr.ledger import records as rec
from ivr.ledger.store import LedgerError, problem

log = logging.getLogger(__name__)


class Target(Protocol):
    async def migrate(self) -> str: ...
    async def write(self, records: Sequence[rec.CallRecord],
                    history: Mapping[str, Sequence[dict[str, Any]]] | None = None) -> int: ...


@dataclass(frozen=True, slots=True)
class History:
    """A row for a history table (escalations, route_decisions)."""

    table: str
    row: dict[str, Any]


Item = rec.CallRecord | History


class Spool:
    """Items the database could not take yet: one JSON object a line, oldest first.

    Written items are skipped by a byte offset, and the file is emptied once
    all of it is written: never rewritten per batch.  A crash in between
    writes some items again at the next start, which idempotent writes make
    harmless.
    """

    def __init__(self, path: Path, max_items: int) -> None:
        self.path, self.max_items = path, max_items
        path.parent.mkdir(parents=True, exist_ok=True)
        self._offset = 0          # bytes of the file already in the database
        self._pending: list[int] = []   # end offsets of the lines head() last returned
        self.count = self._lines_from(0)
        if self.count:
            log.warning("ledger spool %s holds %d records from before: they are written first",
                        path, self.count)

    def _lines_from(self, offset: int) -> int:
        try:
            with self.path.open("rb") as f:
                f.seek(offset)
                return sum(1 for line in f if line.strip())
        except FileNotFoundError:
            return 0

    def append(self, items: Sequence[Item]) -> int:
        """Append what fits under the bound; how many were kept."""
        kept = list(items[:max(0, self.max_items - self.count)])
        if kept:
            with self.path.open("a", encoding="utf-8") as f:
                f.writelines(json.dumps(_encode(i), separators=(",", ":")) + "\n" for i in kept)
                f.flush()
                os.fsync(f.fileno())
            self.count += len(kept)
        return len(kept)

    def head(self, n: int) -> list[Item]:
        """The oldest n items not yet written."""
        items: list[Item] = []
        self._pending = []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            while len(items) < n and (line := f.readline()):
                self._pending.append(f.tell())
                items.append(self._decode_line(line))
        return items

    def _decode_line(self, line: bytes) -> Item:
        try:
            return _decode(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            log.error("ledger spool %s: skipping a line that is not a record (%s)", self.path, exc)
            return History("", {})   # keeps the count; written as nothing

    def drop(self, n: int) -> None:
        """The first n items of the last head() are in the database now."""
        if n:
            self._offset = self._pending[n - 1]
            self.count -= n
        if self.count <= 0 or not n:
            self.path.unlink(missing_ok=True)
            self._offset, self.count = 0, 0


def _encode(item: Item) -> dict[str, Any]:
    if isinstance(item, History):
        return {"history": item.table, "row": item.row}
    return {"call": rec.to_dict(item)}


def _decode(data: dict[str, Any]) -> Item:
    if "history" in data:
        return History(str(data["history"]), dict(data["row"]))
    return rec.from_dict(data["call"])


class LedgerWriter:
    def __init__(self, store: Target, spool: Spool, batch: int = 2000,
                 interval: float = 0.25, timeout: float = 10.0, max_backoff: float = 5.0) -> None:
        self.store, self.spool = store, spool
        self.batch, self.interval, self.timeout, self.max_backoff = batch, interval, timeout, max_backoff
        self.pending: list[Item] = []
        self.written = 0
        self.write_errors = 0
        self.dropped = 0
        self.last_error = ""
        self.migrated = False
        self._wake = asyncio.Event()
        # One flush at a time: two would write the same batch and then drop it twice.
        self._flushing = asyncio.Lock()

    # -- the hot path: called for every fact --------------------------------

    def on_fact(self, fact: jr.Fact) -> None:
        if isinstance(fact, jr.JourneyEnded):
            self.submit(fact.record)

    def submit(self, item: Item) -> None:
        self.pending.append(item)
        if len(self.pending) >= self.batch:
            self._wake.set()

    @property
    def backlog(self) -> int:
        """Records not yet in the database: waiting in memory or in the spool."""
        return len(self.pending) + self.spool.count

    @property
    def healthy(self) -> bool:
        return self.migrated and not self.last_error

    # -- the background task ------------------------------------------------

    async def run(self) -> None:
        backoff = self.interval
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), backoff)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                ok = await self.flush()
            except Exception:     # a bug here must not end the ledger for good
                log.exception("ledger: the writer failed; retrying")
                ok = False
            backoff = self.interval if ok else min(self.max_backoff, max(1.0, backoff * 2))

    async def flush(self) -> bool:
        """Write the spool, then what is pending; False when the database failed.
        Safe to call while the background task runs (an API handler that needs a
        call that just ended): flushes take turns."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> bool:
        try:
            if not self.migrated:
                await asyncio.wait_for(self.store.migrate(), self.timeout)
                self.migrated = True
            while self.spool.count:
                items = self.spool.head(self.batch)
                await self._write(items)
                self.spool.drop(len(items))
                if not items:     # fewer lines than counted (a torn last line): done
                    break
            while self.pending:
                items = self.pending[:self.batch]
                await self._write(items)
                del self.pending[:len(items)]
        except Exception as exc:   # any database or disk failure: calls must go on
            self._failed(exc)
            return False
        if self.last_error:
            log.info("ledger: the database is back; backlog written")
            self.last_error = ""
        return True

    async def _write(self, items: Sequence[Item]) -> None:
        calls = [i for i in items if isinstance(i, rec.CallRecord)]
        history: dict[str, list[dict[str, Any]]] = {}
        for i in items:
            if isinstance(i, History) and i.table:
                history.setdefault(i.table, []).append(i.row)
        await asyncio.wait_for(self.store.write(calls, history), self.timeout)
        self.written += len(calls)

    def _failed(self, exc: BaseException) -> None:
        self.write_errors += 1
        reason = "timed out" if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) else (
            str(exc) if isinstance(exc, LedgerError) else problem(exc))
        if reason != self.last_error:
            log.warning("ledger: cannot write (%s); %d records held, calls go on", reason,
                        self.backlog)
        self.last_error = reason
        self._to_spool()

    def _to_spool(self) -> None:
        """Pending records to disk, so neither memory nor a crash can lose them."""
        if not self.pending:
            return
        try:
            kept = self.spool.append(self.pending)
        except OSError as exc:    # the disk too: hold them in memory, as many as the spool would
            excess = max(0, len(self.pending) - self.spool.max_items)
            log.error("ledger: cannot spool to %s (%s); %d records held in memory",
                      self.spool.path, exc.strerror or exc, len(self.pending) - excess)
            self._drop(excess)
            del self.pending[:excess]
            return
        self._drop(len(self.pending) - kept)
        self.pending.clear()

    def _drop(self, lost: int) -> None:
        if lost:
            self.dropped += lost
            log.error("ledger: spool %s is full (%d records): %d records dropped",
                      self.spool.path, self.spool.max_items, lost)

    async def close(self) -> None:
        """On stop: one last write; what the database did not take is in the spool."""
        await self.flush()
