"""The contractor's statement: first-line calls of a period, judged and counted.

Pure: no I/O, no database, no clock.  `period()` turns the operator's dates
into a half-open interval of epoch microseconds with its local days;
`build()` turns `BillingCall`s into a `Statement`; `to_json`, `to_csv` and
`to_table` render one.

Rules
-----
Period.  `[from, to)` in a zoneinfo time zone.  A date ('YYYY-MM-DD') means
local midnight of that date; an ISO 8601 datetime without an offset is local
wall time in the zone (the earlier one when the clock repeats it, the
offset before the change when the clock skips it); one with an offset is
that instant.  `from` must be before `to`.  The period's days
are its local calendar days, cut at local midnights, so a DST day lasts
23 or 25 hours; a first or last day cut by a datetime bound is partial.
Every day of the period is listed, with zeros if it had no call; a date the
zone skips altogether has no instant and is not listed.

Calls.  A call belongs to the period when from <= entered_us < to, and to
the local day in which it first entered first-line.  Each call falls in
exactly one category, tried in this order:

    payable        payable is True (answered in first-line within 30 s)
    answered_late  outcome 'answered', not payable
    timeout        outcome 'timeout': moved to common by the 30 s limit
    abandoned      outcome 'abandoned': the caller hung up
    other          anything else: withdrawn, transferred, empty,
                   unobserved, exit_with_key, unknown_exit, ...

`short_abandoned` is the subset of `abandoned` with a known wait_ms <=
short_abandon_ms (5000 ms: within 5 s, 5.000 s included).  `offered` counts
every call; `payable_share` = payable / offered, None when nothing was
offered.  The operator table counts the answered calls (payable plus
answered_late) by the member who answered them; an answered call with no
recorded member is counted under operator "".

Digest.  SHA-256, hex, over the canonical call lines, one per call of the
period, sorted by (entered_us, pbx, uniqueid), each line being

    pbx|uniqueid|entered_us|wait_ms|outcome|operator|payable|source\\n

with entered_us in decimal microseconds, wait_ms in decimal milliseconds or
empty when None, payable 1 or 0, UTF-8.  Fields are not escaped.  Both
sides holding the same calls get the same digest whatever order their rows
came in.  `records.statement_line()` is the one definition of the line: the
ledger keeps it per call, so the database can give the digest of a month.
"""

from __future__ import annotations

import csv
import hashlib
import io
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from itertools import compress, count, islice
from operator import attrgetter, eq, lt
from typing import Any, Iterable, Sequence
from zoneinfo import ZoneInfo

from ivr.calls.records import BillingCall, statement_line
from ivr.reports.period import MAX_PERIOD_DAYS as MAX_PERIOD_DAYS, ReportError as ReportError
from ivr.reports.period import Period as Period, instant as instant, period as period, _local

ANSWERED, ABANDONED, TIMEOUT = "answered", "abandoned", "timeout"
SHORT_ABANDON_MS = 5000
COUNT_FIELDS = ("offered", "payable", "answered_late", "timeout",
                "abandoned", "short_abandoned", "other")
CALL_FIELDS = ("uniqueid", "pbx", "entered", "wait_ms", "outcome",
               "operator", "payable", "source")

_CHUNK = 8192                      # call lines hashed per hashlib update

_ENTERED = attrgetter("entered_us")
_SORT_KEY = attrgetter("entered_us", "pbx", "uniqueid")
_TALLY_KEY = attrgetter("operator", "payable", "outcome")
_TallyKey = tuple[str, bool, str]                  # what _TALLY_KEY returns


# -- the statement --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Counts:
    """The calls of a day or of the period, by category (short_abandoned within abandoned)."""

    offered: int = 0
    payable: int = 0
    answered_late: int = 0
    timeout: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    other: int = 0

    @property
    def payable_share(self) -> float | None:
        return self.payable / self.offered if self.offered else None

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f) + getattr(other, f) for f in COUNT_FIELDS))


@dataclass(frozen=True, slots=True)
class Day:
    date: str                      # local ISO date
    counts: Counts


@dataclass(frozen=True, slots=True)
class OperatorCounts:
    operator: str
    answered: int                  # payable + answered_late
    payable: int
    answered_late: int
    without_disposition: int = 0   # answered calls the operator closed with no code


