"""The reconciliation of a queue_log of any size, in flat memory: `scan()`.

Theory of operation
-------------------
compare.reconcile() holds a whole QueueLog and every ledger call of the period:
fine for the start-up backfill's hour, gigabytes for a large center's month.
scan() gives the same verdicts (compare.Tally's, backfill.for_call's) while it
reads queue_log once, in time order, and keeps only what is still open:

1. Rows come from a source: files (files.Lines: several, .gz, a period found
   by binary search) or the realtime table (realtime.py: the period filtered by
   the database, streamed).  For a period [from, to) the source is read over
   [from - MAX_STAY_S, to + MAX_STAY_S): a call of the period may have begun
   before it, or go on after it.
2. read.CallStream groups them by call and lets a call out once queue_log has
   gone MAX_STAY_S without a row of it, in order of first entry.  Until then
   only the rows its stints are made of are held.
3. The ledger is streamed beside queue_log in order of entry (only what
   comparing needs of a call: ledger/reads.py's CallVisits), kept up to
   WINDOW_S past queue_log's newest row and read a batch ahead.  For a period
   it starts MAX_STAY_S before it, with only the calls still going on at its
   start.  A call out of the stream is held against the ledger's record of it
   (taken out of memory then); its stints the ledger lacks are backfilled,
   BATCH records a transaction.  A call wholly outside the period is passed
   over by its entries alone.
4. A ledger call no queue_log call has claimed once queue_log is MAX_STAY_S past
   its end (and that the stream does not hold) is missing in queue_log.

So memory holds the calls of the last MAX_STAY_S of queue_log and of the ledger,
whatever the period's length, plus what the report lists: counted, with the
first few kept for the text, or spilled to a temporary file for --json
(listing.Listing).

MAX_STAY_S (4 h, the start-up backfill's own give-up time) is the margin: the
longest a call may go between two of its queue_log rows (a wait with nobody to
ring, a long talk), and the longest it may last across the period's edges.  A
call quiet for longer is read as two calls (its second part then reads as
missing, on both sides); one that began more than MAX_STAY_S before the period
is read from the middle.  compare.reconcile() has no such limit and is what the
tests hold this to.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ivr.calls.judge import FIRST_LINE
from ivr.calls.records import CallRecord, VisitRecord
from ivr.ledger.reads import CallVisits
from ivr.reconcile.backfill import Backfill, for_call
from ivr.reconcile.compare import Disagreement, MissingVisit, Reconciliation, Tally
from ivr.reconcile.listing import Listing
from ivr.reconcile.read import Call, CallStream, Stint
from ivr.reconcile.rows import ENTERQUEUE, QUEUE_LEVEL_IDS, US, BadLine, Row
from ivr.reconcile.sources import Progress, Source

MAX_STAY_S = 4 * 3600
WINDOW_S = 3600                # the ledger is read up to an hour past queue_log
BATCH = 2000                   # backfilled records a transaction, as ivr's writer does
GOING_SLACK_S = 60             # a call's end as the ledger has it, against queue_log's rows
FOREVER = 2**40                 # "no bound", in epoch seconds (times 10**6 it fits a BIGINT)


class LedgerCalls(Protocol):
    """What a scan needs of the ledger (a Store has it): its calls in order of entry,
    streamed, and the backfill's write."""

    def visit_batches(self, from_us: int, to_us: int, pbx: str | None = None,
                      size: int = 5000, going_at_us: int | None = None
                      ) -> AsyncIterator[list[CallVisits]]: ...

    async def backfill(self, records: Sequence[CallRecord],
                       visits: Sequence[tuple[str, str, VisitRecord]]) -> None: ...


@dataclass
class Options:
    pbx: str
    overflow: Mapping[str, int]
    from_s: int | None = None    # the period; None and None: the whole of queue_log
    to_s: int | None = None
    backfill: bool = False
    first_line: str = FIRST_LINE
    threshold_s: int = 30
    keep: int = 20               # items of each list held in memory ...
    spill: bool = False          # ... and the others spilled (--json), or only counted
    max_stay_s: int = MAX_STAY_S

    @property
    def whole(self) -> bool:
        return self.from_s is None or self.to_s is None


