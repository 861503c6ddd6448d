"""The tracker: AMI events in, facts out, through the journeys' state machine.

The theory of operation is ivr/calls/journeys.py's; the rules that judge a
visit and a call are ivr/calls/judge.py's.  Here: which event means which
step for which journey, the members' states, and the resync after a
(re)connect.  No I/O and no clock of its own: events carry their times.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from ivr.ami import events as ev
from ivr.calls import judge
from ivr.calls import records as rec
from ivr.calls.facts import (NOT_ADMITTED_REASONS, Entered, Exited, Fact, JourneyAnswered,
                             JourneyEnded, NotAdmitted, Overflowed, Unobserved)
from ivr.calls.journeys import CallState, Journey, Step, Visit
from ivr.calls.judge import DEFAULT_THRESHOLD_MS, FIRST_LINE, CallOutcome, Outcome

log = logging.getLogger(__name__)

AGENT_STATES = ("available", "ringing", "in_call", "paused", "unavailable")

_QUEUESTATUS_OUTCOME = {
    "TIMEOUT": Outcome.TIMEOUT, "WITHDRAW": Outcome.WITHDRAWN, "FULL": Outcome.EMPTY,
    "JOINEMPTY": Outcome.EMPTY, "LEAVEEMPTY": Outcome.EMPTY,
    "JOINUNAVAIL": Outcome.EMPTY, "LEAVEUNAVAIL": Outcome.EMPTY,
}


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
                 first_line: str = FIRST_LINE, pbx: str = rec.DEFAULT_PBX,
                 overflow_ms: Mapping[str, int] | None = None) -> None:
        self.thresholds_ms = dict(thresholds_ms or {})
        # Each queue's move threshold (overflow_after_seconds), for a Redirect ivr did not
        # name (no IVR_MOVE seen): at it a timeout, before it a transfer.  By default
        # the default config's (config.DEFAULT_QUEUES): first-line at the paid threshold.
        self.overflow_ms = (dict(overflow_ms) if overflow_ms is not None
                            else {first_line: DEFAULT_THRESHOLD_MS})
        self.first_line = first_line
        self.pbx = pbx
        self.journeys: dict[str, Journey] = {}
        self.members: dict[tuple[str, str], Member] = {}
        # Since when (Asterisk's time, us) each member is in its state (Member.state).
        self.since: dict[tuple[str, str], int] = {}
        # Identity set by the dialplan before the caller joins a queue: uid -> (account, area)
        self._identities: dict[str, tuple[str, str]] = {}
        self._prios: dict[str, int] = {}      # QUEUE_PRIO set before the caller joined
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
        if isinstance(event, ev.HangupAsked):
            if (j := self.journeys.get(event.uniqueid)) is not None and j.visit and j.waiting:
                j.visit.hangup_asked = True
            return []
        if isinstance(event, ev.PbxShutdown):
            if (j := self.journeys.get(event.uniqueid)) is not None:
                j.pbx_shutdown = True
            return []
        if isinstance(event, ev.MemberState):
            self._member((event.queue, event.member), event.ts,
                         Member(event.status, event.paused, event.in_call, event.local))
        elif isinstance(event, ev.MemberRemoved):
            self.members.pop((event.queue, event.member), None)
            self.since.pop((event.queue, event.member), None)
        return []

    def _member(self, key: tuple[str, str], at_us: int, member: Member) -> None:
        """A member's news: its state's start moves only when its state changes."""
        known = self.members.get(key)
        if known is None or known.state != member.state or key not in self.since:
            self.since[key] = at_us
        self.members[key] = member

    def _joined(self, e: ev.CallerJoined, timed: bool = True) -> list[Fact]:
        j = self.journeys.get(e.uniqueid)
        if j is None:
            j = self.journeys[e.uniqueid] = Journey(e.uniqueid, e.channel, e.caller, e.ts,
                                                    linkedid=e.linkedid, untimed=not timed)
            j.account, j.area = self._identities.pop(e.uniqueid, ("", ""))
            j.prio = self._prios.pop(e.uniqueid, 0)
            j.placeholder = judge.placeholder_of(e.channel)
        facts: list[Fact] = []
        if (v := j.visit) is not None:      # its channel ran on into another Queue()
            facts += self._resolve(j, self._unsaid(v, e.ts, ran_on=True), v.left_us or e.ts)
        if j.last_exit and j.last_exit[1] != Outcome.ANSWERED and j.last_exit[0] != e.queue:
            facts.append(Overflowed(j.uniqueid, j.last_exit[0], e.queue))
        return facts + [self._enter(j, e.queue, e.ts, place=e.place)]

    def _enter(self, j: Journey, queue: str, at_us: int, recovered: bool = False,
               place: ev.Place = ev.Place()) -> Entered:
        self._visits += 1
        j.step(Step.JOIN)
        j.visit = Visit(self._visits, queue, at_us, place=place)
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
        if j is None or v is None or not j.can(Step.LEAVE):
            return []   # the Leave that follows an Abandon, or a stranger
        j.step(Step.LEAVE)
        v.left_us, v.left_place = e.ts, e.place
        if not timed and e.holdtime is not None:
            v.left_us = _after_holdtime(v.entered_us, e.holdtime)
        if v.move_reason:
            return self._resolve(j, v.move_reason, v.left_us)
        if e.place.context == judge.CALLBACK_KEY_CONTEXT and not e.abandon:
            # Key 1 for a callback: resolved when ivr takes the request (callback_taken),
            # or as exit_with_key when the caller is back in a queue or gone first.
            return self._resolve(j, Outcome.CALLBACK, v.left_us) if v.callback else []
        if v.place.context and e.place.context and e.place.context != v.place.context:
            # No longer where Queue() ran, and not by ivr's move: an Abandon is another
            # client's Redirect, a plain Leave the queue's exit key (the Exten is the key).
            outcome = Outcome.TRANSFERRED if e.abandon else Outcome.EXIT_WITH_KEY
            return self._resolve(j, outcome, v.left_us)
        if e.abandon and v.hangup_asked and not v.redirected:
            return self._resolve(j, Outcome.ABANDONED, v.left_us)   # the caller hung up
        return []

    def _answered(self, e: ev.AgentAnswered, timed: bool = True) -> list[Fact]:
        known = self.members.get((e.queue, e.member))
        if known is not None and not known.in_call:
            # A Local/.../n member's device stays "in use" from ringing to hang-up, and
            # Asterisk sends no QueueMemberStatus when it answers: AgentConnect is the news.
            self._member((e.queue, e.member), e.ts, replace(known, in_call=True))
        j, v = self._visit(e.uniqueid, e.queue)
        if j is None or v is None:
            return []
        at = e.ts if timed else _after_holdtime(v.entered_us, e.holdtime)
        return self._resolve(j, Outcome.ANSWERED, at, e.member)

    def _varset(self, e: ev.VarSet) -> list[Fact]:
        if e.variable in (ev.IVR_ACCOUNT, ev.IVR_AREA):
            self._identify(e)
            return []
        if e.variable == ev.QUEUE_PRIO:
            prio = int(e.value) if e.value.lstrip("-").isdigit() and len(e.value) < 12 else 0
            if (known := self.journeys.get(e.uniqueid)) is not None:
                known.prio = prio
            else:
                self._prios[e.uniqueid] = prio
            return []
        j = self.journeys.get(e.uniqueid)
        v = j.visit if j else None
        if v is None and e.variable == ev.QUEUESTATUS and e.value.lower() in NOT_ADMITTED_REASONS:
            log.info("call %s: not admitted to a queue (%s)", e.uniqueid, e.value)
            return [NotAdmitted(e.uniqueid, e.value.lower())]
        if j is None or v is None:
            return []
        if e.variable == ev.IVR_MOVE:
            v.move_reason = e.value if e.value in judge.MOVE_REASONS else None
            if v.move_reason and j.state is CallState.LEAVING:
                return self._resolve(j, v.move_reason, v.left_us)
            return []
        outcome: str | None = _QUEUESTATUS_OUTCOME.get(e.value)
        if outcome is None or j.state is not CallState.LEAVING:
            return []
        if outcome == Outcome.WITHDRAWN and v.move_reason:
            outcome = v.move_reason
        return self._resolve(j, outcome, v.left_us)

    def callback_taken(self, uniqueid: str) -> list[Fact]:
        """ivr took the caller's request for a callback: the visit it left by key 1 ends
        `callback` (at its Leave).  The dialplan asks after app_queue's Leave, but the
        answer may come before ivr reads that Leave: then the Leave resolves it."""
        j = self.journeys.get(uniqueid)
        v = j.visit if j is not None else None
        if j is None or v is None:
            return []
        v.callback = True
        if j.state is CallState.LEAVING and v.left_place.context == judge.CALLBACK_KEY_CONTEXT:
            return self._resolve(j, Outcome.CALLBACK, v.left_us)
        return []

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
        self._prios.pop(e.uniqueid, None)
        j = self.journeys.pop(e.uniqueid, None)
        if j is None:
            return []
        facts: list[Fact] = []
        if j.visit is not None and j.pbx_shutdown:
            facts.append(self._unobserved(j))
        elif (v := j.visit) is not None:
            ran_on = (v.place.known and e.place.known and e.place.exten != "h"
                      and e.place != v.place)
            facts += self._resolve(j, self._unsaid(v, e.ts, ran_on, e.cause), v.left_us or e.ts)
        last = j.last_exit[1] if j.last_exit else None
        return facts + [self._ended(j, judge.call_outcome(j.answered, last, not j.pbx_shutdown),
                                    e.ts)]

    def _unsaid(self, v: Visit, at_us: int, ran_on: bool, cause: int | None = None) -> str:
        """Why a visit ended that no QUEUESTATUS and no Leave told, when its channel
        next shows up (another Queue(), its Hangup): moved by ivr or by a Redirect, as
        queue_log's moved ABANDON is judged (judge.unanswered_exit); else
        judge.silent_exit."""
        if v.left_place.context == judge.CALLBACK_KEY_CONTEXT:
            return Outcome.CALLBACK if v.callback else Outcome.EXIT_WITH_KEY
        if v.move_reason or v.redirected:
            waited = judge.wait_ms(v.entered_us, v.left_us or at_us)
            limit = self.overflow_ms.get(v.queue)
            return judge.unanswered_exit(v.move_reason, moved_on=True,
                                         overflowed=limit is not None and waited >= limit)
        return judge.silent_exit(v.hangup_asked, ran_on, cause)

    def _ended(self, j: Journey, outcome: str, at_us: int) -> JourneyEnded:
        j.step(Step.END)
        log.info("call %s ended: %s via %s", j.uniqueid, outcome, " > ".join(j.path))
        return JourneyEnded(j.uniqueid, outcome, self._record(j, outcome, at_us))

    def record_of(self, uniqueid: str, now_us: int) -> rec.CallRecord | None:
        """A call in progress as its record would be if it ended now (outcome `in_progress`)."""
        j = self.journeys.get(uniqueid)
        return self._record(j, CallOutcome.IN_PROGRESS, now_us) if j is not None else None

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
        j.step(Step.LOSE)
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
        answered = outcome == Outcome.ANSWERED
        j.step(Step.ANSWER if answered else Step.EXIT)
        j.visit, j.last_exit = None, (v.queue, outcome)
        wait_ms = judge.wait_ms(v.entered_us, at_us)
        within = judge.within_sla(outcome, wait_ms, self.threshold_ms(v.queue))
        j.done.append(rec.VisitRecord(len(j.done) + 1, v.queue, v.entered_us, at_us, outcome,
                                      wait_ms, member))
        log.info("call %s left %s: %s after %.3f s%s", j.uniqueid, v.queue, outcome,
                 wait_ms / 1000, " (within SLA)" if within else "")
        facts: list[Fact] = [Exited(j.uniqueid, v.queue, outcome, wait_ms, v.id, within)]
        if answered and not j.answered:
            j.answered, j.answer = True, (at_us, v.queue, member)
            first = self._journey_answered(j, v.queue, member, at_us)
            j.payable = first.payable
            facts.append(first)
        return facts

    def _journey_answered(self, j: Journey, queue: str, member: str, at_us: int) -> JourneyAnswered:
        first_line = j.first_line_entered_us
        first_wait = None if first_line is None else (at_us - first_line) // 1000
        payable = judge.payable(queue, self.first_line, first_wait, self.threshold_ms(queue),
                                placeholder=bool(j.placeholder))
        return JourneyAnswered(j.uniqueid, queue, member, judge.wait_ms(j.first_entered_us, at_us),
                               payable)

    # -- resync after (re)connect -------------------------------------------

    def resync(self, snap: ev.Snapshot) -> list[Fact]:
        before = self.members
        self.members = {(m.queue, m.member): Member(m.status, m.paused, m.in_call, m.local)
                        for m in snap.members}
        # A state the snapshot finds unchanged keeps its start; another starts now.
        self.since = {key: self.since[key] if key in self.since and key in before
                      and before[key].state == m.state else snap.taken_at
                      for key, m in self.members.items()}
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
        if v is not None and w is not None and v.queue == w.queue and j.waiting:
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
            facts.append(self._ended(j, judge.call_outcome(j.answered, None, end_seen=False),
                                     snap.taken_at))
        return facts

    def _recover(self, w: ev.WaitingCaller, taken_at: int) -> Entered:
        entered = taken_at - w.wait_s * 1_000_000
        j = self.journeys[w.uniqueid] = Journey(w.uniqueid, w.channel, w.caller, entered,
                                                recovered=True,
                                                placeholder=judge.placeholder_of(w.channel))
        return self._enter(j, w.queue, entered, recovered=True)

    # -- live state, read at scrape time ------------------------------------

    def waiting_by_queue(self) -> dict[str, list[Journey]]:
        """Callers waiting now, by queue: one walk over the journeys, whatever the queues."""
        by_queue: dict[str, list[Journey]] = {}
        for j in self.journeys.values():
            v = j.visit
            if v is not None and j.waiting:
                if (callers := by_queue.get(v.queue)) is None:
                    callers = by_queue[v.queue] = []
                callers.append(j)
        return by_queue

    def waiting(self, queue: str) -> list[Journey]:
        return self.waiting_by_queue().get(queue, [])

    def in_order(self, queue: str) -> list[Journey]:
        """Callers waiting in `queue` in the order Asterisk serves them: by QUEUE_PRIO,
        highest first, then by when they joined (app_queue inserts a caller behind
        every caller of its priority or higher)."""
        return sorted(self.waiting(queue), key=lambda j: (-j.prio, j.visit.entered_us
                                                          if j.visit is not None else 0))

    def on_call(self, member: str) -> tuple[int, JourneyAnswered] | None:
        """The call `member` is on now: of the calls with an operator, the latest that
        member answered, as (when, its answer); its wait is from first entering a queue."""
        found: tuple[int, JourneyAnswered] | None = None
        for j in self.journeys.values():
            v = j.current_answer
            if v is None or v.member != member or v.left_us is None:
                continue
            if found is None or v.left_us > found[0]:
                wait_ms = judge.wait_ms(j.first_entered_us, v.left_us)
                found = (v.left_us, JourneyAnswered(j.uniqueid, v.queue, member, wait_ms, j.payable))
        return found

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


def _after_holdtime(entered_us: int, holdtime_s: int) -> int:
    """When a visit timed without Asterisk's Timestamp ended: its join plus Asterisk's
    HoldTime, so its wait is judge.seconds_wait_ms (the journey's precision is seconds)."""
    return entered_us + judge.seconds_wait_ms(holdtime_s) * 1000

