"""Asterisk's own account of the queues (queue_log), read and held against the ledger.

The ledger is what ivr saw over AMI; queue_log is what app_queue wrote.  This
module reads the second, checks the first against it (`reconcile`) and builds
ledger records for what ivr missed (`backfill`).  It is pure: no asyncio, no
database, and no I/O but `read_file` opening the one path it is given.

Input
-----
The file has one row a line, ``epoch|callid|queue|agent|event|data1|data2|...``
(epoch in whole seconds, callid the caller channel's Uniqueid).  The realtime
table (contrib/realtime) has the same columns as ``time, callid, queuename,
agent, event, data1..data5``, `time` being a timestamp (or epoch text);
`read_rows` takes those rows as tuples in that order or as mappings by name.
Rows whose callid is NONE (or REALTIME) are about the queue, not a caller
(QUEUESTART, ADDMEMBER, PAUSE...): they are counted and skipped.  A row that
does not parse is a `BadLine` (number, text, reason); the rest is still read.

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

COMPLETECALLER, COMPLETEAGENT and the TRANSFER rows come after CONNECT: the
waiting is over by then, they only tell when the call ended.  RINGNOANSWER,
RINGCANCELED, AGENTDUMP and the like are about members and end nothing.

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

A stint with no end row yet is *open* (still waiting).  A stint followed by
another ENTERQUEUE of the same call without an end row in between lost its end
row: its outcome is UNOBSERVED, as for a visit ivr did not see end.  Waits are
Asterisk's whole seconds; when an exit row lacks its waittime (older Asterisk)
the difference of the row times stands in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from os import PathLike
from types import MappingProxyType

from ivr.calls.journeys import EXIT_WITH_KEY
from ivr.calls.records import FIRST_LINE
from ivr.calls.records import QUEUE_LOG, SECONDS, UNOBSERVED, CallRecord, VisitRecord

US = 1_000_000                 # microseconds in a second
TEXT_LIMIT = 120               # how much of a bad line is kept for the report
MOVE_SLACK_S = 5               # an IVRMOVE row may land a little after the ABANDON
WAIT_TOLERANCE_S = 1.0         # queue_log waits are whole seconds, the ledger's ms
QUEUE_LEVEL_IDS = ("NONE", "REALTIME")
MOVE_REASONS = ("timeout", "withdrawn")   # what the tracker accepts in IVR_MOVE
COLUMNS = ("time", "callid", "queuename", "agent", "event",
           "data1", "data2", "data3", "data4", "data5")

ENTERQUEUE, CONNECT, ABANDON, IVRMOVE = "ENTERQUEUE", "CONNECT", "ABANDON", "IVRMOVE"
# The rows that end a stint, and which data field holds its wait (1-based).
_END_OUTCOME = {
    CONNECT: "answered", ABANDON: "abandoned", "EXITWITHTIMEOUT": "timeout",
    "EXITEMPTY": "empty", "EXITWITHKEY": EXIT_WITH_KEY, "WITHDRAW": "withdrawn",
}
_WAIT_FIELD = {CONNECT: 1, ABANDON: 3, "EXITWITHTIMEOUT": 3, "EXITEMPTY": 3,
               "EXITWITHKEY": 4, "WITHDRAW": 3}
_WHOLE = re.compile(r"\d+")
_EPOCH = re.compile(r"\d+(?:\.\d*)?")
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# -- what is read ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BadLine:
    """A line (or table row) that was not read, and why."""

    line: int                    # 1-based line number, or row number for read_rows
    text: str                    # the line, truncated to TEXT_LIMIT characters
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "text": self.text, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Stint:
    """One stay of one call in one queue, as queue_log tells it."""

    callid: str
    queue: str
    entered_s: int
    left_s: int | None           # the end row's time; None while open or when unobserved
    outcome: str | None          # journeys.OUTCOMES, UNOBSERVED; None while open
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


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    time_s: int
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]
    wait_s: int | None = None    # the end row's holdtime or waittime, when it has one

    def datum(self, n: int) -> str:
        """data<n>, 1-based, "" when the row has fewer fields."""
        return self.data[n - 1] if len(self.data) >= n else ""


class _Bad(ValueError):
    """A reason a row cannot be read; never leaves this module."""


# -- reading: text and rows to _Row -------------------------------------------

def read_lines(lines: Iterable[str], overflow_s: Mapping[str, int] | None = None) -> QueueLog:
    """Read queue_log file lines.  `overflow_s` is each queue's move threshold in seconds."""
    parsed: list[_Row] = []
    bad: list[BadLine] = []
    count = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue            # a blank line says nothing; not worth a report
        count += 1
        try:
            parsed.append(_parse_fields(number, line.split("|")))
        except _Bad as exc:
            bad.append(BadLine(number, line[:TEXT_LIMIT], str(exc)))
    return _build(parsed, bad, count, overflow_s or {})


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
    """
    keyed: list[tuple[int, _Row]] = []
    bad: list[BadLine] = []
    count = 0
    for number, row in enumerate(rows, start=1):
        count += 1
        try:
            fields = _columns(row)
            time_us = _time_us(fields[0], naive_tz)
            keyed.append((time_us, _parse_fields(number, [str(time_us // US), *fields[1:]])))
        except _Bad as exc:
            bad.append(BadLine(number, repr(row)[:TEXT_LIMIT], str(exc)))
    keyed.sort(key=lambda pair: pair[0])
    return _build([r for _, r in keyed], bad, count, overflow_s or {})


def _parse_fields(number: int, fields: Sequence[str]) -> _Row:
    if len(fields) < 5:
        raise _Bad(f"too few fields ({len(fields)}, need at least 5)")
    stamp, callid, queue, agent, event = (f.strip() for f in fields[:5])
    if not _WHOLE.fullmatch(stamp):
        raise _Bad(f"time {stamp[:20]!r} is not whole epoch seconds")
    if not callid:
        raise _Bad("no callid")
    if not event:
        raise _Bad("no event")
    row = _Row(number, int(stamp), callid, queue, agent, event.upper(),
               tuple(f.strip() for f in fields[5:]))
    if row.callid in QUEUE_LEVEL_IDS:
        return row
    return _checked(row)


def _checked(row: _Row) -> _Row:
    """The caller row with what its event needs checked, and its wait taken out."""
    if row.event in (ENTERQUEUE, *_END_OUTCOME, IVRMOVE) and not row.queue:
        raise _Bad(f"{row.event} without a queue")
    if row.event == IVRMOVE and row.datum(1) not in MOVE_REASONS:
        raise _Bad(f"IVRMOVE reason {row.datum(1)[:20]!r} is not one of {', '.join(MOVE_REASONS)}")
    index = _WAIT_FIELD.get(row.event)
    if index is None:
        return row
    text = row.datum(index)
    if not text and row.event != CONNECT:
        return row              # an older Asterisk wrote no waittime: row times stand in
    if not _WHOLE.fullmatch(text):
        name = "holdtime" if row.event == CONNECT else "waittime"
        raise _Bad(f"{row.event} {name} {text[:20]!r} is not whole seconds")
    return replace(row, wait_s=int(text))


def _columns(row: object) -> list[str]:
    """A table row as its ten columns, time first (kept as it came, for _time_us)."""
    named = _by_name(row)
    if named is not None:
        if named.get("time") is None:
            raise _Bad("no time column")
        values = [named.get(c) for c in COLUMNS]
        if "data1" not in named and isinstance(named.get("data"), str):
            # the old single `data` column holds the fields joined with "|"
            values[5:] = str(named["data"]).split("|")
        return [_time_text(values[0]), *(_text(v) for v in values[1:])]
    if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
        raise _Bad("not a row (a tuple or a mapping)")
    if len(row) < 5:
        raise _Bad(f"too few columns ({len(row)}, need at least 5)")
    return [_time_text(row[0]), *(_text(v) for v in row[1:len(COLUMNS)])]


def _by_name(row: object) -> dict[str, object] | None:
    """A row's columns by lower-case name, for a mapping or a record with keys()
    (sqlite3.Row, asyncpg.Record are neither Mapping nor Sequence); else None."""
    if isinstance(row, Mapping):
        return {str(k).lower(): v for k, v in row.items()}
    keys, getitem = getattr(row, "keys", None), getattr(row, "__getitem__", None)
    if not callable(keys) or not callable(getitem):
        return None
    try:
        return {str(k).lower(): getitem(k) for k in keys()}
    except Exception:   # a foreign record type: whatever it raises, the row is just bad
        raise _Bad("a record whose keys() do not index it") from None


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _time_text(value: object) -> str:
    # A datetime stays exact through its ISO text; numbers through repr.
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool) or value is None:
        raise _Bad(f"time {value!r} is not a time")
    return str(value)


def _time_us(text: str, naive_tz: tzinfo) -> int:
    """Epoch microseconds of a realtime `time`: epoch text, or a timestamp string."""
    text = text.strip()
    if _EPOCH.fullmatch(text):
        return math.floor(Decimal(text) * US)
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise _Bad(f"time {text[:32]!r} is not a time") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=naive_tz)
    return (stamp - _UTC_EPOCH) // timedelta(microseconds=1)


# -- building: rows to stints -------------------------------------------------

@dataclass(slots=True)
class _Entry:
    """The stint being read: entered, no end row yet."""

    queue: str
    entered_s: int
    caller: str


def _build(rows: list[_Row], bad: list[BadLine], count: int,
           overflow_s: Mapping[str, int]) -> QueueLog:
    by_callid: dict[str, list[_Row]] = {}
    for row in rows:
        if row.callid not in QUEUE_LEVEL_IDS:
            by_callid.setdefault(row.callid, []).append(row)
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


def _stints(callid: str, rows: list[_Row], overflow_s: Mapping[str, int]) -> tuple[Stint, ...]:
    stints: list[Stint] = []
    entry: _Entry | None = None
    for row in rows:
        if row.event == ENTERQUEUE:
            if entry is not None:   # entered again with no end row: that row was lost
                stints.append(_unobserved(callid, entry, len(stints) + 1))
            entry = _Entry(row.queue, row.time_s, row.datum(2))
        elif row.event in _END_OUTCOME and entry is not None and entry.queue == row.queue:
            stints.append(_ended(callid, entry, row, len(stints) + 1))
            entry = None
    if entry is not None:
        stints.append(Stint(callid, entry.queue, entry.entered_s, None, None, None,
                            caller=entry.caller, seq=len(stints) + 1))
    moves = [r for r in rows if r.event == IVRMOVE]
    return tuple(_judge_abandon(s, stints, moves, overflow_s) for s in stints)


def _ended(callid: str, entry: _Entry, row: _Row, seq: int) -> Stint:
    wait = row.wait_s if row.wait_s is not None else max(0, row.time_s - entry.entered_s)
    member = row.agent if row.event == CONNECT else ""
    return Stint(callid, entry.queue, entry.entered_s, row.time_s, _END_OUTCOME[row.event],
                 wait, member, entry.caller, seq, end=row.event)


def _unobserved(callid: str, entry: _Entry, seq: int) -> Stint:
    return Stint(callid, entry.queue, entry.entered_s, None, UNOBSERVED, None,
                 caller=entry.caller, seq=seq)


def _judge_abandon(stint: Stint, stints: list[Stint], moves: list[_Row],
                   overflow_s: Mapping[str, int]) -> Stint:
    """An ABANDON with what followed it: the IVRMOVE reason, the next queue, its outcome."""
    if stint.end != ABANDON:
        return stint
    after = stints[stint.seq] if stint.seq < len(stints) else None
    judged = replace(stint, moved_to=after.queue if after else "",
                     move_reason=_move_reason(stint, moves))
    return _rejudge(judged, overflow_s)


def _move_reason(stint: Stint, moves: list[_Row]) -> str:
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
    if stint.move_reason:
        outcome = stint.move_reason
    elif not stint.moved_to:
        outcome = "abandoned"
    else:
        limit = overflow_s.get(stint.queue)
        reached = limit is not None and stint.wait_s is not None and stint.wait_s >= limit
        outcome = "timeout" if reached else "transferred"
    return replace(stint, outcome=outcome)


# -- reconciling with the ledger ------------------------------------------------

@dataclass(frozen=True, slots=True)
class MissingVisit:
    """A ledger visit queue_log has no stint for."""

    pbx: str
    uniqueid: str
    visit: VisitRecord
    source: str

    def to_json(self) -> dict[str, object]:
        v = self.visit
        return {"pbx": self.pbx, "uniqueid": self.uniqueid, "queue": v.queue, "seq": v.seq,
                "entered_s": v.entered_us // US, "outcome": v.outcome,
                "wait_ms": v.wait_ms, "source": self.source}


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A visit and its stint that tell different things.

    kind is the field ("outcome" or "wait"), or "unobserved" when the ledger did
    not see the visit end and queue_log says how it did: worth knowing, not wrong."""

    uniqueid: str
    queue: str
    seq: int                     # the ledger visit's seq
    kind: str
    field: str
    ledger: str | float | None
    queue_log: str | int | None

    def to_json(self) -> dict[str, object]:
        return {"uniqueid": self.uniqueid, "queue": self.queue, "seq": self.seq,
                "kind": self.kind, "field": self.field,
                "ledger": self.ledger, "queue_log": self.queue_log}


