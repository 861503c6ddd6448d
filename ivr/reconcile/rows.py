"""queue_log as typed rows: each line of the file, or each row of the realtime
table, parsed into a `Row` or a `BadLine`, one at a time (a generator: the
file is never held whole here).  No I/O: the caller opens what it reads.

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
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal

from ivr.calls.judge import MOVE_REASONS, Outcome

US = 1_000_000                 # microseconds in a second
TEXT_LIMIT = 120               # how much of a bad line is kept for the report
QUEUE_LEVEL_IDS = ("NONE", "REALTIME")
COLUMNS = ("time", "callid", "queuename", "agent", "event",
           "data1", "data2", "data3", "data4", "data5")

ENTERQUEUE, CONNECT, ABANDON, IVRMOVE = "ENTERQUEUE", "CONNECT", "ABANDON", "IVRMOVE"
# The rows that end a stint, and which data field holds its wait (1-based).
END_OUTCOME = {
    CONNECT: Outcome.ANSWERED, ABANDON: Outcome.ABANDONED, "EXITWITHTIMEOUT": Outcome.TIMEOUT,
    "EXITEMPTY": Outcome.EMPTY, "EXITWITHKEY": Outcome.EXIT_WITH_KEY, "WITHDRAW": Outcome.WITHDRAWN,
}
_WAIT_FIELD = {CONNECT: 1, ABANDON: 3, "EXITWITHTIMEOUT": 3, "EXITEMPTY": 3,
               "EXITWITHKEY": 4, "WITHDRAW": 3}
_NEEDS_QUEUE = frozenset((ENTERQUEUE, *END_OUTCOME, IVRMOVE))
_EPOCH = re.compile(r"\d+(?:\.\d*)?")
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line (or table row) that was not read, and why."""

    line: int                    # 1-based line number, or row number for read_rows
    text: str                    # the line, truncated to TEXT_LIMIT characters
    reason: str
    file: str = ""               # the file it is in, when read from files (reconcile/files.py)

    def to_json(self) -> dict[str, object]:
        where: dict[str, object] = {"file": self.file} if self.file else {}
        return {**where, "line": self.line, "text": self.text, "reason": self.reason}


@dataclass(slots=True)
class Row:
    """One row read.  Not frozen, though nothing changes it once parsed: a frozen
    dataclass's __init__ costs 1.2 µs against 0.2, and a month is six million rows."""

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


# -- parsing: text and table rows to Row ---------------------------------------

def parse_lines(lines: Iterable[str]) -> Iterator[Row | BadLine]:
    """Each non-blank queue_log file line as a Row, or a BadLine saying why not."""
    for number, raw in enumerate(lines, start=1):
        item = parse_line(number, raw)
        if item is not None:
            yield item


def parse_line(number: int, raw: str) -> Row | BadLine | None:
    """One queue_log file line as a Row, or a BadLine saying why not; None when blank
    (a blank line says nothing; not worth a report)."""
    line = raw.rstrip("\r\n")
    if not line or line.isspace():
        return None
    try:
        return _parse_fields(number, line.split("|"))
    except _Bad as exc:
        return BadLine(number, line[:TEXT_LIMIT], str(exc))


def parse_table(rows: Iterable[object], naive_tz: tzinfo = timezone.utc, start: int = 1
                ) -> Iterator[tuple[int, Row] | BadLine]:
    """Each realtime table row as (its time in epoch µs, its Row), or a BadLine; rows
    are numbered from `start`.  A timestamp without a zone is taken in `naive_tz`."""
    for number, row in enumerate(rows, start=start):
        try:
            fields = _columns(row)
            time_us = _time_us(fields[0], naive_tz)
            yield time_us, _parse_fields(number, [str(time_us // US), *fields[1:]])
        except _Bad as exc:
            yield BadLine(number, repr(row)[:TEXT_LIMIT], str(exc))


def _parse_fields(number: int, fields: Sequence[str]) -> Row:
    if len(fields) < 5:
        raise _Bad(f"too few fields ({len(fields)}, need at least 5)")
    # One line in a million is not a row: this is the hot path of a month's read, so
    # plain calls (isdecimal() is \d+ for a non-empty string; map is C).
    stamp, callid, queue, agent, event = map(str.strip, fields[:5])
    if not stamp.isdecimal():
        raise _Bad(f"time {stamp[:20]!r} is not whole epoch seconds")
    if not callid:
        raise _Bad("no callid")
    if not event:
        raise _Bad("no event")
    event = event.upper()
    data = tuple(map(str.strip, fields[5:]))
    if callid in QUEUE_LEVEL_IDS or event not in _NEEDS_QUEUE:
        return Row(number, int(stamp), callid, queue, agent, event, data)
    return Row(number, int(stamp), callid, queue, agent, event, data,
               _checked(event, queue, data))


def _checked(event: str, queue: str, data: tuple[str, ...]) -> int | None:
    """A caller row's fields checked for what its event needs (an event of
    _NEEDS_QUEUE: the others need nothing); its wait, if it has one."""
    if event in _NEEDS_QUEUE and not queue:
        raise _Bad(f"{event} without a queue")
    if event == IVRMOVE and (data[0] if data else "") not in MOVE_REASONS:
        reason = data[0] if data else ""
        raise _Bad(f"IVRMOVE reason {reason[:20]!r} is not one of {', '.join(MOVE_REASONS)}")
    index = _WAIT_FIELD.get(event)
    if index is None:
        return None
    text = data[index - 1] if len(data) >= index else ""
    if not text and event != CONNECT:
        return None             # an older Asterisk wrote no waittime: row times stand in
    if not text.isdecimal():
        name = "holdtime" if event == CONNECT else "waittime"
        raise _Bad(f"{event} {name} {text[:20]!r} is not whole seconds")
    return int(text)


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
