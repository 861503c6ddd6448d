"""Call journeys: one per caller, through the queues, as a state machine.

Theory of operation
-------------------
A journey is keyed by the caller channel's Uniqueid, which survives moves
between queues (a Redirect or a dialplan Goto keeps the channel).  Each stay
in a queue is a *visit*, and the journey is in one CallState at a time:

    NEW, BETWEEN, WITH_OPERATOR --JOIN (QueueCallerJoin)--> WAITING
    WAITING --LEAVE (QueueCallerLeave/Abandon)--> LEAVING
    WAITING, LEAVING --ANSWER (AgentConnect)--> WITH_OPERATOR
    WAITING, LEAVING --EXIT (resolved, not answered)--> BETWEEN
    WAITING, LEAVING --LOSE (ended while ivr was away)--> BETWEEN
    BETWEEN, WITH_OPERATOR --END (Hangup, or gone from a snapshot)--> ENDED

TRANSITIONS below is that table, and `Journey.step` the one place that
applies it: a step the table lacks is a bug in the tracker, not the PBX's
doing.  A journey has a current visit exactly while WAITING or LEAVING; the
caller is "in a queue" then, "waiting" only while WAITING, and "with an
operator" from an answer until it joins a queue again or hangs up.

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
    QueueCallerLeave into         -> callback, once ivr took the request (the
      ivr-callback-key               dialplan asks after the key); exit_with_key
                                     if the caller is back in a queue or gone first
    QueueCallerLeave, no Abandon, -> exit_with_key: the caller pressed a key of
      in another context             the queue's `context` (EXITWITHKEY)
    QueueCallerAbandon in another -> transferred: another AMI client redirected
      context, no IVR_MOVE           the caller out of the queue
    HangupRequest, then Abandon   -> abandoned: the caller's end hung up while
                                     it waited (Asterisk sends it first)
    SoftHangupRequest (SHUTDOWN)  -> the PBX is going away: the exit is
                                     unobserved, never an abandon

  and, when none of those came (an AMI user without the `dialplan` class sees
  no VarSet at all), the channel's next sign of life (judge.silent_exit):

    left from another place of    -> moved by a Redirect: timeout at the
      the same context (Leave)       queue's move threshold, else transferred
    QueueCallerJoin               -> timeout: the channel ran on into Queue()
    Hangup elsewhere (not `h`)    -> timeout: it ran on (Wait, Playback...)
    Hangup where Queue() ran      -> abandoned with a caller's cause (0: a BYE,
                                     19: a CANCEL), else unknown_exit

Without Asterisk's Timestamp header (manager.conf `timestampevents = no`) an
event is timed when ivr reads it, late by whatever waited in Asterisk's
manager queue.  Then a wait that Asterisk states (HoldTime, whole seconds, on
AgentConnect and QueueCallerAbandon) is judged as Asterisk judges it,
HoldTime x 1000 ms (judge.seconds_wait_ms), and the call's precision is seconds:
`handle(event, timed=False)`.

A timeout is therefore never counted as an abandon, nor is a caller who left
by a key or was redirected away, although Asterisk raises QueueCallerAbandon
for the redirect too: the channel's Context in the Leave/Abandon tells that it
is no longer where Queue() ran.  Waits are measured from
Asterisk's event timestamps (microseconds), floored to milliseconds, and
judged against the queue's threshold inclusively: 30.000 s is within.

The tracker (ivr/calls/tracker.py) feeds the events through this machine.
`handle(event)` returns *facts* (ivr/calls/facts.py: Entered, Exited, ...)
and nothing else happens there: metrics, routing and the ledger consume the
facts.  The outcome and payable rules are ivr/calls/judge.py's, the only
copy.  The last fact of a journey, JourneyEnded, carries its whole record
(every visit, the first answer, payable: ivr/calls/records.py), built from
the same state that judged it.  `resync(snapshot)` reconciles with what
Asterisk reports after a (re)connect, so nothing is counted twice and
nothing stays stuck.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ivr.ami.events import Place
from ivr.calls import records as rec


class CallState(Enum):
    NEW = "new"                    # created by its first join, not in a queue yet
    WAITING = "waiting"            # in a queue, waiting
    LEAVING = "leaving"            # left a queue; why is not known yet
    WITH_OPERATOR = "with_operator"   # answered, not back in a queue
    BETWEEN = "between"            # left a queue unanswered, still on the line
    ENDED = "ended"


class Step(Enum):
    """What happens to a journey, as the tracker tells it from the events."""

    JOIN = "join"
    LEAVE = "leave"
    ANSWER = "answer"
    EXIT = "exit"                  # a visit resolved without an answer
    LOSE = "lose"                  # a visit that ended unseen
    END = "end"


_S = CallState
TRANSITIONS: dict[tuple[CallState, Step], CallState] = {
    (_S.NEW, Step.JOIN): _S.WAITING,
    (_S.BETWEEN, Step.JOIN): _S.WAITING,
    (_S.WITH_OPERATOR, Step.JOIN): _S.WAITING,
    (_S.WAITING, Step.LEAVE): _S.LEAVING,
    (_S.WAITING, Step.ANSWER): _S.WITH_OPERATOR,
    (_S.LEAVING, Step.ANSWER): _S.WITH_OPERATOR,
    (_S.WAITING, Step.EXIT): _S.BETWEEN,
    (_S.LEAVING, Step.EXIT): _S.BETWEEN,
    (_S.WAITING, Step.LOSE): _S.BETWEEN,
    (_S.LEAVING, Step.LOSE): _S.BETWEEN,
    (_S.BETWEEN, Step.END): _S.ENDED,
    (_S.WITH_OPERATOR, Step.END): _S.ENDED,
}
IN_QUEUE = frozenset({_S.WAITING, _S.LEAVING})


class BadStep(RuntimeError):
    """A step TRANSITIONS does not allow from the journey's state: a tracker bug."""


