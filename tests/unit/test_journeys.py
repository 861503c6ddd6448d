"""The journey state machine on hand-built events, in the orders Asterisk 22 emits them."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ivr.ami import events as ev
from ivr.calls.facts import (Entered, Exited, JourneyAnswered, JourneyEnded, NotAdmitted,
                             Overflowed, Unobserved)
from ivr.calls.journeys import TRANSITIONS, BadStep, CallState, Journey, Step
from ivr.calls.tracker import Tracker
from ivr.config import DEFAULT_QUEUES

S = 1_000_000  # microseconds in a second
T0 = 1_795_530_000 * S
UID, CHAN = "1795530000.1", "PJSIP/anonymous-00000001"


def join(queue: str, at: float, uid: str = UID) -> ev.CallerJoined:
    return ev.CallerJoined(T0 + round(at * S), uid, CHAN, "79001", queue)


def leave(queue: str, at: float, abandon: bool = False, uid: str = UID) -> ev.CallerLeft:
    return ev.CallerLeft(T0 + round(at * S), uid, queue, abandon)


def connect(queue: str, at: float, uid: str = UID) -> ev.AgentAnswered:
    return ev.AgentAnswered(T0 + round(at * S), uid, queue, "op1", int(at))


def var(name: str, value: str, at: float, uid: str = UID) -> ev.VarSet:
    return ev.VarSet(T0 + round(at * S), uid, name, value)


def hangup(at: float, uid: str = UID, place: ev.Place = ev.Place(),
           cause: int | None = None) -> ev.Hangup:
    return ev.Hangup(T0 + round(at * S), uid, place, cause)


def asked(at: float, uid: str = UID) -> ev.HangupAsked:
    """HangupRequest: the caller's end hung up (Asterisk sends it before the Abandon)."""
    return ev.HangupAsked(T0 + round(at * S), uid)


def run(*events: ev.Event, tracker: Tracker | None = None) -> list[object]:
    tracker = tracker or Tracker()
    return [fact for e in events for fact in tracker.handle(e)]


def exits(facts: Sequence[object]) -> list[tuple[str, str, int]]:
    return [(f.queue, f.outcome, f.wait_ms) for f in facts if isinstance(f, Exited)]


def test_answer_comes_after_leave_and_is_within_sla() -> None:
    facts = run(join("first-line", 0), leave("first-line", 3.0001), connect("first-line", 3.0002),
                hangup(20))
    assert exits(facts) == [("first-line", "answered", 3000)]
    answered = [f for f in facts if isinstance(f, JourneyAnswered)]
    assert answered[0].payable and answered[0].wait_ms == 3000
    assert [f.outcome for f in facts if isinstance(f, JourneyEnded)] == ["answered"]


def test_threshold_is_inclusive_to_the_millisecond() -> None:
    at_limit = run(join("first-line", 0), leave("first-line", 30.0009), connect("first-line", 30.0009))
    over = run(join("first-line", 0), leave("first-line", 30.001), connect("first-line", 30.001))
    assert [f.within_sla for f in at_limit if isinstance(f, Exited)] == [True]
    assert [f.within_sla for f in over if isinstance(f, Exited)] == [False]
    assert [f.payable for f in over if isinstance(f, JourneyAnswered)] == [False]


def test_hangup_while_waiting_is_abandoned() -> None:
    facts = run(join("first-line", 0), asked(7.999), leave("first-line", 8, abandon=True),
                leave("first-line", 8), hangup(8.01))
    assert exits(facts) == [("first-line", "abandoned", 8000)]
    assert [f.outcome for f in facts if isinstance(f, JourneyEnded)] == ["abandoned"]


def test_queue_timeout_is_never_an_abandon() -> None:
    """The dialplan fallback: Abandon, Leave, then QUEUESTATUS=TIMEOUT, then common."""
    facts = run(join("first-line", 0), leave("first-line", 31, abandon=True),
                leave("first-line", 31), var("QUEUESTATUS", "TIMEOUT", 31.001),
                join("common", 31.002), leave("common", 35), connect("common", 35), hangup(60))
    assert exits(facts) == [("first-line", "timeout", 31000), ("common", "answered", 3998)]
    assert [(f.from_queue, f.to_queue) for f in facts if isinstance(f, Overflowed)] == [
        ("first-line", "common")]
    answered = [f for f in facts if isinstance(f, JourneyAnswered)]
    assert not answered[0].payable and answered[0].wait_ms == 35000