@dataclass(frozen=True, slots=True)
class Statement:
    """What `build` makes and the renderers show."""

    period: Period
    short_abandon_ms: int
    totals: Counts
    days: tuple[Day, ...]
    operators: tuple[OperatorCounts, ...]   # sorted by operator
    calls: tuple[BillingCall, ...]          # the period's calls in canonical order
    digest: str
    repeats: tuple[tuple[str, int], ...] = ()   # repeat calls by kind (ivr/routing/repeats.py)
    payable_once: int | None = None   # report.pay_once_per_caller: one answer per caller per window
    judged_in_seconds: int = 0        # calls whose waits are Asterisk's whole seconds (precision s)
    # Callbacks requested in the period, and how many ended connected, failed, cancelled
    # (ivr/callbacks/).  A callback's call is its placeholder's: never payable.
    callbacks: tuple[tuple[str, int], ...] = ()


def category(payable: bool, outcome: str) -> str:
    """The one category of a call (see the module docstring)."""
    if payable:
        return "payable"
    return _UNPAID_CATEGORY.get(outcome, "other")


_UNPAID_CATEGORY = {ANSWERED: "answered_late", TIMEOUT: "timeout", ABANDONED: "abandoned"}


def _lines(calls: Iterable[BillingCall]) -> list[str]:
    """The canonical lines of `calls` (records.statement_line defines the format)."""
    return [statement_line(c.pbx, c.uniqueid, c.entered_us, c.wait_ms, c.outcome, c.operator,
                           c.payable, c.source) for c in calls]


def call_line(call: BillingCall) -> str:
    """The canonical line of one call, newline included."""
    return _lines((call,))[0]


def digest(calls: Sequence[BillingCall]) -> str:
    """SHA-256 hex of the lines of `calls`, taken in the order given."""
    sha = hashlib.sha256()
    for start in range(0, len(calls), _CHUNK):
        sha.update("".join(_lines(calls[start:start + _CHUNK])).encode())
    return sha.hexdigest()


def build(calls: Iterable[BillingCall], period: Period,
          short_abandon_ms: int = SHORT_ABANDON_MS) -> Statement:
    """The statement of `period` over `calls`; calls outside the period are ignored.

    Any order will do, but calls already in (entered_us, pbx, uniqueid) order
    (ORDER BY in the ledger's query) skip the sort, the costliest step after
    the digest.
    """
    ordered, keys = _canonical(calls)
    cuts = [bisect_left(keys, bound) for bound in period.boundaries]
    days, operators = [], Counter[_TallyKey]()
    for day_date, lo, hi in zip(period.dates, cuts, islice(cuts, 1, None)):
        day_calls = ordered[lo:hi]
        tally = Counter(map(_TALLY_KEY, day_calls))   # then work per distinct key
        days.append(Day(day_date, _counts(tally, _short_abandons(day_calls, short_abandon_ms))))
        operators.update(tally)
    inside = ordered[cuts[0]:cuts[-1]]
    return Statement(period, short_abandon_ms, sum((d.counts for d in days), Counts()),
                     tuple(days), _operators(operators), tuple(inside), digest(inside))


@dataclass(frozen=True, slots=True)
class Tally:
    """Calls of one day counted alike: what the ledger's GROUP BY returns for the
    statement, so a month is counted without loading a million calls."""

    day: int                       # index into period.dates
    operator: str
    payable: bool
    outcome: str
    short_abandoned: int           # of these, abandons within short_abandon_ms
    calls: int


def from_tally(period: Period, tallies: Iterable[Tally], digest_hex: str,
               short_abandon_ms: int = SHORT_ABANDON_MS) -> Statement:
    """The statement from the ledger's counts and its digest: the same figures as
    `build` over the same calls (tests/unit/test_statement_sql.py holds them equal),
    with no call lines."""
    by_day: list[Counter[_TallyKey]] = [Counter() for _ in period.dates]
    shorts = [0] * len(period.dates)
    for t in tallies:
        by_day[t.day][t.operator, t.payable, t.outcome] += t.calls
        shorts[t.day] += t.short_abandoned if not t.payable and t.outcome == ABANDONED else 0
    operators: Counter[_TallyKey] = sum(by_day, Counter())
    days = tuple(Day(d, _counts(tally, short)) for d, tally, short in zip(period.dates, by_day, shorts))
    return Statement(period, short_abandon_ms, sum((d.counts for d in days), Counts()), days,
                     _operators(operators), (), digest_hex)