@dataclass(slots=True)
class Visit:
    id: int
    queue: str
    entered_us: int
    left_us: int = 0
    move_reason: str | None = None
    place: Place = Place()         # where Queue() ran (QueueCallerJoin's)
    left_place: Place = Place()    # where the channel was when it left (the Leave's)
    hangup_asked: bool = False     # its far end hung up while it waited (HangupRequest)
    callback: bool = False         # ivr took the caller's request for a callback (key 1)

    @property
    def redirected(self) -> bool:
        """It left from another place of Queue()'s context: something (a Redirect)
        moved it there.  Another context is told at once (tracker._left)."""
        return self.place.known and self.left_place.known and self.left_place != self.place


@dataclass(slots=True)
class Journey:
    uniqueid: str
    channel: str
    caller: str
    first_entered_us: int
    first_line_entered_us: int | None = None
    visit: Visit | None = None     # the current visit: set exactly while in a queue
    state: CallState = CallState.NEW
    answered: bool = False         # ever: the call's outcome, not where it is now
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
    placeholder: str = ""          # the callback id, when this is a callback's placeholder
    prio: int = 0                  # its QUEUE_PRIO: its place among the waiting

    def can(self, step: Step) -> bool:
        return (self.state, step) in TRANSITIONS

    def step(self, step: Step) -> None:
        """The one place the state changes, by the table."""
        to = TRANSITIONS.get((self.state, step))
        if to is None:
            raise BadStep(f"call {self.uniqueid}: {step.name} from {self.state.name}")
        self.state = to

    @property
    def waiting(self) -> bool:
        """Waiting in a queue now (not leaving it)."""
        return self.state is CallState.WAITING

    @property
    def in_queue(self) -> bool:
        """In a queue now, waiting or leaving it."""
        return self.state in IN_QUEUE

    @property
    def with_operator(self) -> bool:
        """Answered, and not in a queue again since."""
        return self.state is CallState.WITH_OPERATOR

    @property
    def queue(self) -> str | None:
        """The queue it is in now, if any."""
        return self.visit.queue if self.visit is not None else None

    def queue_wait_us(self, now_us: int) -> int:
        """How long it has been in its current queue at `now_us`; 0 when in none."""
        return now_us - self.visit.entered_us if self.visit is not None else 0

    @property
    def current_answer(self) -> rec.VisitRecord | None:
        """While with an operator: its last visit, the one that operator answered."""
        return self.done[-1] if self.with_operator and self.done else None