def test_ivr_move_reason_set_before_the_leave_resolves_at_once() -> None:
    facts = run(join("first-line", 0), var("IVR_MOVE", "timeout", 30.0005),
                leave("first-line", 30.0010, abandon=True))
    assert exits(facts) == [("first-line", "timeout", 30001)]


def test_withdraw_reports_reason_after_the_leave() -> None:
    facts = run(join("first-line", 0), leave("first-line", 12, abandon=True),
                leave("first-line", 12), var("QUEUESTATUS", "WITHDRAW", 12))
    assert exits(facts) == [("first-line", "withdrawn", 12000)]


def test_redirect_by_someone_else_is_a_transfer() -> None:
    """Redirected to ivr-queues,engineers,1: the Abandon already shows the new place."""
    facts = run(joined_in("first-line", 0, "ivr-queues", "first-line", "1"),
                at("first-line", 5, "ivr-queues", abandon=True, exten="engineers", priority="1"),
                joined_in("engineers", 5.001, "ivr-queues", "engineers", "1"))
    assert exits(facts) == [("first-line", "transferred", 5000)]


def test_a_second_queue_after_a_timeout_is_a_timeout_then_a_new_visit() -> None:
    """Queue(first-line,,,,4) then Queue(common) at the next priority, with no
    QUEUESTATUS (an AMI user without the dialplan class): the channel ran on."""
    facts = run(joined_in("first-line", 0, "from-pstn", "5003", "2"),
                at("first-line", 4.004, "from-pstn", abandon=True, exten="5003", priority="2"),
                at("first-line", 4.004, "from-pstn", exten="5003", priority="2"),
                joined_in("common", 4.005, "from-pstn", "5003", "3"),
                leave("common", 6), connect("common", 6), hangup(9))
    assert exits(facts) == [("first-line", "timeout", 4004), ("common", "answered", 1995)]


def test_ivrs_move_unseen_without_the_dialplan_class_is_a_timeout_at_the_threshold() -> None:
    """No VarSet IVR_MOVE reaches ivr: its Redirect at 30 s shows as a move to
    ivr-queues,common, judged as queue_log's moved ABANDON is (at the threshold)."""
    moved = (joined_in("first-line", 0, "ivr-queues", "first-line", "1"),
             at("first-line", 30.001, "ivr-queues", exten="common", priority="1"),
             joined_in("common", 30.002, "ivr-queues", "common", "1"))
    assert exits(run(*moved, tracker=Tracker(overflow_ms={"first-line": 30_000}))) == [
        ("first-line", "timeout", 30001)]
    early = Tracker(overflow_ms={"first-line": 30_002})    # a Redirect before the threshold
    assert exits(run(*moved, tracker=early)) == [("first-line", "transferred", 30001)]
    assert exits(run(*moved)) == [("first-line", "timeout", 30001)]   # the default's 30 s
    no_move = Tracker(overflow_ms={})                      # a config without the move
    assert exits(run(*moved, tracker=no_move)) == [("first-line", "transferred", 30001)]


def test_the_trackers_default_move_threshold_is_the_default_configs() -> None:
    """`ivr replay` without a config and the service with the default one agree."""
    configured = {q.name: round(q.overflow_after_seconds * 1000) for q in DEFAULT_QUEUES
                  if q.overflow_after_seconds is not None}
    assert Tracker().overflow_ms == configured == {"first-line": 30_000}


@pytest.mark.parametrize(("after", "outcome"), [
    # Queue() at priority 2, then Wait(1) and Hangup() at 3: it ran on, a timeout.
    (hangup(5.0, place=ev.Place("from-pstn", "5003", "3"), cause=16), "timeout"),
    # No HangupRequest came (filtered): ended where Queue() ran, a BYE's cause.
    (hangup(4.1, place=ev.Place("from-pstn", "5003", "2"), cause=0), "abandoned"),
    (hangup(4.1, place=ev.Place("from-pstn", "5003", "2"), cause=19), "abandoned"),
    # Ended where Queue() ran with normal clearing: fell off the dialplan's end after a
    # timeout, or a BYE that gave 16: nothing tells.
    (hangup(4.1, place=ev.Place("from-pstn", "5003", "2"), cause=16), "unknown_exit"),
    # The h extension runs after a hang-up: it is not running on.
    (hangup(4.1, place=ev.Place("from-pstn", "h", "1"), cause=16), "unknown_exit"),
    (hangup(4.1), "unknown_exit"),                     # nothing at all
])
def test_without_queuestatus_the_hangup_tells_a_timeout_from_an_abandon(
        after: ev.Hangup, outcome: str) -> None:
    facts = run(joined_in("first-line", 0, "from-pstn", "5003", "2"),
                at("first-line", 4.004, "from-pstn", abandon=True, exten="5003", priority="2"),
                at("first-line", 4.004, "from-pstn", exten="5003", priority="2"), after)
    assert exits(facts) == [("first-line", outcome, 4004)]
    ended = [f.outcome for f in facts if isinstance(f, JourneyEnded)]
    assert ended == ["abandoned" if outcome == "abandoned" else "unanswered"]