@dataclass(frozen=True, slots=True)
class Reconciliation:
    from_s: int
    to_s: int
    matched: int                 # finished stints paired with a visit, disagreeing or not
    missing_in_ledger: tuple[Stint, ...]
    missing_in_queue_log: tuple[MissingVisit, ...]
    disagreements: tuple[Disagreement, ...]
    open: int                    # stints still waiting: neither matched nor missing
    bad_lines: tuple[BadLine, ...]
    backfilled: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "matched": self.matched,
            "missing_in_ledger": [s.to_json() for s in self.missing_in_ledger],
            "missing_in_queue_log": [m.to_json() for m in self.missing_in_queue_log],
            "disagreements": [d.to_json() for d in self.disagreements],
            "backfilled": self.backfilled,
            "bad_lines": [b.to_json() for b in self.bad_lines],
            "open": self.open,
        }

    def to_text(self, limit: int = 20) -> str:
        """A few aligned lines: the counts, then up to `limit` items of each list."""
        counts = [("matched", self.matched), ("missing in ledger", len(self.missing_in_ledger)),
                  ("missing in queue_log", len(self.missing_in_queue_log)),
                  ("disagreements", len(self.disagreements)), ("open", self.open),
                  ("bad lines", len(self.bad_lines)), ("backfilled", self.backfilled)]
        lines = [f"queue_log vs ledger, {_utc(self.from_s)} .. {_utc(self.to_s)}"]
        lines += [f"  {name:<22}{n:>7}" for name, n in counts]
        lines += [f"  missing in ledger     {s.callid} {s.queue} #{s.seq} {_utc(s.entered_s)} "
                  f"{s.outcome} {s.wait_s} s" for s in self.missing_in_ledger[:limit]]
        lines += [f"  missing in queue_log  {m.uniqueid} {m.visit.queue} #{m.visit.seq} "
                  f"{_utc(m.visit.entered_us // US)} {m.visit.outcome}"
                  for m in self.missing_in_queue_log[:limit]]
        lines += [f"  {d.kind:<22}{d.uniqueid} {d.queue} #{d.seq} ledger {d.ledger} "
                  f"queue_log {d.queue_log}" for d in self.disagreements[:limit]]
        lines += [f"  bad line {b.line:<13}{b.reason}: {b.text}" for b in self.bad_lines[:limit]]
        return "\n".join(lines)