def _canonical(calls: Iterable[BillingCall]) -> tuple[list[BillingCall], list[int]]:
    """Calls sorted by (entered_us, pbx, uniqueid), and their entered_us."""
    ordered = list(calls)
    keys = [c.entered_us for c in ordered]
    if all(map(lt, keys, islice(keys, 1, None))):  # already in order, no ties: the usual case
        return ordered, keys
    ordered.sort(key=_ENTERED)                      # int keys: the fast sort
    keys = [c.entered_us for c in ordered]
    for lo, hi in _tie_runs(keys):                  # rare: the same microsecond
        ordered[lo:hi] = sorted(ordered[lo:hi], key=_SORT_KEY)
    return ordered, keys


def _tie_runs(keys: Sequence[int]) -> list[tuple[int, int]]:
    """The [lo, hi) runs of two or more equal adjacent keys."""
    runs: list[tuple[int, int]] = []
    for i in compress(count(), map(eq, keys, islice(keys, 1, None))):  # keys[i] == keys[i+1]
        if runs and runs[-1][1] == i + 1:
            runs[-1] = (runs[-1][0], i + 2)
        else:
            runs.append((i, i + 2))
    return runs


def _short_abandons(calls: Iterable[BillingCall], short_abandon_ms: int) -> int:
    return sum(1 for c in calls if c.outcome == ABANDONED and not c.payable
               and c.wait_ms is not None and c.wait_ms <= short_abandon_ms)


def _counts(tally: Counter[_TallyKey], short_abandoned: int) -> Counts:
    by_category: Counter[str] = Counter()
    for (_, payable, outcome), n in tally.items():
        by_category[category(payable, outcome)] += n
    return Counts(offered=tally.total(), payable=by_category["payable"],
                  answered_late=by_category["answered_late"], timeout=by_category["timeout"],
                  abandoned=by_category["abandoned"], short_abandoned=short_abandoned,
                  other=by_category["other"])


def _operators(tally: Counter[_TallyKey]) -> tuple[OperatorCounts, ...]:
    """Answered calls (payable or answered_late) by the member who answered them."""
    paid: Counter[str] = Counter()
    late: Counter[str] = Counter()
    for (operator, payable, outcome), n in tally.items():
        kind = category(payable, outcome)
        if kind == "payable":
            paid[operator] += n
        elif kind == "answered_late":
            late[operator] += n
    return tuple(OperatorCounts(name, paid[name] + late[name], paid[name], late[name])
                 for name in sorted(paid.keys() | late.keys()))


# -- renderers ------------------------------------------------------------------

def _iso(us: int, zone: ZoneInfo, timespec: str = "auto") -> str:
    return _local(us, zone).isoformat(timespec=timespec)


class _Entered:
    """ISO 8601 with microseconds in a zone, the datetime work done once per minute."""

    __slots__ = ("zone", "minutes")
    _IRREGULAR = ("", "")          # an offset with seconds, or a change within the minute

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.minutes: dict[int, tuple[str, str]] = {}

    def __call__(self, us: int) -> str:
        minute, rest = divmod(us, 60_000_000)
        head = self.minutes.get(minute) or self.minutes.setdefault(minute, self._head(minute))
        if head is self._IRREGULAR:
            return _iso(us, self.zone, "microseconds")
        return f"{head[0]}{rest // 1_000_000:02d}.{rest % 1_000_000:06d}{head[1]}"

    def _head(self, minute: int) -> tuple[str, str]:
        """('YYYY-MM-DDTHH:MM:', '+HH:MM') of a minute that is regular in the zone."""
        first_us = minute * 60_000_000
        start, end = _local(first_us, self.zone), _local(first_us + 59_999_999, self.zone)
        if start.second or start.utcoffset() != end.utcoffset():
            return self._IRREGULAR
        text = start.isoformat(timespec="microseconds")
        return text[:17], text[26:]


def _counts_json(counts: Counts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in COUNT_FIELDS}


def _call_json(call: BillingCall, entered: _Entered) -> dict[str, Any]:
    return {"uniqueid": call.uniqueid, "pbx": call.pbx, "entered": entered(call.entered_us),
            "wait_ms": call.wait_ms, "outcome": call.outcome,
            "operator": call.operator, "payable": call.payable, "source": call.source}