def test_a_hangup_request_after_the_leave_is_not_an_abandon() -> None:
    """The caller hung up in the dialplan after a timeout: the queue was not abandoned."""
    facts = run(joined_in("first-line", 0, "from-pstn", "5003", "2"),
                at("first-line", 4.004, "from-pstn", abandon=True, exten="5003", priority="2"),
                asked(5), hangup(5, place=ev.Place("from-pstn", "5003", "4"), cause=0))
    assert exits(facts) == [("first-line", "timeout", 4004)]


def test_leave_empty_is_empty() -> None:
    facts = run(join("common", 0), leave("common", 2), var("QUEUESTATUS", "LEAVEEMPTY", 2))
    assert exits(facts) == [("common", "empty", 2000)]


def test_unrelated_events_change_nothing() -> None:
    tracker = Tracker()
    assert run(leave("first-line", 1), connect("first-line", 2), hangup(3),
               var("QUEUESTATUS", "TIMEOUT", 4), tracker=tracker) == []
    assert tracker.journeys == {}


def test_payable_counts_from_first_entering_first_line() -> None:
    """Moved out and back: the 30 s are from the first entry, not the second."""
    facts = run(join("first-line", 0), leave("first-line", 10, abandon=True), join("common", 10),
                leave("common", 12, abandon=True), join("first-line", 12),
                leave("first-line", 25), connect("first-line", 25))
    answered = [f for f in facts if isinstance(f, JourneyAnswered)]
    assert answered[0].payable and answered[0].wait_ms == 25000
    facts = run(join("first-line", 0), leave("first-line", 10, abandon=True), join("common", 10),
                leave("common", 12, abandon=True), join("first-line", 12),
                leave("first-line", 31), connect("first-line", 31))
    assert [f.payable for f in facts if isinstance(f, JourneyAnswered)] == [False]


def test_waiting_and_agents_live_state() -> None:
    tracker = Tracker()
    run(join("first-line", 0, "a"), join("first-line", 1, "b"), join("common", 2, "c"),
        ev.MemberState(T0, "first-line", "op1", 1, False, False),
        ev.MemberState(T0, "first-line", "op2", 6, False, False),
        ev.MemberState(T0, "first-line", "op3", 2, False, True),
        ev.MemberState(T0, "first-line", "op4", 1, True, False),
        ev.MemberState(T0, "common", "gen1", 5, False, False), tracker=tracker)
    assert {j.uniqueid for j in tracker.waiting("first-line")} == {"a", "b"}
    assert tracker.agent_counts("first-line") == {
        "available": 1, "ringing": 1, "in_call": 1, "paused": 1, "unavailable": 0}
    assert tracker.agent_counts("common")["unavailable"] == 1
    run(leave("first-line", 3, uid="b"), tracker=tracker)    # leaving: no longer waiting
    assert {q: [j.uniqueid for j in js] for q, js in tracker.waiting_by_queue().items()} == {
        "first-line": ["a"], "common": ["c"]}
    assert tracker.waiting("engineers") == []
    assert set(tracker.agent_counts_by_queue()) == {"first-line", "common"}
    run(ev.MemberRemoved(T0, "common", "gen1"), tracker=tracker)
    assert tracker.agent_counts("common")["unavailable"] == 0


def snap(at: float, waiting: tuple[ev.WaitingCaller, ...] = (), live: frozenset[str] = frozenset()
         ) -> ev.Snapshot:
    return ev.Snapshot(T0 + round(at * S), waiting, (), live)