def _utc(epoch_s: int) -> str:
    try:
        return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return str(epoch_s)         # an open-ended period ("until forever") still renders


def reconcile(log: QueueLog, calls: Iterable[CallRecord], from_s: int, to_s: int,
              overflow_s: Mapping[str, int] | None = None, pbx: str | None = None) -> Reconciliation:
    """Hold the ledger's calls against queue_log over [from_s, to_s).

    A call is its uniqueid; within it the k-th stint in a queue is the k-th visit
    to that queue (by entry time).  A pair belongs to the period by its stint's
    entry, an unpaired visit by its own.  `overflow_s`, when given, re-judges the
    log's ABANDONs; `pbx` keeps only that PBX's calls (uniqueids repeat across PBXs).
    """
    if overflow_s is not None:
        log = log.judged(overflow_s)
    ledger = {c.uniqueid: c for c in calls if pbx is None or c.pbx == pbx}
    tally = _Tally(from_s, to_s)
    for callid, stints in log.by_call.items():
        call = ledger.get(callid)
        if call is None:
            tally.unpaired(stints)
        else:
            _pair_call(call, stints, tally)
    for call in ledger.values():
        if call.uniqueid not in log.by_call:
            tally.unseen(call, call.visits)
    return Reconciliation(from_s, to_s, tally.matched, tuple(tally.missing_in_ledger),
                          tuple(tally.missing_in_queue_log), tuple(tally.disagreements),
                          tally.open, log.bad_lines)


