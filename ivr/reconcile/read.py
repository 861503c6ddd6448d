"""queue_log read into stints: what Asterisk says of each call's stays in the
queues.  `read_file`, `read_lines` and `read_rows` give a `QueueLog`; the rows
come one at a time from ivr/reconcile/rows.py and are grouped by call as they
come.  Pure but for `read_file` opening the one path it is given.

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
    by_callid: dict[str, list[Row]] = {}
    bad: list[BadLine] = []
    count = 0
    for item in items:
        count += 1
        if isinstance(item, BadLine):
            bad.append(item)
        elif item.callid not in QUEUE_LEVEL_IDS:
            by_callid.setdefault(item.callid, []).append(item)
    by_call: dict[str, tuple[Stint, ...]] = {}
    last_s: dict[str, int] = {}
    for callid, call_rows in by_callid.items():
        stints = _stints(callid, call_rows, overflow_s)
        if stints:              # a call seen only after its entry has nothing to tell
            by_call[callid] = stints
            last_s[callid] = max(r.time_s for r in call_rows)
    # Calls in order of first entry, as a report would list them.
    ordered = dict(sorted(by_call.items(), key=lambda kv: kv[1][0].entered_s))
    return QueueLog(MappingProxyType(ordered), MappingProxyType(last_s), tuple(bad), count)


def _stints(callid: str, rows: list[Row], overflow_s: Mapping[str, int]) -> tuple[Stint, ...]:
    stints: list[Stint] = []
    entry: _Entry | None = None
    for row in rows:
        if row.event == ENTERQUEUE:
            if entry is not None:   # entered again with no end row: that row was lost
                stints.append(_unobserved(callid, entry, len(stints) + 1))
            entry = _Entry(row.queue, row.time_s, row.datum(2))
        elif row.event in END_OUTCOME and entry is not None and entry.queue == row.queue:
            stints.append(_ended(callid, entry, row, len(stints) + 1))
            entry = None
    if entry is not None:
        stints.append(Stint(callid, entry.queue, entry.entered_s, None, None, None,
                            caller=entry.caller, seq=len(stints) + 1))
    moves = [r for r in rows if r.event == IVRMOVE]
    return tuple(_judge_abandon(s, stints, moves, overflow_s) for s in stints)


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
    judged = replace(stint, moved_to=after.queue if after else "",
                     move_reason=_move_reason(stint, moves))
    return _rejudge(judged, overflow_s)


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
    limit = overflow_s.get(stint.queue)
    reached = limit is not None and stint.wait_s is not None and stint.wait_s >= limit
    return replace(stint, outcome=judge.unanswered_exit(stint.move_reason, bool(stint.moved_to),
                                                        reached))