def test_resync_keeps_known_callers_and_counts_nothing_twice() -> None:
    tracker = Tracker()
    run(join("first-line", 0), tracker=tracker)
    waiting = (ev.WaitingCaller(UID, CHAN, "79001", "first-line", 10),)
    assert tracker.resync(snap(10, waiting, frozenset({UID}))) == []
    assert len(tracker.waiting("first-line")) == 1


def test_resync_recovers_unknown_callers_after_a_restart() -> None:
    tracker = Tracker()
    waiting = (ev.WaitingCaller("x", "PJSIP/x", "79009", "common", 12),)
    facts = tracker.resync(snap(100, waiting, frozenset({"x"})))
    assert [(f.queue, f.recovered, f.at_us) for f in facts if isinstance(f, Entered)] == [
        ("common", True, T0 + 88 * S)]


def test_resync_closes_callers_that_left_while_disconnected() -> None:
    tracker = Tracker()
    run(join("first-line", 0, "gone"), join("first-line", 0, "talking"), tracker=tracker)
    facts = tracker.resync(snap(50, (), frozenset({"talking"})))
    assert sorted(f.uniqueid for f in facts if isinstance(f, Unobserved)) == ["gone", "talking"]
    assert [(f.uniqueid, f.outcome) for f in facts if isinstance(f, JourneyEnded)] == [("gone", "unknown")]
    assert "talking" in tracker.journeys and tracker.waiting("first-line") == []


def test_resync_ignores_callers_seen_after_the_snapshot_was_asked_for() -> None:
    tracker = Tracker()
    run(join("first-line", 10.5), tracker=tracker)
    assert tracker.resync(snap(10, (), frozenset())) == []
    assert len(tracker.waiting("first-line")) == 1


def test_pbx_shutdown_is_not_an_abandon() -> None:
    """SIGTERM to Asterisk: SoftHangupRequest (SHUTDOWN), Abandon, Leave, Hangup."""
    facts = run(join("first-line", 0), ev.PbxShutdown(T0 + 5 * S, UID),
                leave("first-line", 5, abandon=True), leave("first-line", 5), hangup(5))
    assert exits(facts) == []
    assert [(f.queue, f.uniqueid) for f in facts if isinstance(f, Unobserved)] == [("first-line", UID)]
    assert [f.outcome for f in facts if isinstance(f, JourneyEnded)] == ["unknown"]


# -- exits that are not abandons, members behind Local channels, no Timestamp ------

def at(queue: str, when: float, context: str, abandon: bool = False, exten: str = "s",
       holdtime: int | None = None, priority: str = "1") -> ev.CallerLeft:
    return ev.CallerLeft(T0 + round(when * S), UID, queue, abandon,
                         ev.Place(context, exten, priority), holdtime)


def joined_in(queue: str, when: float, context: str, exten: str = "s",
              priority: str = "1") -> ev.CallerJoined:
    return ev.CallerJoined(T0 + round(when * S), UID, CHAN, "79001", queue, "",
                           ev.Place(context, exten, priority))


def test_a_key_pressed_in_the_queue_is_an_exit_with_key_not_an_abandon() -> None:
    # Asterisk 22: no Abandon, a Leave whose channel is in the queue's `context`
    # at the key's extension, then the dialplan there hangs up.
    facts = run(joined_in("first-line", 0, "from-pstn"),
                at("first-line", 1.7015, "queue-exit", exten="1"), hangup(2.7))
    assert exits(facts) == [("first-line", "exit_with_key", 1701)]
    assert [f.outcome for f in facts if isinstance(f, JourneyEnded)] == ["unanswered"]


def test_a_redirect_away_by_another_client_is_transferred_not_abandoned() -> None:
    facts = run(joined_in("first-line", 0, "from-pstn"),
                at("first-line", 2.0033, "after-redirect", abandon=True, holdtime=2),
                at("first-line", 2.004, "after-redirect"), hangup(3.0))
    assert exits(facts) == [("first-line", "transferred", 2003)]


def test_a_hangup_in_the_queue_keeps_its_context_and_is_abandoned() -> None:
    facts = run(joined_in("first-line", 0, "from-pstn"), asked(4.5),
                at("first-line", 4.504, "from-pstn", abandon=True, holdtime=4),
                at("first-line", 4.505, "from-pstn"), hangup(4.51))
    assert exits(facts) == [("first-line", "abandoned", 4504)]