@dataclass(slots=True)
class _Tally:
    from_s: int
    to_s: int
    matched: int = 0
    open: int = 0
    missing_in_ledger: list[Stint] = field(default_factory=list)
    missing_in_queue_log: list[MissingVisit] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)

    def within(self, epoch_s: int) -> bool:
        return self.from_s <= epoch_s < self.to_s

    def unpaired(self, stints: Iterable[Stint]) -> None:
        for s in stints:
            if not self.within(s.entered_s):
                continue
            if s.is_open:
                self.open += 1          # still waiting: the ledger cannot have it yet
            else:
                self.missing_in_ledger.append(s)

    def unseen(self, call: CallRecord, visits: Iterable[VisitRecord]) -> None:
        if call.source == QUEUE_LOG:
            return                      # built from queue_log: nothing to hold it against
        self.missing_in_queue_log += [MissingVisit(call.pbx, call.uniqueid, v, call.source)
                                      for v in visits if self.within(v.entered_us // US)]

    def pair(self, stint: Stint, visit: VisitRecord) -> None:
        if not self.within(stint.entered_s):
            return
        if stint.is_open:
            self.open += 1              # queue_log is behind the ledger: not a disagreement
            return
        self.matched += 1
        self.disagreements += _compare(stint, visit)


def _pair_call(call: CallRecord, stints: tuple[Stint, ...], tally: _Tally) -> None:
    queues = dict.fromkeys([s.queue for s in stints] + [v.queue for v in call.visits])
    for queue in queues:
        in_log = [s for s in stints if s.queue == queue]
        in_ledger = sorted((v for v in call.visits if v.queue == queue),
                           key=lambda v: (v.entered_us, v.seq))
        for stint, visit in zip(in_log, in_ledger):
            tally.pair(stint, visit)
        tally.unpaired(in_log[len(in_ledger):])
        tally.unseen(call, in_ledger[len(in_log):])


def _compare(stint: Stint, visit: VisitRecord) -> list[Disagreement]:
    def differ(kind: str, name: str, ledger: str | float | None,
               queue_log: str | int | None) -> Disagreement:
        return Disagreement(stint.callid, stint.queue, visit.seq, kind, name, ledger, queue_log)

    if stint.outcome == UNOBSERVED:
        return []                       # queue_log lost the end row: the ledger knows more
    if visit.outcome == UNOBSERVED:
        return [differ(UNOBSERVED, "outcome", visit.outcome, stint.outcome)]
    found = []
    if visit.outcome != stint.outcome:
        found.append(differ("outcome", "outcome", visit.outcome, stint.outcome))
    if visit.wait_ms is not None and stint.wait_s is not None \
            and abs(visit.wait_ms / 1000 - stint.wait_s) > WAIT_TOLERANCE_S:
        found.append(differ("wait", "wait_s", visit.wait_ms / 1000, stint.wait_s))
    return found


# -- backfilling the ledger -----------------------------------------------------

@dataclass(frozen=True, slots=True)
class Backfill:
    """Ledger records built from queue_log: whole calls ivr never saw, and the
    visits it missed of calls it did see, as (pbx, uniqueid, visit)."""

    calls: list[CallRecord]
    visits: list[tuple[str, str, VisitRecord]]

    @property
    def count(self) -> int:
        """Stints written, as visits of new calls or of calls the ledger had: what
        Reconciliation.backfilled counts, so it answers missing_in_ledger one for one."""
        return sum(len(c.visits) for c in self.calls) + len(self.visits)


def backfill(missing: Reconciliation | Iterable[Stint], log: QueueLog,
             calls: Iterable[CallRecord], pbx: str, first_line: str = FIRST_LINE,
             threshold_s: int = 30) -> Backfill:
    """Records for the stints missing in the ledger.

    A call the ledger lacks entirely is built whole from all its stints in the log
    (a missing stint only picks the call), unless one of them is still open: the
    call is not over, and ivr may yet record it live.  A call the ledger has gets
    the missing visits, numbered after its highest seq.  Build `log` with the
    same overflow thresholds as the reconciliation, or a move may read differently.
    """
    stints = missing.missing_in_ledger if isinstance(missing, Reconciliation) else missing
    ledger = {c.uniqueid: c for c in calls if c.pbx == pbx}
    by_call: dict[str, list[Stint]] = {}
    for s in stints:
        if not s.is_open:
            by_call.setdefault(s.callid, []).append(s)
    built: list[CallRecord] = []
    extra: list[tuple[str, str, VisitRecord]] = []
    for callid, lacking in by_call.items():
        call = ledger.get(callid)
        if call is not None:
            extra += _extra_visits(pbx, call, lacking)
        elif (record := _call_record(pbx, log, callid, first_line, threshold_s)) is not None:
            built.append(record)
    return Backfill(built, extra)


def _extra_visits(pbx: str, call: CallRecord, lacking: list[Stint]) -> list[tuple[str, str, VisitRecord]]:
    top = max((v.seq for v in call.visits), default=0)
    ordered = sorted(lacking, key=lambda s: (s.entered_s, s.seq))
    return [(pbx, call.uniqueid, _visit(s, top + n)) for n, s in enumerate(ordered, start=1)]


def _visit(s: Stint, seq: int) -> VisitRecord:
    assert s.outcome is not None
    return VisitRecord(seq, s.queue, s.entered_s * US,
                       None if s.left_s is None else s.left_s * US, s.outcome,
                       None if s.wait_s is None else s.wait_s * 1000, s.member)


def _call_record(pbx: str, log: QueueLog, callid: str, first_line: str,
                 threshold_s: int) -> CallRecord | None:
    stints = log.by_call.get(callid, ())
    if not stints or any(s.is_open for s in stints):
        return None
    answer = next((s for s in stints if s.outcome == "answered"), None)
    return CallRecord(
        pbx=pbx, uniqueid=callid, linkedid=callid, caller=stints[0].caller,
        account="", area="", entered_us=stints[0].entered_s * US,
        ended_us=log.last_s.get(callid, stints[-1].entered_s) * US,
        visits=tuple(_visit(s, s.seq) for s in stints),
        outcome=_call_outcome(stints, answer),
        payable=_payable(stints, answer, first_line, threshold_s),
        source=QUEUE_LOG, precision=SECONDS,
        answered_us=None if answer is None or answer.left_s is None else answer.left_s * US,
        answered_queue=answer.queue if answer else "",
        answered_member=answer.member if answer else "")


def _call_outcome(stints: tuple[Stint, ...], answer: Stint | None) -> str:
    # As journeys._journey_outcome: a move is not an abandon, a hang-up is.
    if answer is not None:
        return "answered"
    return "abandoned" if stints[-1].outcome == "abandoned" else "unanswered"


def _payable(stints: tuple[Stint, ...], answer: Stint | None, first_line: str,
             threshold_s: int) -> bool:
    """Answered first in first-line within the threshold of first entering it (inclusive)."""
    if answer is None or answer.queue != first_line:
        return False
    first = next(s for s in stints if s.queue == first_line)
    if answer is first and answer.wait_s is not None:
        waited = answer.wait_s      # Asterisk's own holdtime for that stay
    elif answer.left_s is not None:
        waited = answer.left_s - first.entered_s
    else:
        return False
    return waited <= threshold_s
