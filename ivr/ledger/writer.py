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
each counted and logged, as are a spool's torn or unreadable lines (spool.py).

A record the database refuses (bad data, not an absent database) is isolated
by writing the batch in halves and quarantined, counted and listed, and the
records after it flow on: one bad record never stalls the ledger
(quarantine.py).  Text from the PBX is made valid before it is written
(text.py): a NUL or a lone surrogate becomes U+FFFD.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Sequence

from ivr.calls.facts import Fact, JourneyEnded
from ivr.ledger import quarantine as qr
from ivr.calls import records as rec
from ivr.ledger.rows import HistoryRow, history
from ivr.ledger.spool import History, Item, Spool, SpoolError
from ivr.ledger.db import LedgerError, problem
from ivr.ledger.store import Ledger, Store
from ivr.ledger.text import valid

__all__ = ["History", "Item", "LedgerWriter", "Spool"]

log = logging.getLogger(__name__)


class LedgerWriter:
    def __init__(self, store: Ledger, spool: Spool, batch: int = 2000,
                 interval: float = 0.25, timeout: float = 10.0, max_backoff: float = 5.0,
                 quarantine: qr.Quarantine | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """Raises SpoolError (a config error) when the spool or the quarantine is not
        ivr's own file, or is the SQLite ledger itself."""
        url = str(getattr(store, "url", "") or "")
        if url:
            spool.check_not_ledger(url)
        self.store, self.spool, self.clock = store, spool, clock
        self.quarantine = quarantine or qr.Quarantine(qr.path_for(spool.path), url)
        self.batch, self.interval, self.timeout, self.max_backoff = batch, interval, timeout, max_backoff
        self.pending: list[Item] = []
        self.written = 0
        self.write_errors = 0
        self._dropped = 0
        self.quarantined = 0      # records quarantined by this process
        self.last_error = ""
        self.migrated = False
        self._wake = asyncio.Event()
        # One flush at a time: two would write the same batch and then drop it twice.
        self._flushing = asyncio.Lock()

    # -- the hot path: called for every fact --------------------------------

    def on_fact(self, fact: Fact) -> None:
        if isinstance(fact, JourneyEnded):
            self.submit(fact.record)

    def keep(self, row: HistoryRow) -> None:
        """A history row, written with the next batch."""
        self.submit(history(row))

    def submit(self, item: Item) -> None:
        self.pending.append(item)
        if len(self.pending) >= self.batch:
            self._wake.set()

    @property
    def backlog(self) -> int:
        """Records not yet in the database: waiting in memory or in the spool."""
        return len(self.pending) + self.spool.count

    @property
    def dropped(self) -> int:
        """Records lost: past the spool's bound, or torn or unreadable in it."""
        return self._dropped + self.spool.dropped

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
                await asyncio.wait_for(self.store.run(Store.migrate), self.timeout)
                self.migrated = True
            while self.spool.count:
                items = self.spool.head(self.batch)
                settled = [0]
                try:
                    await self._settle(items, settled)
                finally:
                    self.spool.drop(settled[0])
                if not items:     # the spool's lines ran out before its count: done
                    break
            while self.pending:
                items = self.pending[:self.batch]
                settled = [0]
                try:
                    await self._settle(items, settled)
                finally:
                    del self.pending[:settled[0]]
        except Exception as exc:   # any database or disk failure: calls must go on
            self._failed(exc)
            return False
        if self.last_error:
            log.info("ledger: the database is back; backlog written")
            self.last_error = ""
        return True

    async def _settle(self, items: Sequence[Item], settled: list[int]) -> None:
        """Write items in order; a record the database refuses is quarantined and the
        rest written (halves, then halves of halves).  settled[0] counts the items
        written or quarantined so far, always a prefix: when the database goes away
        in the middle (raised), those are not written again, and no history row is
        doubled."""
        spans = [(0, len(items))]
        while spans:
            lo, hi = spans.pop()
            try:
                await self._write(items[lo:hi])
            except Exception as exc:
                if not qr.refused(exc):
                    raise
                if hi - lo > 1:
                    mid = (lo + hi) // 2
                    spans += [(mid, hi), (lo, mid)]
                    continue
                self._quarantine(items[lo], exc)
            settled[0] = hi

    async def _write(self, items: Sequence[Item]) -> None:
        items = [valid(i) for i in items]
        calls = [i for i in items if isinstance(i, rec.CallRecord)]
        history: dict[str, list[dict[str, Any]]] = {}
        for i in items:
            if isinstance(i, History) and i.table:
                history.setdefault(i.table, []).append(i.row)
        await asyncio.wait_for(self.store.run(Store.write, calls, history), self.timeout)
        self.written += len(calls)

    def _quarantine(self, item: Item, exc: BaseException) -> None:
        reason = qr.reason(exc)
        self.quarantine.add(item, reason, round(self.clock() * 1_000_000))
        self.quarantined += 1
        what = (f"call {item.uniqueid} (pbx {item.pbx})" if isinstance(item, rec.CallRecord)
                else f"a {item.table} row")
        log.error("ledger: the database refused %s (%s): quarantined in %s; the records "
                  "after it go on", what, reason, self.quarantine.path)

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
        except (OSError, SpoolError) as exc:   # the disk too: hold them in memory, as many
            excess = max(0, len(self.pending) - self.spool.max_items)   # as the spool would
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            log.error("ledger: cannot spool to %s (%s); %d records held in memory",
                      self.spool.path, why, len(self.pending) - excess)
            self._drop(excess)
            del self.pending[:excess]
            return
        self._drop(len(self.pending) - kept)
        self.pending.clear()

    def _drop(self, lost: int) -> None:
        if lost:
            self._dropped += lost
            log.error("ledger: spool %s is full (%d records): %d records dropped",
                      self.spool.path, self.spool.max_items, lost)

    async def close(self) -> None:
        """On stop: one last write; what the database did not take is in the spool."""
        await self.flush()

    def spill(self) -> None:
        """On a forced exit (a stop whose cleanup hangs): what is pending goes to the
        spool now, without the database.  A record a hung write was taking may be both
        written and spooled; idempotent writes make that harmless at the next start."""
        self._to_spool()
