"""queue_log read into stints: what Asterisk says of each call's stays in the
queues.  `read_file`, `read_lines`, `read_items` and `read_rows` give a whole
`QueueLog`; `CallStream` gives calls one at a time as they complete, for a
queue_log too big to hold (reconcile/scan.py).  The rows come one at a time from
ivr/reconcile/rows.py and are grouped by call as they come.  Pure but for
`read_file` opening the one path it is given.

Mapping
-------
A *stint* is one stay of one call in one queue: its ENTERQUEUE, ended by the
first of these rows of the same callid and queue::

    ENTERQUEUE|url|callerid|position          -> a stint starts
    CONNECT|holdtime|bridged-uniqueid|ringtime -> answered, wait = holdtime,
                                                  member = the row's agent
    ABANDON|position|origposition|waittime     -> abandoned, or a move (below)
    EXITWITHTIMEOUT|position|origposition|waittime -> timeout
    EXITEMPTY|position|origposition|waittime   -> empty
    EXITWITHKEY|key|position|origposition|waittime -> exit_with_key
    WITHDRAW|position|origposition|waittime|info   -> withdrawn

COMPLETECALLER, COMPLETEAGENT and the transfer rows (Asterisk 22 writes
BLINDTRANSFER and ATTENDEDTRANSFER, no longer TRANSFER) come after CONNECT: the
waiting is over by then, they only tell when the call ended.  RINGNOANSWER,
RINGCANCELED, AGENTDUMP and the like are about members and end nothing.  A
join refused (FULL, JOINEMPTY, JOINUNAVAIL) writes no ENTERQUEUE: no stint.

Asterisk writes ABANDON not only for a hang-up but whenever the caller leaves
the queue without an answer by other means, and ivr's moves (the timeout move
first-line -> common, a supervisor's move) are Redirects.  So an ABANDON is
judged against what follows:

* an ``IVRMOVE|reason|to-queue`` row (written by ivr through AMI QueueLog, in
  either order around the ABANDON) for that callid and queue is the authority:
  the outcome is its reason (timeout or withdrawn);
* else, if the same callid enters a queue again, the caller was moved: timeout
  when the waittime reached that queue's overflow threshold, else transferred;
* else the caller hung up: abandoned.

That judgement is ivr/calls/judge.py's `unanswered_exit`, the tracker's own rule.

A stint with no end row yet is *open* (still waiting).  A stint followed by
another ENTERQUEUE of the same call without an end row in between lost its end
row: its outcome is UNOBSERVED, as for a visit ivr did not see end.  Waits are
Asterisk's whole seconds; when an exit row lacks its waittime (older Asterisk)
the difference of the row times stands in.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import timezone, tzinfo
from itertools import chain
from os import PathLike
from types import MappingProxyType

from ivr.calls import judge
from ivr.calls.records import UNOBSERVED
from ivr.reconcile.rows import (ABANDON, CONNECT, END_OUTCOME, ENTERQUEUE, IVRMOVE,
                                QUEUE_LEVEL_IDS, BadLine, Row, parse_lines, parse_table)

MOVE_SLACK_S = 5               # an IVRMOVE row may land a little after the ABANDON


# -- what is read ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Stint:
    """One stay of one call in one queue, as queue_log tells it."""

    callid: str
    queue: str
    entered_s: int
    left_s: int | None           # the end row's time; None while open or when unobserved
    outcome: str | None          # judge.OUTCOMES, UNOBSERVED; None while open
    wait_s: int | None           # Asterisk's holdtime or waittime
    member: str = ""             # who answered, for an answered stint
    caller: str = ""             # ENTERQUEUE's callerid
    seq: int = 1                 # the n-th stint of this call, from 1
    end: str = ""                # the event that ended it ("" while open or when unobserved)
    moved_to: str = ""           # the queue entered next, when an ABANDON was followed by one
    move_reason: str = ""        # the IVRMOVE reason that judged an ABANDON

    @property
    def is_open(self) -> bool:
        return self.outcome is None

    def to_json(self) -> dict[str, object]:
        return {"uniqueid": self.callid, "queue": self.queue, "seq": self.seq,
                "entered_s": self.entered_s, "left_s": self.left_s,
                "outcome": self.outcome, "wait_s": self.wait_s,
                "member": self.member, "caller": self.caller}


@dataclass(frozen=True, slots=True)
class QueueLog:
    """Everything read: the stints of each call in order, and what was not read."""

    by_call: Mapping[str, tuple[Stint, ...]]   # callid -> stints, calls in order of first entry
    last_s: Mapping[str, int]                  # callid -> its last row's time (the call's end)
    bad_lines: tuple[BadLine, ...] = ()
    rows: int = 0                              # rows seen, bad and skipped ones included

    def stints(self) -> Iterator[Stint]:
        for stints in self.by_call.values():
            yield from stints

    @property
    def open(self) -> tuple[Stint, ...]:
        """The stints still waiting: no end row yet."""
        return tuple(s for s in self.stints() if s.is_open)

    def stints_between(self, from_s: int, to_s: int) -> list[Stint]:
        """The stints that entered in [from_s, to_s), open ones included."""
        return [s for s in self.stints() if from_s <= s.entered_s < to_s]

    def judged(self, overflow_s: Mapping[str, int]) -> QueueLog:
        """The same log with its ABANDONs judged against other overflow thresholds."""
        by_call = {uid: tuple(_rejudge(s, overflow_s) for s in stints)
                   for uid, stints in self.by_call.items()}
        return replace(self, by_call=MappingProxyType(by_call))


# -- reading -------------------------------------------------------------------

def read_lines(lines: Iterable[str], overflow_s: Mapping[str, int] | None = None) -> QueueLog:
    """Read queue_log file lines.  `overflow_s` is each queue's move threshold in seconds."""
    return _build(parse_lines(lines), overflow_s or {})


