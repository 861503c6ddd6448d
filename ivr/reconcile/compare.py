"""The ledger held against queue_log: `reconcile(log, calls, from_s, to_s)`.

A call is its uniqueid; within it the k-th stint in a queue is the k-th visit
to that queue.  Pairs that tell different things are disagreements, stints
the ledger lacks are missing in the ledger (what `backfill` writes), visits
queue_log lacks are missing in queue_log.  Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol, TextIO, TypeVar

from ivr.calls import judge
from ivr.calls.records import QUEUE_LOG, UNOBSERVED, CallRecord, VisitRecord
from ivr.reconcile.files import Damage
from ivr.reconcile.read import QueueLog, Stint
from ivr.reconcile.rows import US, BadLine

T_contra = TypeVar("T_contra", contravariant=True)
WAIT_TOLERANCE_S = 1.0         # queue_log waits are whole seconds, the ledger's ms


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
    missing_in_ledger: Sequence[Stint]         # tuples, or Listings (reconcile/scan.py)
    missing_in_queue_log: Sequence[MissingVisit]
    disagreements: Sequence[Disagreement]
    open: int                    # stints still waiting: neither matched nor missing
    bad_lines: Sequence[BadLine]
    backfilled: int = 0
    damaged: Sequence[Damage] = ()             # compressed files cut short (files.py)

    def _fields(self) -> dict[str, int | Sequence[Stint | MissingVisit | Disagreement
                                                   | BadLine | Damage]]:
        return {"matched": self.matched, "missing_in_ledger": self.missing_in_ledger,
                "missing_in_queue_log": self.missing_in_queue_log,
                "disagreements": self.disagreements, "backfilled": self.backfilled,
                "bad_lines": self.bad_lines, "open": self.open, "damaged": self.damaged}

    def to_json(self) -> dict[str, object]:
        return {key: value if isinstance(value, int) else [item.to_json() for item in value]
                for key, value in self._fields().items()}

    def write_json(self, out: TextIO) -> None:
        """to_json() as json.dumps(indent=2) writes it, an item at a time: the lists
        of a month may be too long to hold twice."""
        out.write("{")
        for n, (key, value) in enumerate(self._fields().items()):
            out.write(f"{',' if n else ''}\n  {json.dumps(key)}: ")
            if isinstance(value, int):
                out.write(json.dumps(value))
                continue
            out.write("[")
            for i, item in enumerate(value):
                text = json.dumps(item.to_json(), indent=2).replace("\n", "\n    ")
                out.write(f"{',' if i else ''}\n    {text}")
            out.write("\n  ]" if value else "]")
        out.write("\n}\n")

    @property
    def agrees(self) -> bool:
        """Nothing missing on either side, nothing disagreeing (`ivr ledger reconcile`
        exits 0 only then).  Open stints and unreadable lines are reported, not judged."""
        return not (self.missing_in_ledger or self.missing_in_queue_log or self.disagreements)

    def summary(self) -> str:
        """One line: whether the two agree, and if not, how."""
        damage = (f"; {len(self.damaged)} queue_log file(s) damaged, read up to the damage"
                  if self.damaged else "")
        if self.agrees:
            return f"the ledger and queue_log agree: {self.matched} stint(s) matched{damage}"
        said = [f"{n} {what}" for n, what in (
            (len(self.missing_in_ledger), "missing in the ledger"),
            (len(self.missing_in_queue_log), "missing in queue_log"),
            (len(self.disagreements), "disagreeing")) if n]
        filled = f" ({self.backfilled} backfilled)" if self.backfilled else ""
        return f"the ledger and queue_log do not agree: {', '.join(said)}{filled}{damage}"

    def to_text(self, limit: int = 20) -> str:
        """A few aligned lines: the counts, then up to `limit` items of each list, and
        how many more each list has."""
        counts = [("matched", self.matched), ("missing in ledger", len(self.missing_in_ledger)),
                  ("missing in queue_log", len(self.missing_in_queue_log)),
                  ("disagreements", len(self.disagreements)), ("open", self.open),
                  ("bad lines", len(self.bad_lines)), ("backfilled", self.backfilled)]
        lines = [f"queue_log vs ledger, {_utc(self.from_s)} .. {_utc(self.to_s)}"]
        lines += [f"  {name:<22}{n:>7}" for name, n in counts]
        lines += [f"  missing in ledger     {s.callid} {s.queue} #{s.seq} {_utc(s.entered_s)} "
                  f"{s.outcome} {s.wait_s} s" for s in self.missing_in_ledger[:limit]]
        lines += _more("missing in ledger", self.missing_in_ledger, limit)
        lines += [f"  missing in queue_log  {m.uniqueid} {m.visit.queue} #{m.visit.seq} "
                  f"{_utc(m.visit.entered_us // US)} {m.visit.outcome}"
                  for m in self.missing_in_queue_log[:limit]]
        lines += _more("missing in queue_log", self.missing_in_queue_log, limit)
        lines += [f"  {d.kind:<22}{d.uniqueid} {d.queue} #{d.seq} ledger {d.ledger} "
                  f"queue_log {d.queue_log}" for d in self.disagreements[:limit]]
        lines += _more("disagreements", self.disagreements, limit)
        lines += [f"  bad line {b.line:<13}{b.file + ': ' if b.file else ''}{b.reason}: {b.text}"
                  for b in self.bad_lines[:limit]]
        lines += _more("bad lines", self.bad_lines, limit)
        lines += [f"  damaged               {d}" for d in self.damaged]
        return "\n".join(lines)


def _more(name: str, items: Sequence[object], limit: int) -> list[str]:
    """The line that says a text list was cut, if it was."""
    left = len(items) - limit
    return [f"  {name:<22}and {left} more (--json for all)"] if left > 0 else []


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
    (reconcile/scan.py does the same a call at a time, for a queue_log too big to hold.)
    """
    if overflow_s is not None:
        log = log.judged(overflow_s)
    ledger = {c.uniqueid: c for c in calls if pbx is None or c.pbx == pbx}
    missing: list[Stint] = []
    unseen: list[MissingVisit] = []
    disagreeing: list[Disagreement] = []
    tally = Tally(from_s, to_s, missing, unseen, disagreeing)
    for callid, stints in log.by_call.items():
        tally.call(stints, ledger.get(callid))
    for call in ledger.values():
        if call.uniqueid not in log.by_call:
            tally.unseen(call, call.visits)
    return Reconciliation(from_s, to_s, tally.matched, tuple(missing), tuple(unseen),
                          tuple(disagreeing), tally.open, log.bad_lines)