@dataclass
class _Ledger:
    """The ledger's calls read and not yet held against queue_log, and the stream of
    those still to read, in order of entry."""

    calls: dict[str, CallVisits] = field(default_factory=dict)
    ends: list[tuple[int, str]] = field(default_factory=list)   # heap: (ended_s, uniqueid)
    stream: AsyncIterator[list[CallVisits]] | None = None
    read_to_s: int | None = None         # the newest entry read
    done: bool = False                   # the stream is at its end
    # The next batch, asked for as soon as one is in: the database's thread (aiosqlite)
    # reads it while queue_log is parsed here.
    coming: asyncio.Future[list[CallVisits] | None] | None = None

    async def pull(self) -> list[CallVisits] | None:
        assert self.stream is not None
        if self.coming is None:
            self.coming = asyncio.ensure_future(anext(self.stream, None))
        batch = await self.coming
        self.coming = None if batch is None else asyncio.ensure_future(anext(self.stream, None))
        return batch

    def add(self, found: Iterable[CallVisits]) -> None:
        for c in found:
            self.calls[c.uniqueid] = c
            heapq.heappush(self.ends, (c.ended_us // US, c.uniqueid))
            self.read_to_s = c.entered_us // US

    async def close(self) -> None:
        if self.coming is not None:
            self.coming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.coming   # the read ahead: not wanted any more
        if self.stream is not None:
            await self.stream.aclose()   # type: ignore[attr-defined]


class Scan:
    """One reconciliation as it reads (see the module): run(source) once."""

    def __init__(self, store: LedgerCalls, options: Options,
                 progress: Progress | None = None) -> None:
        self.store, self.o = store, options
        self.progress = progress
        self.stream = CallStream(options.overflow, options.max_stay_s)
        self.ledger = _Ledger()
        whole = options.whole
        self.missing = Listing[Stint](options.keep, options.spill)
        self.unseen = Listing[MissingVisit](options.keep, options.spill)
        self.disagreeing = Listing[Disagreement](options.keep, options.spill)
        self.bad = Listing[BadLine](options.keep, options.spill)
        # The whole of queue_log: its period is its first entry to its last, known as
        # the read goes (_period_of_whole); until the first, nothing is within it.
        self.tally = Tally(FOREVER if whole else options.from_s or 0,
                           -FOREVER if whole else options.to_s or 0,
                           self.missing, self.unseen, self.disagreeing,
                           late=[] if whole else None)
        self.fill = Backfill([], [])
        self.backfilled = 0
        self.first_row_s: int | None = None

    async def run(self, source: Source) -> Reconciliation:
        try:
            await self._run(source)
        finally:
            await self.ledger.close()
        return self._result(source)

    async def _run(self, source: Source) -> None:
        add = self.stream.add                 # a month is six million rows: no more per row
        async for batch in source.batches():
            for item in batch:
                if isinstance(item, BadLine):
                    self.bad.append(item)
                elif item.callid not in QUEUE_LEVEL_IDS:
                    if self.o.whole:
                        self._period_of_whole(item)
                    add(item)
            if self.first_row_s is None and self.stream.now_s is not None:
                self.first_row_s = min(i.time_s for i in batch if isinstance(i, Row)
                                       and i.callid not in QUEUE_LEVEL_IDS)
            if self.stream.now_s is not None:
                await self._read_ledger(self.stream.now_s + WINDOW_S)
                await self._settle(self.stream.ready())
                self._retire(self.stream.now_s - self.o.max_stay_s)
            if self.progress is not None:
                self.progress.status(self._status())
        if self.stream.now_s is not None:
            await self._read_ledger(self.stream.now_s + WINDOW_S)
        await self._settle(self.stream.finish())
        self._retire(FOREVER)
        if not self.o.whole:
            # A period that runs on past queue_log's end: its ledger calls are all unseen.
            while await self._read_ledger(FOREVER, one=True):
                self._retire(FOREVER)
        self.tally.judge_late()
        await self._flush()

    def _period_of_whole(self, row: Row) -> None:
        """The whole of queue_log: its period runs from its first entry to its last."""
        if row.event == ENTERQUEUE:
            t = self.tally
            t.from_s, t.to_s = min(t.from_s, row.time_s), max(t.to_s, row.time_s + 1)

    # -- the ledger, read beside queue_log -----------------------------------------

    async def _read_ledger(self, upto_s: int, one: bool = False) -> bool:
        """Read the ledger on until a call entered at or after `upto_s` is in (one batch
        if `one`); whether any was read.  Its stream runs from MAX_STAY_S before the
        period (or queue_log's first row) to the period's end."""
        ledger = self.ledger
        if ledger.stream is None:
            start = self.first_row_s if self.o.whole else self.o.from_s
            if start is None:
                return False
            end = FOREVER if self.o.whole else (self.o.to_s or 0)
            # Of the calls that entered before the period, only those still going on at
            # its start can have a visit or a stint in it.
            ledger.stream = self.store.visit_batches(
                (start - self.o.max_stay_s) * US, end * US, pbx=self.o.pbx,
                going_at_us=None if self.o.whole else (start - GOING_SLACK_S) * US)
        read = False
        while not ledger.done and (ledger.read_to_s is None or ledger.read_to_s < upto_s):
            batch = await ledger.pull()
            if batch is None:
                ledger.done = True
                break
            ledger.add(batch)
            read = True
            if one:
                break
        return read

    async def _settle(self, calls: Iterable[Call]) -> None:
        for call in calls:
            record = self.ledger.calls.pop(call.callid, None)
            if self._outside(call, record):
                continue                  # read only because it might reach the period
            lacking = self.tally.call(call.stints, record)
            if self.o.backfill and lacking:
                self.fill.add(for_call(self.o.pbx, call.stints, call.last_s, record, lacking,
                                       self.o.first_line, self.o.threshold_s))
                if self.fill.count >= BATCH:
                    await self._flush()

    def _outside(self, call: Call, record: CallVisits | None) -> bool:
        """Nothing of the call is in the period: neither a stint's entry (entries are
        in order, and a stint enters with each) nor a visit of the ledger's record."""
        if self.o.whole:
            return False
        first, last = call.entries
        if self.tally.within(first) or self.tally.within(last) or (first < self.tally.from_s
                                                                   and last >= self.tally.to_s):
            return False
        return record is None or not any(self.tally.within(v.entered_us // US)
                                         for v in record.visits)

    async def _flush(self) -> None:
        if self.fill.count:
            await self.store.backfill(self.fill.calls, self.fill.visits)
            self.backfilled += self.fill.count
            self.fill = Backfill([], [])

    def _retire(self, ended_before_s: int) -> None:
        """The ledger's calls that ended before `ended_before_s` and that queue_log never
        claimed: missing in queue_log (unless the stream still holds a call of theirs)."""
        ends = self.ledger.ends
        held: list[tuple[int, str]] = []
        while ends and ends[0][0] < ended_before_s:
            entry = heapq.heappop(ends)
            record = self.ledger.calls.get(entry[1])
            if record is None:
                continue                          # claimed already
            if self.stream.holds(record.uniqueid) and ended_before_s < FOREVER:
                held.append(entry)                # its queue_log call is not out yet
                continue
            del self.ledger.calls[record.uniqueid]
            self.tally.unseen(record, record.visits)
        for entry in held:
            heapq.heappush(ends, entry)

    def _status(self) -> str:
        text = (f"{self.tally.matched:,} matched, {len(self.missing):,} missing in the ledger, "
                f"{len(self.unseen):,} in queue_log")
        return text + (f", {self.backfilled + self.fill.count:,} backfilled"
                       if self.o.backfill else "")

    def _result(self, source: Source) -> Reconciliation:
        from_s, to_s = self.tally.from_s, self.tally.to_s
        if from_s > to_s:
            from_s = to_s = 0            # the whole of a queue_log with no entry
        return Reconciliation(from_s, to_s, self.tally.matched, self.missing, self.unseen,
                              self.disagreeing, self.tally.open, self.bad, self.backfilled,
                              tuple(source.damaged))


async def scan(store: LedgerCalls, source: Source, options: Options,
               progress: Progress | None = None) -> Reconciliation:
    """queue_log from `source` held against the ledger in `store` (see the module)."""
    return await Scan(store, options, progress).run(source)