def test_ivrs_own_move_stays_a_timeout_whatever_the_context() -> None:
    facts = run(joined_in("first-line", 0, "ivr-queues"), var("IVR_MOVE", "timeout", 30.0),
                at("first-line", 30.001, "ivr-queues-move", abandon=True, holdtime=30),
                joined_in("common", 30.01, "ivr-queues"))
    assert exits(facts)[0] == ("first-line", "timeout", 30001)


def test_a_local_member_in_use_but_not_in_a_call_is_ringing() -> None:
    tracker = Tracker()
    tracker.handle(ev.MemberState(T0, "first-line", "agent1", 2, False, False, local=True))
    tracker.handle(ev.MemberState(T0, "first-line", "agent2", 2, False, True, local=True))
    tracker.handle(ev.MemberState(T0, "first-line", "op3", 2, False, False))
    assert tracker.agent_counts("first-line")["ringing"] == 1
    assert tracker.agent_counts("first-line")["in_call"] == 2


def test_without_timestamps_a_wait_is_asterisks_holdtime() -> None:
    # Read late from a backlog: the answer arrives 4.932 s after the join arrived,
    # while Asterisk's HoldTime says 3 s.  Judged as Asterisk judges it: 3,000 ms.
    tracker = Tracker()
    untimed = [tracker.handle(join("first-line", 0), timed=False),
               tracker.handle(leave("first-line", 4.93), timed=False),
               tracker.handle(ev.AgentAnswered(T0 + 4_932_000, UID, "first-line", "op1", 3),
                              timed=False),
               tracker.handle(hangup(20), timed=False)]
    facts = [f for batch in untimed for f in batch]
    assert exits(facts) == [("first-line", "answered", 3000)]
    [ended] = [f for f in facts if isinstance(f, JourneyEnded)]
    assert ended.record.precision == "s"
    assert ended.record.visits[0].wait_ms == 3000
    # Read early (3.4 s after the join was read): still the HoldTime, not the reading.
    tracker = Tracker()
    for e in (join("first-line", 0), leave("first-line", 3.4),
              ev.AgentAnswered(T0 + 3_400_000, UID, "first-line", "op1", 3)):
        facts = tracker.handle(e, timed=False)
    assert exits(facts) == [("first-line", "answered", 3000)]


def test_without_timestamps_an_abandon_waited_its_holdtime() -> None:
    tracker = Tracker()
    facts = [f for e in (join("first-line", 0), asked(0.19),
                         at("first-line", 0.2, "", abandon=True, holdtime=4), hangup(0.3))
             for f in tracker.handle(e, timed=False)]
    assert exits(facts) == [("first-line", "abandoned", 4000)]


@pytest.mark.parametrize(("holdtime", "payable"), [(29, True), (30, True), (31, False)])
def test_without_timestamps_payable_is_judged_as_asterisk_counts_its_service_level(
        holdtime: int, payable: bool) -> None:
    # The case: HoldTime 31 was reported as 30,000 ms and paid, while Asterisk
    # itself says 31 > 30.  Read 30.000 s after the join was read, whatever the HoldTime.
    tracker = Tracker()
    facts = [f for e in (join("first-line", 0), leave("first-line", 30.0),
                         ev.AgentAnswered(T0 + 30_000_000, UID, "first-line", "op1", holdtime),
                         hangup(40))
             for f in tracker.handle(e, timed=False)]
    [answered] = [f for f in facts if isinstance(f, JourneyAnswered)]
    [ended] = [f for f in facts if isinstance(f, JourneyEnded)]
    assert answered.wait_ms == holdtime * 1000
    assert answered.payable is payable and ended.record.payable is payable
    assert ended.record.precision == "s"


def test_a_local_member_that_answers_is_in_a_call_without_a_status_event() -> None:
    # Asterisk 22, Local/op1@members/n: Status 2 InCall 0 while it rings, and no
    # QueueMemberStatus at all when it answers; the next one (Status 1) at hang-up.
    tracker = Tracker()
    tracker.handle(ev.MemberState(T0, "q", "op1-local", 2, False, False, local=True))
    tracker.handle(ev.CallerJoined(T0, UID, CHAN, "79001", "q"))
    assert tracker.agent_counts("q")["ringing"] == 1
    tracker.handle(ev.AgentAnswered(T0 + 4 * S, UID, "q", "op1-local", 4))
    assert tracker.agent_counts("q")["in_call"] == 1
    tracker.handle(ev.MemberState(T0 + 9 * S, "q", "op1-local", 1, False, False, local=True))
    assert tracker.agent_counts("q")["available"] == 1


