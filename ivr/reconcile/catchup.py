"""The start-up backfill: what ivr missed while it was down comes back from queue_log.

Theory of operation
-------------------
A SIGKILL loses the writer's last batch, and every call that ends while ivr is
down never reaches the ledger.  Asterisk's queue_log saw them all.  With a
queue_log source configured (`ledger.queue_log`, a file, or
`ledger.queue_log_db` + `ledger.queue_log_table`, the realtime table) ivr
closes that gap itself, for one PBX (`ledger.queue_log_pbx`, else the first):

1. It waits until that PBX is logged in and resynced (only then can it tell
   which calls are still going on) and the spool a crash left is written (its
   records are calls the last ivr recorded live).
2. The gap starts at the ledger's newest record of the PBX (the newest
   `ended_us`), less MARGIN_S for the calls of the lost batch that ended just
   before it, and runs to now.  An empty ledger has no gap to measure: nothing
   is done (``skipped``).
3. The calls of the window are those of queue_log whose last row is in the
   gap, those still in progress now, and those absent from the ledger whose
   last row is within LOOKBACK_S before the gap: a call going on at the kill
   whose queue_log rows ended before it (it left its queue for the rest of
   the dialplan, and hung up while ivr was down).  compare.reconcile() holds
   them against the ledger and backfill.backfill() builds what the ledger
   lacks (whole calls, or the stints missed of calls it has): this module
   restates none of their rules, it only chooses the calls and the moment.
4. A call *in progress* is left for later, never backfilled: a channel of it
   is up on the PBX (CoreShowChannels; a caller talking to an agent is not in
   ivr's tracker after a restart), ivr's tracker holds it, or queue_log shows
   it still waiting (see 6).  So is a call ivr ended live whose record is not in the
   ledger yet (the writer's batch is on its way): backfilled now, it would be a
   second row beside the live one.
5. While calls of the window are left, the same check runs again every
   `interval` seconds over just those calls (queue_log read afresh), until none
   is in progress; after GIVE_UP_S it stops with a WARNING that names how many
   are left, for `ivr ledger reconcile --backfill` by hand.  A call that was in
   progress at the restart thus gets, once it ends, the stints that ran while
   ivr was down: as visits added to its live record, or whole when ivr never
   had it (a talking caller is not recovered by the resync).
6. A stint queue_log never ends (Asterisk was restarted or crashed while the
   caller waited) would hold the backfill for GIVE_UP_S.  When a call of the
   window shows an open stint but no channel and no journey, queue_log is read
   again: app_queue writes a stint's end row before the caller's channel goes,
   so one still open then was never ended.  Such a call is *unended*: no longer
   waited for, a WARNING names it and /readyz counts it.  Its open stint is not
   backfilled, as nothing says how it ended (nor, then, is a call the ledger
   lacks; a call it has still gets its other missed stints).

Nothing is doubled: reconcile pairs every stint the ledger already has, and the
store inserts with ON CONFLICT DO NOTHING, so a second start writes nothing.  A
queue_log that cannot be read is a WARNING (``failed`` in /readyz) and ivr goes
on as before; so is a ledger that cannot be read.  Each pass is one INFO line:
the window, the stints read, the calls and visits written, the calls left.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Awaitable, Callable, Mapping

from ivr.calls.facts import Fact, JourneyEnded
from ivr.calls.judge import FIRST_LINE
from ivr.ledger.db import LedgerError
from ivr.ledger.store import Ledger, Store
from ivr.reconcile.backfill import backfill
from ivr.reconcile.compare import reconcile
from ivr.reconcile.files import Lines, NotQueueLog, open_files
from ivr.reconcile.read import QueueLog, read_items, read_rows
from ivr.reconcile.scan import MAX_STAY_S

if TYPE_CHECKING:
    from ivr.app import Services
    from ivr.pbx.session import Pbx
    from ivr.config import Config

log = logging.getLogger(__name__)
US = 1_000_000
MARGIN_S = 60            # before the newest record: the lost batch's calls ended about then
LOOKBACK_S = 3600        # a call going on at the kill may have left its queues this long before
LEDGER_SLACK_S = 3600    # a ledger call may have entered a little before its first stint
INTERVAL_S = 30.0        # between passes while calls of the window are in progress
GIVE_UP_S = 4 * 3600     # a call still going after this is left to a backfill by hand
WAIT_S = 1.0             # between looks at a PBX not ready yet
FOREVER_S = 2**53        # reconcile's window end when every stint of the chosen calls counts


class NotYet(Exception):
    """The PBX cannot say yet which calls are in progress (not logged in, resyncing, or
    the spool a crash left not written yet)."""


@dataclass(frozen=True)
class Source:
    """Where queue_log is read: a file, or a realtime table in a database."""

    file: Path | None = None
    db: str = field(default="", repr=False)
    table: str = "queue_log"

    @property
    def name(self) -> str:
        return str(self.file) if self.file is not None else f"table {self.table}"


def source_of(config: Config) -> Source | None:
    """The configured queue_log source, or None without one."""
    ledger = config.ledger
    if ledger.queue_log:
        return Source(file=Path(ledger.queue_log))
    if ledger.queue_log_db:
        return Source(db=ledger.queue_log_db, table=ledger.queue_log_table)
    return None


async def read_queue_log(source: Source, overflow: Mapping[str, int],
                         since_s: int | None = None) -> QueueLog:
    """queue_log from its file or table, from `since_s` on (None: all of it), found by
    binary search in the file and filtered by the database in the table (files.py,
    realtime.py).  Raises LedgerError when it cannot be read."""
    if source.file is not None:
        return await asyncio.to_thread(_read_file, source.file, overflow, since_s)
    db = Store(source.db, read_only=True)     # Asterisk's table: ivr only reads it
    try:
        rows = await db.rows(source.table, since_s)
    finally:
        await db.close()
    return read_rows(rows, overflow)


def _read_file(path: Path, overflow: Mapping[str, int], since_s: int | None) -> QueueLog:
    try:
        lines = Lines(open_files([path]), since_s)
        found = read_items(lines, overflow)
    except NotQueueLog as exc:
        raise LedgerError(str(exc)) from None
    except OSError as exc:
        raise LedgerError(f"cannot read queue_log {path}: {exc.strerror or exc}") from None
    for damage in lines.damaged:
        log.warning("queue_log %s", damage)
    return found


def overflow_of(config: Config) -> dict[str, int]:
    """Each queue's move threshold in whole seconds, as queue_log judges ABANDONs with."""
    return {q.name: round(q.overflow_after_seconds) for q in config.queues
            if q.overflow_after_seconds is not None}