def to_json(statement: Statement, with_calls: bool) -> dict[str, Any]:
    """The statement as a JSON-ready dict; `calls` is empty unless with_calls."""
    p, zone = statement.period, statement.period.zone
    entered = _Entered(zone)
    return {
        "period": {"from": _iso(p.from_us, zone), "to": _iso(p.to_us, zone),
                   "timezone": p.tz},
        "totals": {**_counts_json(statement.totals),
                   "payable_share": statement.totals.payable_share},
        "days": [{"date": d.date, **_counts_json(d.counts)} for d in statement.days],
        "operators": [{"operator": o.operator, "answered": o.answered,
                       "payable": o.payable, "answered_late": o.answered_late,
                       "without_disposition": o.without_disposition}
                      for o in statement.operators],
        "calls": [_call_json(c, entered) for c in statement.calls] if with_calls else [],
        "digest": statement.digest,
        "repeats": dict(statement.repeats),
        "payable_once_per_caller": statement.payable_once,
        "judged_in_seconds": statement.judged_in_seconds,
        "callbacks": dict(statement.callbacks),
    }


def _call_row(call: BillingCall, entered: _Entered) -> list[str]:
    return [call.uniqueid, call.pbx, entered(call.entered_us),
            "" if call.wait_ms is None else str(call.wait_ms), call.outcome,
            call.operator, "1" if call.payable else "0", call.source]


def _day_rows(statement: Statement) -> list[list[str]]:
    rows = [[d.date, *(str(getattr(d.counts, f)) for f in COUNT_FIELDS)]
            for d in statement.days]
    rows.append(["total", *(str(getattr(statement.totals, f)) for f in COUNT_FIELDS)])
    return rows


def to_csv(statement: Statement, with_calls: bool) -> str:
    """RFC 4180 CSV, header first: the days and a total row, or the call lines."""
    out = io.StringIO()
    writer = csv.writer(out)                     # excel dialect: CRLF, minimal quoting
    if with_calls:
        entered = _Entered(statement.period.zone)
        writer.writerow(CALL_FIELDS)
        writer.writerows(_call_row(c, entered) for c in statement.calls)
    else:
        writer.writerow(("date", *COUNT_FIELDS))
        writer.writerows(_day_rows(statement))
    return out.getvalue()


def _align(rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to width: the first left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.2f} %"


def _totals_lines(statement: Statement) -> list[str]:
    t = statement.totals
    rows = [["offered", str(t.offered), ""],
            ["payable", str(t.payable), _percent(t.payable_share)],
            ["answered late", str(t.answered_late), ""],
            ["timeout", str(t.timeout), ""],
            ["abandoned", str(t.abandoned), ""],
            [f"  of which within {statement.short_abandon_ms} ms",
             str(t.short_abandoned), ""],
            ["other", str(t.other), ""],
            ["judged in whole seconds", str(statement.judged_in_seconds), ""]]
    if statement.callbacks:
        c = dict(statement.callbacks)
        rows.append(["callbacks requested", str(c.get("requested", 0)),
                     " ".join(f"{k} {c.get(k, 0)}" for k in ("connected", "failed", "cancelled"))])
    return _align(rows)


def to_table(statement: Statement, with_calls: bool) -> str:
    """Aligned text for a person: period, totals, days, operators, [calls], digest."""
    p, zone = statement.period, statement.period.zone
    lines = [f"period    {_iso(p.from_us, zone)} .. {_iso(p.to_us, zone)} ({p.tz})", ""]
    lines += _totals_lines(statement) + [""]
    lines += _align([["date", *COUNT_FIELDS], *_day_rows(statement)]) + [""]
    operators = [[o.operator or "(unknown)", str(o.answered), str(o.payable),
                  str(o.answered_late), str(o.without_disposition)] for o in statement.operators]
    lines += _align([["operator", "answered", "payable", "answered_late", "without_disposition"],
                     *operators])
    if with_calls:
        entered = _Entered(zone)
        calls = [_call_row(c, entered) for c in statement.calls]
        lines += [""] + _align([list(CALL_FIELDS), *calls])
    lines += ["", f"digest    {statement.digest}"]
    return "\n".join(lines) + "\n"