def where(tracker: Tracker, uid: str = UID) -> tuple[CallState, bool, bool, bool, str | None]:
    j = tracker.journeys[uid]
    return j.state, j.waiting, j.in_queue, j.with_operator, j.queue


def test_a_callers_state_is_named_once_through_the_journey() -> None:
    tracker = Tracker()
    tracker.handle(join("first-line", 0))
    assert where(tracker) == (CallState.WAITING, True, True, False, "first-line")
    tracker.handle(leave("first-line", 5))
    assert where(tracker) == (CallState.LEAVING, False, True, False, "first-line")
    tracker.handle(connect("first-line", 5))
    assert where(tracker) == (CallState.WITH_OPERATOR, False, False, True, None)
    tracker.handle(join("common", 60))      # the operator put the caller in a queue again
    assert where(tracker) == (CallState.WAITING, True, True, False, "common")
    tracker.handle(leave("common", 61))
    tracker.handle(var("QUEUESTATUS", "TIMEOUT", 61))
    assert where(tracker) == (CallState.BETWEEN, False, False, False, None)
    assert tracker.journeys[UID].queue_wait_us(T0 + 70 * S) == 0
    tracker.handle(hangup(62))
    assert UID not in tracker.journeys


def test_queue_wait_is_from_entering_the_current_queue() -> None:
    tracker = Tracker()
    tracker.handle(join("first-line", 0))
    assert tracker.journeys[UID].queue_wait_us(T0 + 12 * S) == 12 * S


def test_transitions_are_one_table_and_a_step_outside_it_is_refused() -> None:
    assert TRANSITIONS[CallState.WAITING, Step.LEAVE] is CallState.LEAVING
    assert all(to is not CallState.NEW for to in TRANSITIONS.values())
    assert not any(state is CallState.ENDED for state, _ in TRANSITIONS)
    j = Journey(UID, CHAN, "79001", T0)
    assert not j.can(Step.LEAVE)
    with pytest.raises(BadStep):
        j.step(Step.LEAVE)
    assert j.state is CallState.NEW


def test_the_call_a_member_is_on_is_the_latest_they_answered() -> None:
    tracker = Tracker()
    run(join("first-line", 0), leave("first-line", 4), connect("first-line", 4),
        join("first-line", 1, uid="2"), leave("first-line", 9, uid="2"),
        connect("first-line", 9, uid="2"), tracker=tracker)
    on = tracker.on_call("op1")
    assert on is not None and on[0] == T0 + 9 * S
    assert on[1] == JourneyAnswered("2", "first-line", "op1", 8000, True)
    assert tracker.on_call("op2") is None
    tracker.handle(join("common", 20, uid="2"))        # back in a queue: with nobody now
    on = tracker.on_call("op1")
    assert on is not None and on[1].uniqueid == UID


@pytest.mark.parametrize("status", ["FULL", "JOINEMPTY", "JOINUNAVAIL"])
def test_a_queue_that_refuses_the_caller_at_the_door_is_not_a_visit(status: str) -> None:
    """maxlen reached, or joinempty = no: Asterisk raises no QueueCallerJoin, only
    QUEUESTATUS, for a caller ivr may never have seen in a queue."""
    tracker = Tracker()
    assert run(var("QUEUESTATUS", status, 1), tracker=tracker) == [
        NotAdmitted(UID, status.lower())]
    assert tracker.journeys == {}
    # After a visit: timed out of first-line, then refused by common.
    facts = run(join("first-line", 0), leave("first-line", 31, abandon=True),
                var("QUEUESTATUS", "TIMEOUT", 31), var("QUEUESTATUS", status, 31.01),
                hangup(32))
    assert exits(facts) == [("first-line", "timeout", 31000)]
    assert [f for f in facts if isinstance(f, NotAdmitted)] == [NotAdmitted(UID, status.lower())]


def test_queuestatus_of_a_leaving_visit_is_its_exit_not_a_refusal() -> None:
    facts = run(join("first-line", 0), leave("first-line", 2), var("QUEUESTATUS", "FULL", 2))
    assert exits(facts) == [("first-line", "empty", 2000)]
    assert not [f for f in facts if isinstance(f, NotAdmitted)]