class LedgerCall(Protocol):
    """What comparing needs of the ledger's record of a call: a CallRecord, or the
    lighter CallVisits a scan reads (ledger/reads.py)."""

    @property
    def pbx(self) -> str: ...

    @property
    def uniqueid(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def visits(self) -> tuple[VisitRecord, ...]: ...


class Items(Protocol[T_contra]):
    """Where a tally puts what it finds: a list, or reconcile/listing.py's Listing."""

    def append(self, item: T_contra, /) -> None: ...


@dataclass(slots=True)
class Tally:
    """The reconciliation as it is counted, a call at a time."""

    from_s: int
    to_s: int
    missing_in_ledger: Items[Stint]
    missing_in_queue_log: Items[MissingVisit]
    disagreements: Items[Disagreement]
    matched: int = 0
    open: int = 0
    # The whole of a queue_log read as a stream (scan.py): its period ends at its newest
    # entry, not known yet, so a visit at or after to_s waits here to be judged at the end.
    late: list[tuple[LedgerCall, VisitRecord]] | None = None

    def within(self, epoch_s: int) -> bool:
        return self.from_s <= epoch_s < self.to_s

    def call(self, stints: tuple[Stint, ...], call: LedgerCall | None) -> list[Stint]:
        """One call of queue_log held against the ledger's record of it (None: the
        ledger has none); the stints of it the ledger lacks (what a backfill writes)."""
        if call is None:
            return self.unpaired(stints)
        return _pair_call(call, stints, self)

    def unpaired(self, stints: Iterable[Stint]) -> list[Stint]:
        lacking = []
        for s in stints:
            if not self.within(s.entered_s):
                continue
            if s.is_open:
                self.open += 1          # still waiting: the ledger cannot have it yet
            else:
                lacking.append(s)
                self.missing_in_ledger.append(s)
        return lacking

    def unseen(self, call: LedgerCall, visits: Iterable[VisitRecord]) -> None:
        if call.source == QUEUE_LOG:
            return                      # built from queue_log: nothing to hold it against
        for v in visits:
            at = v.entered_us // US
            if self.late is not None and at >= self.to_s:
                self.late.append((call, v))
            elif self.within(at):
                self.missing_in_queue_log.append(MissingVisit(call.pbx, call.uniqueid, v,
                                                              call.source))

    def judge_late(self) -> None:
        """The visits held in `late`, against the period as it now is."""
        late, self.late = self.late or [], None
        for call, v in late:
            self.unseen(call, [v])

    def pair(self, stint: Stint, visit: VisitRecord) -> None:
        if not self.within(stint.entered_s):
            return
        if stint.is_open:
            self.open += 1              # queue_log is behind the ledger: not a disagreement
            return
        self.matched += 1
        for d in _compare(stint, visit):
            self.disagreements.append(d)


def _pair_call(call: LedgerCall, stints: tuple[Stint, ...], tally: Tally) -> list[Stint]:
    if len(stints) == 1 and len(call.visits) == 1 and stints[0].queue == call.visits[0].queue:
        tally.pair(stints[0], call.visits[0])      # most calls: the loop below, quicker
        return []
    queues = dict.fromkeys([s.queue for s in stints] + [v.queue for v in call.visits])
    lacking: list[Stint] = []
    for queue in queues:
        in_log = [s for s in stints if s.queue == queue]
        in_ledger = sorted((v for v in call.visits if v.queue == queue),
                           key=lambda v: (v.entered_us, v.seq))
        for stint, visit in zip(in_log, in_ledger):
            tally.pair(stint, visit)
        lacking += tally.unpaired(in_log[len(in_ledger):])
        tally.unseen(call, in_ledger[len(in_log):])
    return lacking


def _compare(stint: Stint, visit: VisitRecord) -> list[Disagreement]:
    if stint.outcome == UNOBSERVED:
        return []                       # queue_log lost the end row: the ledger knows more
    if visit.outcome == UNOBSERVED:
        return [_differ(stint, visit, UNOBSERVED, "outcome", visit.outcome, stint.outcome)]
    found = []
    if not judge.same_exit(visit.outcome, stint.outcome):
        found.append(_differ(stint, visit, "outcome", "outcome", visit.outcome, stint.outcome))
    if visit.wait_ms is not None and stint.wait_s is not None \
            and abs(visit.wait_ms / 1000 - stint.wait_s) > WAIT_TOLERANCE_S:
        found.append(_differ(stint, visit, "wait", "wait_s", visit.wait_ms / 1000, stint.wait_s))
    return found


def _differ(stint: Stint, visit: VisitRecord, kind: str, name: str, ledger: str | float | None,
            queue_log: str | int | None) -> Disagreement:
    return Disagreement(stint.callid, stint.queue, visit.seq, kind, name, ledger, queue_log)