@dataclass(frozen=True)
class Pass:
    """What one pass did."""

    stints: int          # stints read of the calls it settled
    calls: int           # whole calls written
    written: int         # stints written: the visits of those calls and visits added
    left: int            # calls of the window still in progress


@dataclass
class StartupBackfill:
    """The start-up backfill of one PBX (see the module's docstring)."""

    ledger: Ledger
    source: Source
    pbx: str
    in_progress: Callable[[], Awaitable[set[str]]]   # uniqueids going on now; NotYet
    overflow: Mapping[str, int] = field(default_factory=dict)
    first_line: str = FIRST_LINE
    threshold_s: int = 30
    clock: Callable[[], float] = time.time
    interval: float = INTERVAL_S
    margin_s: int = MARGIN_S
    lookback_s: int = LOOKBACK_S
    wait: float = WAIT_S
    state: str = "waiting"       # waiting, catching_up, done, skipped, failed, gave_up
    from_s: int | None = None
    to_s: int | None = None
    stints: int = 0
    calls: int = 0
    written: int = 0
    error: str = ""
    _left: set[str] = field(default_factory=set)
    _ended_live: set[str] = field(default_factory=set)
    _unended: set[str] = field(default_factory=set)

    @property
    def over(self) -> bool:
        return self.state not in ("waiting", "catching_up")

    def on_fact(self, fact: Fact) -> None:
        """Calls ivr ends live are never backfilled whole (step 4); kept only while
        the backfill lasts, not for the life of ivr."""
        if isinstance(fact, JourneyEnded) and fact.record.pbx == self.pbx and not self.over:
            self._ended_live.add(fact.uniqueid)

    def to_json(self) -> dict[str, object]:
        return {"state": self.state, "pbx": self.pbx, "from": _iso(self.from_s),
                "to": _iso(self.to_s), "stints": self.stints, "calls": self.calls,
                "written": self.written, "in_progress": len(self._left),
                "unended": len(self._unended),
                "error": self.error or None}

    async def run(self) -> None:
        """Wait for the PBX, then pass until no call of the window is in progress."""
        started: float | None = None
        while True:
            try:
                await self.in_progress()         # a cheap look first: is the PBX there?
                again = await self.step()
            except NotYet:
                await asyncio.sleep(self.wait)   # logging in, resyncing, spool draining: soon
                continue
            if not again:
                return
            started = self.clock() if started is None else started
            if self.clock() - started > GIVE_UP_S:
                self.state = "gave_up"
                self._ended_live.clear()
                log.warning("backfill from queue_log (pbx %s): %d call(s) still in progress "
                            "after %.0f h; run `ivr ledger reconcile --backfill` once they end",
                            self.pbx, len(self._left), GIVE_UP_S / 3600)
                return
            await asyncio.sleep(self.interval)

    async def step(self) -> bool:
        """One pass; whether another is needed.  NotYet when the PBX cannot say which
        calls are in progress: nothing was written, and the pass is to be run again."""
        try:
            again = await self._step()
        except NotYet:
            raise
        except LedgerError as exc:
            self._failed(str(exc))
            return False
        except Exception as exc:    # a bug here must not take ivr down with it
            log.exception("backfill from queue_log (pbx %s) failed", self.pbx)
            self._failed(f"{type(exc).__name__}: {exc}")
            return False
        if not again:
            self._ended_live.clear()
        return again

    def _failed(self, why: str) -> None:
        self.state, self.error = "failed", why
        self._ended_live.clear()
        log.warning("backfill from queue_log (pbx %s) not done: %s; ivr goes on without it "
                    "(`ivr ledger reconcile --backfill` does it by hand)", self.pbx, why)

    async def _step(self) -> bool:
        first = self.from_s is None
        now_s = int(self.clock())
        from_s = self.from_s
        if from_s is None:
            newest = await self.ledger.run(Store.newest_us, self.pbx)
            if newest is None:
                self.state = "skipped"
                log.info("backfill from queue_log (pbx %s): the ledger has no call of this "
                         "PBX yet, so no gap to fill", self.pbx)
                return False
            from_s = min(newest // US, now_s) - self.margin_s
        # A call of the gap ended at most lookback_s before it, and began at most
        # MAX_STAY_S before that: queue_log is read from there on, not from its top.
        since = from_s - self.lookback_s - MAX_STAY_S
        ql = await read_queue_log(self.source, self.overflow, since)
        # Asked after the read: a call of what was read is then either going on, or
        # over and (if ivr followed it) among the calls it ended live.
        going = await self.in_progress()
        if first and ql.bad_lines:
            log.warning("queue_log %s: %d line(s) not read (the first: line %d, %s)",
                        self.source.name, len(ql.bad_lines), ql.bad_lines[0].line,
                        ql.bad_lines[0].reason)
        self.from_s = from_s
        if first:
            lookback = from_s - self.lookback_s
            chosen = {uid for uid, last in ql.last_s.items() if last >= lookback or uid in going}
        else:
            chosen = self._left & set(ql.by_call)
        suspects = {uid for uid in chosen - going if any(s.is_open for s in ql.by_call[uid])}
        if suspects:
            # Read again now the PBX was asked: app_queue writes a stint's end row before
            # the caller's channel goes, so one still open here was never ended (step 6).
            ql = await read_queue_log(self.source, self.overflow, since)
            chosen &= set(ql.by_call)    # rotated in between: what it lost is not there
            self._unended |= {uid for uid in suspects if uid in ql.by_call
                              and any(s.is_open for s in ql.by_call[uid])}
        done = await self._settle(ql, chosen, going, now_s, first)
        self.to_s = now_s
        self.stints += done.stints
        self.calls += done.calls
        self.written += done.written
        self.state = "catching_up" if done.left else "done"
        log.info("backfill from queue_log (pbx %s): %s .. %s, %d stint(s) read, %d call(s) "
                 "and %d visit(s) written%s", self.pbx, _iso(from_s), _iso(now_s),
                 done.stints, done.calls, done.written,
                 f", {done.left} call(s) in progress, looked at again every "
                 f"{self.interval:.0f} s" if done.left else "")
        return bool(done.left)

    def _of_gap(self, ql: QueueLog, uid: str, going: set[str], have: set[str]) -> bool:
        """A call of the gap (step 3): its last row in it, going on now, or, its last row
        within lookback_s before it, absent from the ledger (it was going on at the kill)."""
        assert self.from_s is not None
        return ql.last_s[uid] >= self.from_s or uid in going or uid not in have

    async def _settle(self, ql: QueueLog, chosen: set[str], going: set[str],
                      now_s: int, first: bool) -> Pass:
        if not chosen:
            self._left = set()
            return Pass(0, 0, 0, 0)
        entered = min(s.entered_s for uid in chosen for s in ql.by_call[uid])
        calls = await self.ledger.run(Store.calls, (entered - LEDGER_SLACK_S) * US, (now_s + 1) * US,
                                        pbx=self.pbx)
        have = {c.uniqueid for c in calls}
        if first:
            chosen = {uid for uid in chosen if self._of_gap(ql, uid, going, have)}
        self._left = {uid for uid in chosen
                      if uid in going or (uid not in self._unended
                                          and any(s.is_open for s in ql.by_call[uid]))
                      or (uid in self._ended_live and uid not in have)}
        for uid in sorted(self._unended & chosen - self._left):
            stint = next(s for s in ql.by_call[uid] if s.is_open)
            log.warning("call %s: queue_log never ended its stay in %s (entered %s) and no "
                        "channel of it is up: Asterisk lost it (a restart?); that stay "
                        "is not backfilled, as nothing says how it ended", uid, stint.queue,
                        _iso(stint.entered_s))
        settled = chosen - self._left
        part = replace(ql, by_call={uid: s for uid, s in ql.by_call.items() if uid in settled},
                       bad_lines=())
        result = reconcile(part, calls, 0, FOREVER_S, self.overflow, self.pbx)
        fill = backfill(result, part, calls, self.pbx, self.first_line, self.threshold_s)
        if fill.count:
            await self.ledger.run(Store.backfill, fill.calls, fill.visits)
            for c in fill.calls:
                log.info("call %s: backfilled from queue_log (%s, %d visit(s))",
                         c.uniqueid, c.outcome, len(c.visits))
            for _, uid, v in fill.visits:
                log.info("call %s: visit %d to %s backfilled from queue_log (%s)",
                         uid, v.seq, v.queue, v.outcome)
        stints = sum(len(part.by_call[uid]) for uid in settled)
        return Pass(stints, len(fill.calls), fill.count, len(self._left))


def _iso(epoch_s: int | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, timezone.utc).isoformat().replace("+00:00", "Z")


# -- wiring ---------------------------------------------------------------------

def for_app(app: Services) -> StartupBackfill | None:
    """The app's start-up backfill, listening to its facts from now on; None without a
    queue_log source.  Called before the AMI sessions start, so no ended call is missed."""
    source = source_of(app.config)
    if source is None:
        return None
    pbx = app.pbxs.get(app.config.ledger.queue_log_pbx) or app.first
    first = app.store.first_line
    threshold = next((q.sla_seconds for q in app.config.queues if q.name == first), 30.0)
    startup = StartupBackfill(app.store, source, pbx.name, lambda: _going_on(pbx, app),
                              overflow_of(app.config), first, round(threshold), app.clock)
    app.listeners.append(startup.on_fact)
    return startup


async def _going_on(pbx: Pbx, app: Services) -> set[str]:
    """The uniqueids of every channel up on the PBX, and the calls its tracker holds.
    NotYet until the PBX is resynced and the spool a crash left is written: its
    records are calls the last ivr recorded live, to be found in the ledger."""
    from ivr.ami.errors import AmiError
    if not pbx.ready or app.ledger.spool.count:
        raise NotYet
    try:
        channels = await pbx.ami.action_list("CoreShowChannels")
    except (AmiError, TimeoutError) as exc:
        raise NotYet from exc
    up = {m.get("Uniqueid") or "" for m in channels if m.event == "CoreShowChannel"}
    return (up - {""}) | set(pbx.tracker.journeys)