def read_file(path: str | PathLike[str], overflow_s: Mapping[str, int] | None = None) -> QueueLog:
    """Read a queue_log file.  Undecodable bytes become U+FFFD rather than stop the read."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        return read_lines(f, overflow_s)


def read_items(items: Iterable[Row | BadLine],
               overflow_s: Mapping[str, int] | None = None) -> QueueLog:
    """Read rows already parsed (reconcile/files.py's Lines: several files, .gz, a
    period)."""
    return _build(items, overflow_s or {})


def read_rows(rows: Iterable[object],
              overflow_s: Mapping[str, int] | None = None,
              naive_tz: tzinfo = timezone.utc) -> QueueLog:
    """Read realtime queue_log rows: tuples in COLUMNS order, or mappings (or DB
    records with keys()) by column name.

    A timestamp without a zone is taken in `naive_tz` (Asterisk writes local time
    unless queue_log_realtime_use_gmt is set).  Rows are put in time order (stably)
    because a SELECT without ORDER BY promises none; their sub-second times, when
    the column has them, keep an ABANDON before the ENTERQUEUE that follows it.
    This one needs the whole table in hand, to sort it.
    """
    keyed: list[tuple[int, Row]] = []
    bad: list[BadLine] = []
    for item in parse_table(rows, naive_tz):
        if isinstance(item, BadLine):
            bad.append(item)
        else:
            keyed.append(item)
    keyed.sort(key=lambda pair: pair[0])
    return _build(chain(bad, (r for _, r in keyed)), overflow_s or {})


# -- building: rows to stints -------------------------------------------------

@dataclass(slots=True)
class _Entry:
    """The stint being read: entered, no end row yet."""

    queue: str
    entered_s: int
    caller: str


def _build(items: Iterable[Row | BadLine], overflow_s: Mapping[str, int]) -> QueueLog:
    """The stints of a stream of rows, grouped by call as they come."""
    stream = CallStream(overflow_s)
    bad: list[BadLine] = []
    count = 0
    for item in items:
        count += 1
        if isinstance(item, BadLine):
            bad.append(item)
        elif item.callid not in QUEUE_LEVEL_IDS:
            stream.add(item)
    by_call: dict[str, tuple[Stint, ...]] = {}
    last_s: dict[str, int] = {}
    for call in stream.finish():       # in order of first entry, as a report lists them
        by_call[call.callid] = call.stints
        last_s[call.callid] = call.last_s
    return QueueLog(MappingProxyType(by_call), MappingProxyType(last_s), tuple(bad), count)


# -- streaming: rows in, whole calls out ---------------------------------------------

class Call:
    """One call as queue_log tells it, once no more of its rows are expected.  Its
    stints are made when first asked for: a scan passes over a call wholly outside
    its period by its entries alone."""

    __slots__ = ("callid", "last_s", "entries", "_rows", "_overflow_s", "_stints")

    def __init__(self, callid: str, rows: list[Row], last_s: int, entries: tuple[int, int],
                 overflow_s: Mapping[str, int]) -> None:
        self.callid = callid
        self.last_s = last_s         # its last row's time: when the call ended
        self.entries = entries       # when it entered a queue, first and last
        self._rows, self._overflow_s = rows, overflow_s
        self._stints: tuple[Stint, ...] | None = None

    @property
    def stints(self) -> tuple[Stint, ...]:
        if self._stints is None:
            self._stints = _stints(self.callid, self._rows, self._overflow_s)
        return self._stints


@dataclass(slots=True)
class _Reading:
    """A call not out yet: the rows its stints are made of, when it was last heard of."""

    rows: list[Row]
    last_s: int
    order: int                   # when it was first seen: the tie-break of equal entries
    entered: bool = False        # an ENTERQUEUE came: it has stints, and a place in line
    first_entry_s: int = 0       # its first ENTERQUEUE's time, and its last
    last_entry_s: int = 0


_KEPT = frozenset((ENTERQUEUE, IVRMOVE, *END_OUTCOME))


class CallStream:
    """Rows in (a call's in the order written), whole calls out, in order of first entry.

    A call is complete once no row of it has come for `idle_s` of queue_log's own
    time (the newest row's); with idle_s None, only at finish().  It is out once it
    is complete and every call that entered before it is out, so calls come out in
    the order a whole read lists them.  Of a call not out yet only the rows its
    stints are made of are kept (ENTERQUEUE, the end rows, IVRMOVE); other rows just
    say it is still going on.  A row of a call already out starts a new call: a call
    quiet for longer than idle_s is read as two (reconcile/scan.py: MAX_STAY_S).
    """

    def __init__(self, overflow_s: Mapping[str, int], idle_s: int | None = None) -> None:
        self.overflow_s = overflow_s
        self.idle_s = idle_s
        self.now_s: int | None = None            # the newest row's time
        self._active: OrderedDict[str, _Reading] = OrderedDict()   # least recently heard first
        self._complete: dict[str, _Reading] = {}                    # waiting for earlier calls
        self._line: list[tuple[int, int, str]] = []                 # (first entry, order, callid)
        self._seen = 0

    def __len__(self) -> int:
        """Calls not out yet."""
        return len(self._active) + len(self._complete)

    def holds(self, callid: str) -> bool:
        """Whether a call of that callid is being read, not out yet."""
        return callid in self._active or callid in self._complete

    def add(self, row: Row) -> None:
        """A caller's row (not a queue-level one)."""
        uid = row.callid
        call = self._active.get(uid)
        if call is not None:
            self._active.move_to_end(uid)
        else:
            call = self._complete.pop(uid, None)    # quiet for a while, and back
            if call is None:
                self._seen += 1
                call = _Reading([], row.time_s, self._seen)
            self._active[uid] = call
        if row.time_s > call.last_s:
            call.last_s = row.time_s
        if self.now_s is None or row.time_s > self.now_s:
            self.now_s = row.time_s
        if row.event in _KEPT:
            call.rows.append(row)
            if row.event == ENTERQUEUE:
                call.last_entry_s = row.time_s
                if not call.entered:
                    call.entered = True
                    call.first_entry_s = row.time_s
                    heapq.heappush(self._line, (row.time_s, call.order, uid))

    def ready(self) -> Iterator[Call]:
        """The calls out now: complete, and every call that entered before them out."""
        if self.idle_s is not None and self.now_s is not None:
            quiet = self.now_s - self.idle_s
            while self._active:
                uid, call = next(iter(self._active.items()))
                if call.last_s >= quiet:
                    break
                self._complete_one(uid)
        return self._out()

    def finish(self) -> Iterator[Call]:
        """Every call left: queue_log has no more rows."""
        while self._active:
            self._complete_one(next(iter(self._active)))
        return self._out()

    def _complete_one(self, uid: str) -> None:
        call = self._active.pop(uid)
        if call.entered:                 # one that never entered a queue has nothing to tell
            self._complete[uid] = call

    def _out(self) -> Iterator[Call]:
        while self._line and self._line[0][2] in self._complete:
            uid = heapq.heappop(self._line)[2]
            call = self._complete.pop(uid)
            yield Call(uid, call.rows, call.last_s, (call.first_entry_s, call.last_entry_s),
                       self.overflow_s)


def _stints(callid: str, rows: list[Row], overflow_s: Mapping[str, int]) -> tuple[Stint, ...]:
    stints: list[Stint] = []
    entry: _Entry | None = None
    abandoned = False
    for row in rows:
        if row.event == ENTERQUEUE:
            if entry is not None:   # entered again with no end row: that row was lost
                stints.append(_unobserved(callid, entry, len(stints) + 1))
            entry = _Entry(row.queue, row.time_s, row.datum(2))
        elif row.event in END_OUTCOME and entry is not None and entry.queue == row.queue:
            stints.append(_ended(callid, entry, row, len(stints) + 1))
            abandoned = abandoned or row.event == ABANDON
            entry = None
    if entry is not None:
        stints.append(Stint(callid, entry.queue, entry.entered_s, None, None, None,
                            caller=entry.caller, seq=len(stints) + 1))
    if not abandoned:
        return tuple(stints)        # only an ABANDON is judged by what follows it
    moves = [r for r in rows if r.event == IVRMOVE]
    return tuple([_judge_abandon(s, stints, moves, overflow_s) for s in stints])


def _ended(callid: str, entry: _Entry, row: Row, seq: int) -> Stint:
    wait = row.wait_s if row.wait_s is not None else max(0, row.time_s - entry.entered_s)
    member = row.agent if row.event == CONNECT else ""
    return Stint(callid, entry.queue, entry.entered_s, row.time_s, END_OUTCOME[row.event],
                 wait, member, entry.caller, seq, end=row.event)


def _unobserved(callid: str, entry: _Entry, seq: int) -> Stint:
    return Stint(callid, entry.queue, entry.entered_s, None, UNOBSERVED, None,
                 caller=entry.caller, seq=seq)


def _judge_abandon(stint: Stint, stints: list[Stint], moves: list[Row],
                   overflow_s: Mapping[str, int]) -> Stint:
    """An ABANDON with what followed it: the IVRMOVE reason, the next queue, its outcome."""
    if stint.end != ABANDON:
        return stint
    after = stints[stint.seq] if stint.seq < len(stints) else None
    moved_to, reason = (after.queue if after else ""), _move_reason(stint, moves)
    return replace(stint, moved_to=moved_to, move_reason=reason,
                   outcome=_abandoned(stint.queue, stint.wait_s, reason, moved_to, overflow_s))


def _move_reason(stint: Stint, moves: list[Row]) -> str:
    """The reason of ivr's IVRMOVE row for this stint: same queue, written while it
    waited or just after it left.  Each row is used once (a call can be moved out of
    the same queue twice), so it is taken out of `moves`."""
    assert stint.left_s is not None
    for row in moves:
        if row.queue == stint.queue and stint.entered_s <= row.time_s <= stint.left_s + MOVE_SLACK_S:
            moves.remove(row)
            return row.datum(1)
    return ""


def _rejudge(stint: Stint, overflow_s: Mapping[str, int]) -> Stint:
    if stint.end != ABANDON:
        return stint
    return replace(stint, outcome=_abandoned(stint.queue, stint.wait_s, stint.move_reason,
                                             stint.moved_to, overflow_s))


def _abandoned(queue: str, wait_s: int | None, reason: str, moved_to: str,
               overflow_s: Mapping[str, int]) -> str:
    """What an ABANDON was: judge.unanswered_exit with the queue's move threshold."""
    limit = overflow_s.get(queue)
    reached = limit is not None and wait_s is not None and wait_s >= limit
    return judge.unanswered_exit(reason, bool(moved_to), reached)
