"""The money rules: how a stay in a queue and a whole call are judged, and
whether a call is payable.  The only copy: the tracker (ivr/calls/tracker.py)
judges what it sees over AMI with these functions, and the queue_log
reconciliation (ivr/reconcile/) judges Asterisk's own account with the same
ones, so the two can only disagree about facts, never about rules.

The functions are pure and take plain values (outcomes, waits, thresholds);
waits are whole milliseconds, judged against a threshold inclusively: 30.000 s
is within 30 s.  The outcome strings are a contract (the ledger, the metrics'
labels, the README): the enums below name them, their values never change.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How one visit (a stay in one queue) ended."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"        # the caller hung up while waiting
    TIMEOUT = "timeout"            # moved on at the queue's threshold
    WITHDRAWN = "withdrawn"        # moved by hand
    EMPTY = "empty"                # no member to wait for (JOINEMPTY, LEAVEEMPTY, FULL...)
    TRANSFERRED = "transferred"    # taken out of the queue by someone else
    EXIT_WITH_KEY = "exit_with_key"   # queue_log's EXITWITHKEY: a key of the queue's context
    CALLBACK = "callback"          # the caller pressed 1 for a callback and ivr took it (its
                                   # queue_log row is EXITWITHKEY); a placeholder keeps the place
    UNKNOWN_EXIT = "unknown_exit"  # left unanswered, and nothing ivr could see said why


class CallOutcome(StrEnum):
    """How a whole call (a journey through the queues) ended."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"        # its last queue ended with the caller hanging up
    UNANSWERED = "unanswered"      # it left the queues otherwise, never answered
    CALLBACK = "callback"          # it left its queue for a callback (ivr/callbacks/)
    UNKNOWN = "unknown"            # its end was not seen (the PBX stopped, ivr was away)
    IN_PROGRESS = "in_progress"    # not over yet (a record asked for early)


OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)   # the visit outcomes, in order
MOVE_REASONS = (Outcome.TIMEOUT, Outcome.WITHDRAWN)   # what ivr's moves may give as a reason
FIRST_LINE = "first-line"          # the queue a call's payability is judged in
DEFAULT_THRESHOLD_MS = 30_000      # a queue's SLA threshold when none is configured


def wait_ms(entered_us: int, left_us: int) -> int:
    """A wait in whole milliseconds, floored, never below 0."""
    return max(0, left_us - entered_us) // 1000


def seconds_wait_ms(wait_s: int) -> int:
    """A wait known only in Asterisk's whole seconds (AMI's HoldTime when the events
    carry no Timestamp; queue_log's holdtime and waittime), judged as Asterisk judges
    it: seconds x 1000.  HoldTime is time(NULL) at the end minus time(NULL) at the
    join, and app_queue counts a call within its service level when HoldTime <=
    servicelevel: 31 s is over 30 s, never a lower bound taken in the contractor's
    favour."""
    return wait_s * 1000


def within_sla(outcome: str, waited_ms: int, threshold_ms: int) -> bool:
    """A visit answered within its queue's threshold, inclusively."""
    return outcome == Outcome.ANSWERED and waited_ms <= threshold_ms


def unanswered_exit(move_reason: str | None, moved_on: bool, overflowed: bool = False) -> str:
    """How a visit ended that was left without an answer and without a word from
    Asterisk on why: ivr's own move reason first; else a caller who went on to
    another queue was moved (at the overflow threshold: a timeout, else a
    transfer); else the caller hung up.  A move is never an abandon."""
    if move_reason:
        return move_reason
    if not moved_on:
        return Outcome.ABANDONED
    return Outcome.TIMEOUT if overflowed else Outcome.TRANSFERRED


# Q.850 causes that a caller's own hang-up leaves on its channel: none given (a BYE,
# as Asterisk 22's PJSIP reports it) and 19, no answer (a CANCEL before the PBX
# answered).  A channel the dialplan ends (Hangup(), falling off its end) says 16.
CALLER_HANGUP_CAUSES = frozenset({0, 19})


def silent_exit(hung_up: bool, ran_on: bool, cause: int | None) -> Outcome:
    """How a visit ended that Asterisk left without QUEUESTATUS and ivr did not move
    (the AMI user lacks the `dialplan` read class, where QUEUESTATUS comes from; or
    nothing set it, as for a caller's hang-up).  Asterisk raises QueueCallerAbandon
    for a hang-up, a timeout, LEAVEEMPTY and a withdrawal alike, so what tells is
    the caller's channel, in this order:

    - `hung_up`: its far end hung up while it waited (AMI's HangupRequest comes
      before the QueueCallerAbandon): abandoned;
    - `ran_on`: it ran more dialplan after Queue() returned (its Hangup at another
      Context, Exten or Priority than Queue()'s, not the `h` extension; or a
      QueueCallerJoin): a timeout.  LEAVEEMPTY and a withdrawal run on too, and
      only QUEUESTATUS tells them apart, so without it they count as timeouts;
    - it ended where Queue() ran with a caller's hang-up cause (CALLER_HANGUP_CAUSES):
      abandoned;
    - else unknown_exit: never an abandon, never payable, counted on its own."""
    if hung_up:
        return Outcome.ABANDONED
    if ran_on:
        return Outcome.TIMEOUT
    if cause in CALLER_HANGUP_CAUSES:
        return Outcome.ABANDONED
    return Outcome.UNKNOWN_EXIT


def call_outcome(answered: bool, last_outcome: str | None, end_seen: bool = True) -> CallOutcome:
    """A call's outcome from whether it was ever answered and how its last visit
    ended: an abandon only when the last queue ended with a hang-up."""
    if answered:
        return CallOutcome.ANSWERED
    if not end_seen:
        return CallOutcome.UNKNOWN
    if last_outcome == Outcome.ABANDONED:
        return CallOutcome.ABANDONED
    if last_outcome == Outcome.CALLBACK:
        return CallOutcome.CALLBACK
    return CallOutcome.UNANSWERED


def payable(answered_queue: str | None, first_line: str, first_line_wait_ms: int | None,
            threshold_ms: int, placeholder: bool = False) -> bool:
    """A call is payable when its first answer was in first-line, within the
    threshold (inclusive) of first entering first-line.  `first_line_wait_ms` is
    that wait, None when it is not known.  A callback's placeholder (a Local
    channel holding a caller's place, ivr/callbacks/) is never payable: its
    answer is an operator calling the customer back, wherever it waited."""
    if placeholder or answered_queue != first_line or first_line_wait_ms is None:
        return False
    return first_line_wait_ms <= threshold_ms


def same_exit(ours: str, queue_logs: str | None) -> bool:
    """Whether ivr's outcome of a visit and queue_log's say the same: queue_log writes
    EXITWITHKEY for a caller who pressed 1 for a callback, ivr `callback`."""
    return ours == queue_logs or (ours == Outcome.CALLBACK and queue_logs == Outcome.EXIT_WITH_KEY)


# A callback: the queue's `context` the caller's key 1 leads to, and the context whose
# Local channels hold a place for the customer (Local/cbIDnN@ivr-callback-place;2).
CALLBACK_KEY_CONTEXT = "ivr-callback-key"
CALLBACK_PLACE_CONTEXT = "ivr-callback-place"


def placeholder_of(channel: str) -> str:
    """The callback id a placeholder channel holds a place for ("" for any other)."""
    head, at, rest = channel.partition("@")
    if not at or not rest.startswith(CALLBACK_PLACE_CONTEXT + "-") or not head.startswith("Local/cb"):
        return ""
    return head[len("Local/cb"):].rpartition("n")[0]
