"""Call journeys: one per caller, through the queues, as a state machine.

Theory of operation
-------------------
A journey is keyed by the caller channel's Uniqueid, which survives moves
between queues (a Redirect or a dialplan Goto keeps the channel).  Each stay
in a queue is a *visit*:

    (none) --QueueCallerJoin--> WAITING --QueueCallerLeave/Abandon--> LEAVING
    LEAVING --resolved--> (none)        WAITING/LEAVING --AgentConnect--> answered

Asterisk does not say why a caller left.  QueueCallerAbandon is raised for
a hang-up, for the queue timeout and for a withdrawal alike, and
QueueCallerLeave carries no reason; AgentConnect even comes *after* the
Leave.  So leaving is a state of its own, resolved by the next event of that
channel that tells:

    AgentConnect                  -> answered
    VarSet IVR_MOVE=<reason>      -> <reason> (timeout or withdrawn): ivr sets
                                     it just before it moves the caller, so it
                                     can arrive before the Leave as well
    VarSet QUEUESTATUS=TIMEOUT    -> timeout (the dialplan's fallback move)
    VarSet QUEUESTATUS=WITHDRAW   -> withdrawn
    VarSet QUEUESTATUS=*EMPTY...  -> empty
    QueueCallerJoin (elsewhere)   -> transferred, unless a reason was set
    QueueCallerLeave, no Abandon, -> exit_with_key: the caller pressed a key of
      in another context             the queue's `context` (EXITWITHKEY)
    QueueCallerAbandon in another -> transferred: another AMI client redirected
      context, no IVR_MOVE           the caller out of the queue
    Hangup                        -> abandoned
    SoftHangupRequest (SHUTDOWN)  -> the PBX is going away: the exit is
                                     unobserved, never an abandon

Without Asterisk's Timestamp header (manager.conf `timestampevents = no`) an
event is timed when ivr reads it, late by whatever waited in Asterisk's
manager queue.  Then a wait is kept within 1 s of Asterisk's own HoldTime
(whole seconds, on AgentConnect and QueueCallerAbandon) and the call's
precision is seconds: `handle(event, timed=False)`.

A timeout is therefore never counted as an abandon, nor is a caller who left
by a key or was redirected away, although Asterisk raises QueueCallerAbandon
for the redirect too: the channel's Context in the Leave/Abandon tells that it
is no longer where Queue() ran.  Waits are measured from
Asterisk's event timestamps (microseconds), floored to milliseconds, and
judged against the queue's threshold inclusively: 30.000 s is within.

`handle(event)` returns *facts* (Entered, Exited, ...) and nothing else
happens here: metrics, routing and the ledger consume the facts.  The last
fact of a journey, JourneyEnded, carries its whole record (every visit, the
first answer, payable: ivr/calls/records.py), built here from the same
state that judged it.  `resync(snapshot)`
reconciles with what Asterisk reports after a (re)connect, so nothing is
counted twice and nothing stays stuck.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Iterable, Mapping

from ivr.ami import events as ev
from ivr.calls import records as rec

log = logging.getLogger(__name__)

EXIT_WITH_KEY = "exit_with_key"   # queue_log's EXITWITHKEY
OUTCOMES = ("answered", "abandoned", "timeout", "withdrawn", "empty", "transferred",
            EXIT_WITH_KEY)
AGENT_STATES = ("available", "ringing", "in_call", "paused", "unavailable")
DEFAULT_THRESHOLD_MS = 30_000

_QUEUESTATUS_OUTCOME = {
    "TIMEOUT": "timeout", "WITHDRAW": "withdrawn", "FULL": "empty",
    "JOINEMPTY": "empty", "LEAVEEMPTY": "empty",
    "JOINUNAVAIL": "empty", "LEAVEUNAVAIL": "empty",
}


# -- facts: what happened, for metrics and routing ---------------------------

@dataclass(frozen=True, slots=True)
class Entered:
    uniqueid: str
    channel: str
    queue: str
    at_us: int
    visit: int
    recovered: bool = False


@dataclass(frozen=True, slots=True)
class Exited:
    uniqueid: str
    queue: str
    outcome: str
    wait_ms: int
    visit: int
    within_sla: bool = False


@dataclass(frozen=True, slots=True)
class Overflowed:
    uniqueid: str
    from_queue: str
    to_queue: str


@dataclass(frozen=True, slots=True)
class JourneyAnswered:
    uniqueid: str
    queue: str
    member: str
    wait_ms: int          # from first entering any queue
    payable: bool


@dataclass(frozen=True, slots=True)
class JourneyEnded:
    uniqueid: str
    outcome: str          # answered, abandoned, unanswered, unknown
    record: rec.CallRecord   # the whole call, for the ledger


@dataclass(frozen=True, slots=True)
class Unobserved:
    """The caller left `queue` while ivr was not connected."""

    uniqueid: str
    queue: str
    visit: int


Fact = Entered | Exited | Overflowed | JourneyAnswered | JourneyEnded | Unobserved


# -- state ------------------------------------------------------------------

class VisitState(Enum):
    WAITING = "waiting"
    LEAVING = "leaving"


@dataclass(slots=True)
class Visit:
    id: int
    queue: str
    entered_us: int
    state: VisitState = VisitState.WAITING
    left_us: int = 0
    move_reason: str | None = None
    context: str = ""              # where Queue() ran (QueueCallerJoin's Context)


@dataclass(slots=True)
class Journey:
    uniqueid: str
    channel: str
    caller: str
    first_entered_us: int
    first_line_entered_us: int | None = None
    visit: Visit | None = None
    answered: bool = False
    last_exit: tuple[str, str] | None = None      # (queue, outcome)
    path: list[str] = field(default_factory=list)
    account: str = ""
    area: str = ""
    pbx_shutdown: bool = False     # hung up by the PBX stopping, not by the caller
    linkedid: str = ""
    recovered: bool = False        # first seen in a snapshot: its times are whole seconds
    done: list[rec.VisitRecord] = field(default_factory=list)   # finished visits, in order
    answer: tuple[int, str, str] | None = None   # the first answer: (at_us, queue, member)
    payable: bool = False
    untimed: bool = False          # some of its events had no Timestamp: seconds, not ms


@dataclass(frozen=True, slots=True)
class Member:
    status: int
    paused: bool
    in_call: bool
    local: bool = False

    @property
    def state(self) -> str:
        if self.status in (0, 4, 5):
            return "unavailable"
        if self.status in (6, 7):
            return "ringing"
        if self.in_call:
            return "in_call"
        if self.status in (2, 3, 8):
            # A Local/ member's device is "in use" as soon as the queue dials it: the
            # Local channel is up while the phone behind it rings.  Only InCall says
            # that it took a call of the queue's.
            return "ringing" if self.local else "in_call"
        return "paused" if self.paused else "available"


class Tracker:
    def __init__(self, thresholds_ms: Mapping[str, int] | None = None,
                 first_line: str = rec.FIRST_LINE, pbx: str = rec.DEFAULT_PBX) -> None:
        self.thresholds_ms = dict(thresholds_ms or {})
        self.first_line = first_line
        self.pbx = pbx
        self.journeys: dict[str, Journey] = {}
        self.members: dict[tuple[str, str], Member] = {}
        # Identity set by the dialplan before the caller joins a queue: uid -> (account, area)
        self._identities: dict[str, tuple[str, str]] = {}
        self._visits = 0

    def threshold_ms(self, queue: str) -> int:
        return self.thresholds_ms.get(queue, DEFAULT_THRESHOLD_MS)

    # -- events -------------------------------------------------------------

    def handle(self, event: ev.Event, timed: bool = True) -> list[Fact]:
        """The facts `event` makes true.  `timed`: it carried Asterisk's Timestamp."""
        if not timed:
            self._untimed(event)
        if isinstance(event, ev.CallerJoined):
            return self._joined(event, timed)
        if isinstance(event, ev.CallerLeft):
            return self._left(event, timed)
        if isinstance(event, ev.AgentAnswered):
            return self._answered(event, timed)
        if isinstance(event, ev.VarSet):
            return self._varset(event)
        if isinstance(event, ev.Hangup):
            return self._hangup(event)
        if isinstance(event, ev.PbxShutdown):
            if (j := self.journeys.get(event.uniqueid)) is not None:
                j.pbx_shutdown = True
            return []
        if isinstance(event, ev.MemberState):
            self.members[(event.queue, event.member)] = Member(event.status, event.paused,
                                                               event.in_call, event.local)
        elif isinstance(event, ev.MemberRemoved):
            self.members.pop((event.queue, event.member), None)
        return []

    def _joined(self, e: ev.CallerJoined, timed: bool = True) -> list[Fact]:
        j = self.journeys.get(e.uniqueid)
        if j is None:
            j = self.journeys[e.uniqueid] = Journey(e.uniqueid, e.channel, e.caller, e.ts,
                                                    linkedid=e.linkedid, untimed=not timed)
            j.account, j.area = self._identities.pop(e.uniqueid, ("", ""))
        facts: list[Fact] = []
        if j.visit is not None:
            reason = j.visit.move_reason or "transferred"
            facts += self._resolve(j, reason, j.visit.left_us or e.ts)
        if j.last_exit and j.last_exit[1] != "answered" and j.last_exit[0] != e.queue:
            facts.append(Overflowed(j.uniqueid, j.last_exit[0], e.queue))
        return facts + [self._enter(j, e.queue, e.ts, context=e.context)]

    def _enter(self, j: Journey, queue: str, at_us: int, recovered: bool = False,
               context: str = "") -> Entered:
        self._visits += 1
        j.visit = Visit(self._visits, queue, at_us, context=context)
        j.path.append(queue)
        if queue == self.first_line and j.first_line_entered_us is None:
            j.first_line_entered_us = at_us
        log.info("call %s (%s) entered %s", j.uniqueid, j.caller, queue)
        return Entered(j.uniqueid, j.channel, queue, at_us, self._visits, recovered)

    def _untimed(self, event: ev.Event) -> None:
        uniqueid = getattr(event, "uniqueid", None)
        if uniqueid is not None and (j := self.journeys.get(uniqueid)) is not None:
            j.untimed = True

    def _left(self, e: ev.CallerLeft, timed: bool = True) -> list[Fact]:
        j, v = self._visit(e.uniqueid, e.queue)
        if j is None or v is None or v.state is VisitState.LEAVING:
            return []   # the Leave that follows an Abandon, or a stranger
        v.state, v.left_us = VisitState.LEAVING, e.ts
        if not timed and e.holdtime is not None:
            v.left_us = _within_holdtime(v.entered_us, e.ts, e.holdtime)
        if v.move_reason:
            return self._resolve(j, v.move_reason, v.left_us)
        if v.context and e.context and e.context != v.context:
            # No longer where Queue() ran, and not by ivr's move: an Abandon is another
            # client's Redirect, a plain Leave the queue's exit key (the Exten is the key).
            return self._resolve(j, "transferred" if e.abandon else EXIT_WITH_KEY, v.left_us)
        return []

    def _answered(self, e: ev.AgentAnswered, timed: bool = True) -> list[Fact]:
        known = self.members.get((e.queue, e.member))
        if known is not None and not known.in_call:
            # A Local/.../n member's device stays "in use" from ringing to hang-up, and
            # Asterisk sends no QueueMemberStatus when it answers: AgentConnect is the news.
            self.members[(e.queue, e.member)] = replace(known, in_call=True)
        j, v = self._visit(e.uniqueid, e.queue)
        if j is None or v is None:
            return []
        at = e.ts if timed else _within_holdtime(v.entered_us, e.ts, e.holdtime)
        return self._resolve(j, "answered", at, e.member)

    def _varset(self, e: ev.VarSet) -> list[Fact]:
        if e.variable in (ev.IVR_ACCOUNT, ev.IVR_AREA):
            self._identify(e)
            return []
        j = self.journeys.get(e.uniqueid)
        v = j.visit if j else None
        if j is None or v is None:
            return []
        if e.variable == ev.IVR_MOVE:
            v.move_reason = e.value if e.value in ("timeout", "withdrawn") else None
            if v.move_reason and v.state is VisitState.LEAVING:
                return self._resolve(j, v.move_reason, v.left_us)
            return []
        outcome = _QUEUESTATUS_OUTCOME.get(e.value)
        if outcome is None or v.state is not VisitState.LEAVING:
            return []
        if outcome == "withdrawn" and v.move_reason:
            outcome = v.move_reason
        return self._resolve(j, outcome, v.left_us)

    def _identify(self, e: ev.VarSet) -> None:
        j = self.journeys.get(e.uniqueid)
        account, area = (j.account, j.area) if j else self._identities.get(e.uniqueid, ("", ""))
        if e.variable == ev.IVR_ACCOUNT:
            account = e.value
        else:
            area = e.value
        if j is not None:
            j.account, j.area = account, area
        else:
            self._identities[e.uniqueid] = (account, area)

    def _hangup(self, e: ev.Hangup) -> list[Fact]:
        self._identities.pop(e.uniqueid, None)
        j = self.journeys.pop(e.uniqueid, None)
        if j is None:
            return []
        facts: list[Fact] = []
        if j.visit is not None and j.pbx_shutdown:
            facts.append(self._unobserved(j))
        elif j.visit is not None:
            reason = j.visit.move_reason or "abandoned"
            facts += self._resolve(j, reason, j.visit.left_us or e.ts)
        return facts + [self._ended(j, _journey_outcome(j), e.ts)]

    def _ended(self, j: Journey, outcome: str, at_us: int) -> JourneyEnded:
        log.info("call %s ended: %s via %s", j.uniqueid, outcome, " > ".join(j.path))
        return JourneyEnded(j.uniqueid, outcome, self._record(j, outcome, at_us))

    def record_of(self, uniqueid: str, now_us: int) -> rec.CallRecord | None:
        """A call in progress as its record would be if it ended now (outcome `in_progress`)."""
        j = self.journeys.get(uniqueid)
        return self._record(j, "in_progress", now_us) if j is not None else None

    def _record(self, j: Journey, outcome: str, at_us: int) -> rec.CallRecord:
        at, queue, member = j.answer if j.answer is not None else (None, "", "")
        return rec.CallRecord(
            self.pbx, j.uniqueid, j.linkedid or j.uniqueid, j.caller, j.account, j.area,
            j.first_entered_us, at_us, tuple(j.done), outcome, j.payable,
            rec.RESYNC if j.recovered else rec.LIVE,
            rec.SECONDS if j.recovered or j.untimed else rec.MS, at, queue, member)

    def _unobserved(self, j: Journey) -> Unobserved:
        """The current visit ended while ivr was not looking."""
        v = j.visit
        assert v is not None
        j.visit = None
        j.done.append(rec.VisitRecord(len(j.done) + 1, v.queue, v.entered_us, None,
                                      rec.UNOBSERVED, None))
        return Unobserved(j.uniqueid, v.queue, v.id)

    def _visit(self, uniqueid: str, queue: str) -> tuple[Journey | None, Visit | None]:
        j = self.journeys.get(uniqueid)
        if j is None or j.visit is None or j.visit.queue != queue:
            return j, None
        return j, j.visit

    # -- resolution: the one place a visit ends -----------------------------

    def _resolve(self, j: Journey, outcome: str, at_us: int, member: str = "") -> list[Fact]:
        v = j.visit
        assert v is not None
        j.visit, j.last_exit = None, (v.queue, outcome)
        wait_ms = max(0, at_us - v.entered_us) // 1000
        within = outcome == "answered" and wait_ms <= self.threshold_ms(v.queue)
        j.done.append(rec.VisitRecord(len(j.done) + 1, v.queue, v.entered_us, at_us, outcome,
                                      wait_ms, member))
        log.info("call %s left %s: %s after %.3f s%s", j.uniqueid, v.queue, outcome,
                 wait_ms / 1000, " (within SLA)" if within else "")
        facts: list[Fact] = [Exited(j.uniqueid, v.queue, outcome, wait_ms, v.id, within)]
        if outcome == "answered" and not j.answered:
            j.answered, j.answer = True, (at_us, v.queue, member)
            answered = self._journey_answered(j, v.queue, member, at_us)
            j.payable = answered.payable
            facts.append(answered)
        return facts

    def _journey_answered(self, j: Journey, queue: str, member: str, at_us: int) -> JourneyAnswered:
        payable = False
        if queue == self.first_line and j.first_line_entered_us is not None:
            first_wait = (at_us - j.first_line_entered_us) // 1000
            payable = first_wait <= self.threshold_ms(queue)
        wait_ms = max(0, at_us - j.first_entered_us) // 1000
        return JourneyAnswered(j.uniqueid, queue, member, wait_ms, payable)

    # -- resync after (re)connect -------------------------------------------

    def resync(self, snap: ev.Snapshot) -> list[Fact]:
        self.members = {(m.queue, m.member): Member(m.status, m.paused, m.in_call, m.local)
                        for m in snap.members}
        facts: list[Fact] = []
        waiting = {w.uniqueid: w for w in snap.waiting}
        for j in list(self.journeys.values()):
            facts += self._reconcile(j, waiting.get(j.uniqueid), snap)
        for w in waiting.values():
            if w.uniqueid not in self.journeys:
                facts.append(self._recover(w, snap.taken_at))
        return facts

    def _reconcile(self, j: Journey, w: ev.WaitingCaller | None, snap: ev.Snapshot) -> list[Fact]:
        v = j.visit
        if v is not None and w is not None and v.queue == w.queue and v.state is VisitState.WAITING:
            return []
        if (v.entered_us if v is not None else j.first_entered_us) >= snap.taken_at:
            return []   # seen live after the snapshot was asked for: newer than it
        facts: list[Fact] = []
        if v is not None:
            facts.append(self._unobserved(j))
        if w is not None:
            j.recovered = True     # this visit's entry is known to the second only
            facts.append(self._enter(j, w.queue, snap.taken_at - w.wait_s * 1_000_000, True))
        elif j.uniqueid not in snap.live_channels:
            del self.journeys[j.uniqueid]
            facts.append(self._ended(j, "answered" if j.answered else "unknown", snap.taken_at))
        return facts

    def _recover(self, w: ev.WaitingCaller, taken_at: int) -> Entered:
        entered = taken_at - w.wait_s * 1_000_000
        j = self.journeys[w.uniqueid] = Journey(w.uniqueid, w.channel, w.caller, entered,
                                                recovered=True)
        return self._enter(j, w.queue, entered, recovered=True)

    # -- live state, read at scrape time ------------------------------------

    def waiting_by_queue(self) -> dict[str, list[Journey]]:
        """Callers waiting now, by queue: one walk over the journeys, whatever the queues."""
        by_queue: dict[str, list[Journey]] = {}
        for j in self.journeys.values():
            v = j.visit
            if v is not None and v.state is VisitState.WAITING:
                if (callers := by_queue.get(v.queue)) is None:
                    callers = by_queue[v.queue] = []
                callers.append(j)
        return by_queue

    def waiting(self, queue: str) -> list[Journey]:
        return self.waiting_by_queue().get(queue, [])

    def agent_counts_by_queue(self, queues: Iterable[str] = ()) -> dict[str, dict[str, int]]:
        """Members by queue and state: every state present, at 0 if none, and
        every queue in `queues` present even without members."""
        by_queue = {queue: dict.fromkeys(AGENT_STATES, 0) for queue in queues}
        for (queue, _), member in self.members.items():
            counts = by_queue.get(queue)
            if counts is None:
                counts = by_queue[queue] = dict.fromkeys(AGENT_STATES, 0)
            counts[member.state] += 1
        return by_queue

    def agent_counts(self, queue: str) -> dict[str, int]:
        return self.agent_counts_by_queue((queue,))[queue]


def _within_holdtime(entered_us: int, at_us: int, holdtime_s: int) -> int:
    """`at_us`, moved as little as needed for the wait to lie within 1 s of Asterisk's
    HoldTime: time(NULL) at the end minus time(NULL) at the join, so the true wait is
    within a second of it either way."""
    low = entered_us + max(0, holdtime_s - 1) * 1_000_000
    high = entered_us + (holdtime_s + 1) * 1_000_000
    return min(max(at_us, low), high)


def _journey_outcome(j: Journey) -> str:
    if j.answered:
        return "answered"
    if j.pbx_shutdown:
        return "unknown"
    return "abandoned" if j.last_exit and j.last_exit[1] == "abandoned" else "unanswered"
