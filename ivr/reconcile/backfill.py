"""Ledger records built from queue_log for what ivr missed: `backfill`.

Whole calls ivr never saw, and the visits it missed of calls it did see, to
the second (source QUEUE_LOG, precision SECONDS), judged by the same rules as
the tracker's (ivr/calls/judge.py).  Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ivr.calls import judge
from ivr.calls.judge import FIRST_LINE, Outcome
from ivr.calls.records import QUEUE_LOG, SECONDS, CallRecord, VisitRecord
from ivr.reconcile.compare import LedgerCall, Reconciliation
from ivr.reconcile.read import QueueLog, Stint
from ivr.reconcile.rows import US


@dataclass(frozen=True, slots=True)
class Backfill:
    """Ledger records built from queue_log: whole calls ivr never saw, and the
    visits it missed of calls it did see, as (pbx, uniqueid, visit)."""

    calls: list[CallRecord]
    visits: list[tuple[str, str, VisitRecord]]

    def add(self, other: Backfill) -> None:
        self.calls.extend(other.calls)
        self.visits.extend(other.visits)

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
    done = Backfill([], [])
    for callid, lacking in by_call.items():
        done.add(for_call(pbx, log.by_call.get(callid, ()), log.last_s.get(callid),
                          ledger.get(callid), lacking, first_line, threshold_s))
    return done


def for_call(pbx: str, stints: tuple[Stint, ...], last_s: int | None, call: LedgerCall | None,
             lacking: list[Stint], first_line: str = FIRST_LINE,
             threshold_s: int = 30) -> Backfill:
    """What one call's lacking stints become: visits added to the ledger's `call`, or,
    without one, the call built whole from all its `stints` (queue_log's whole account
    of it; `last_s` its last row's time) unless one is still open."""
    if not lacking:
        return Backfill([], [])
    if call is not None:
        return Backfill([], _extra_visits(pbx, call, lacking))
    record = _call_record(pbx, stints, last_s, first_line, threshold_s)
    return Backfill([] if record is None else [record], [])


def _extra_visits(pbx: str, call: LedgerCall,
                  lacking: list[Stint]) -> list[tuple[str, str, VisitRecord]]:
    top = max((v.seq for v in call.visits), default=0)
    ordered = sorted(lacking, key=lambda s: (s.entered_s, s.seq))
    return [(pbx, call.uniqueid, _visit(s, top + n)) for n, s in enumerate(ordered, start=1)]


def _visit(s: Stint, seq: int) -> VisitRecord:
    assert s.outcome is not None
    return VisitRecord(seq, s.queue, s.entered_s * US,
                       None if s.left_s is None else s.left_s * US, s.outcome,
                       None if s.wait_s is None else judge.seconds_wait_ms(s.wait_s), s.member)


def _call_record(pbx: str, stints: tuple[Stint, ...], last_s: int | None, first_line: str,
                 threshold_s: int) -> CallRecord | None:
    if not stints or any(s.is_open for s in stints):
        return None
    callid = stints[0].callid
    answer = next((s for s in stints if s.outcome == Outcome.ANSWERED), None)
    return CallRecord(
        pbx=pbx, uniqueid=callid, linkedid=callid, caller=stints[0].caller,
        account="", area="", entered_us=stints[0].entered_s * US,
        ended_us=(stints[-1].entered_s if last_s is None else last_s) * US,
        visits=tuple(_visit(s, s.seq) for s in stints),
        outcome=judge.call_outcome(answer is not None, stints[-1].outcome),
        payable=_payable(stints, answer, first_line, threshold_s),
        source=QUEUE_LOG, precision=SECONDS,
        answered_us=None if answer is None or answer.left_s is None else answer.left_s * US,
        answered_queue=answer.queue if answer else "",
        answered_member=answer.member if answer else "")


def _payable(stints: tuple[Stint, ...], answer: Stint | None, first_line: str,
             threshold_s: int) -> bool:
    """judge.payable, with the wait from first entering first-line to the first answer."""
    if answer is None or answer.queue != first_line:
        return False
    first = next(s for s in stints if s.queue == first_line)
    waited: int | None = None
    if answer is first and answer.wait_s is not None:
        waited = answer.wait_s      # Asterisk's own holdtime for that stay
    elif answer.left_s is not None:
        waited = answer.left_s - first.entered_s
    return judge.payable(answer.queue, first_line,
                         None if waited is None else judge.seconds_wait_ms(waited),
                         threshold_s * 1000)
