"""The money rules on plain values: the one copy the tracker and the queue_log
reconciliation both call (their own tests hold the same rules end to end)."""

from __future__ import annotations

import pytest

from ivr.calls import judge
from ivr.calls.judge import OUTCOMES, CallOutcome, Outcome


def test_outcome_strings_are_the_contract() -> None:
    assert OUTCOMES == ("answered", "abandoned", "timeout", "withdrawn", "empty", "transferred",
                        "exit_with_key", "callback", "unknown_exit")
    assert all(type(o) is str for o in OUTCOMES)
    assert [c.value for c in CallOutcome] == ["answered", "abandoned", "unanswered", "callback",
                                              "unknown", "in_progress"]
    assert judge.MOVE_REASONS == ("timeout", "withdrawn")
    assert (judge.FIRST_LINE, judge.DEFAULT_THRESHOLD_MS) == ("first-line", 30_000)


@pytest.mark.parametrize(("entered", "left", "ms"), [
    (0, 30_000_999, 30_000), (0, 999, 0), (5_000_000, 1_000_000, 0), (0, 0, 0)])
def test_waits_are_floored_milliseconds_never_negative(entered: int, left: int, ms: int) -> None:
    assert judge.wait_ms(entered, left) == ms


@pytest.mark.parametrize(("outcome", "waited", "within"), [
    ("answered", 30_000, True), ("answered", 30_001, False), ("answered", 0, True),
    ("abandoned", 1_000, False), ("timeout", 30_000, False)])
def test_within_sla_is_answered_within_the_threshold_inclusive(outcome: str, waited: int,
                                                               within: bool) -> None:
    assert judge.within_sla(outcome, waited, 30_000) is within


@pytest.mark.parametrize(("reason", "moved_on", "overflowed", "outcome"), [
    ("timeout", False, False, "timeout"),        # ivr's move reason wins, even over a hang-up
    ("withdrawn", True, True, "withdrawn"),
    (None, False, False, "abandoned"),           # nothing followed: the caller hung up
    ("", False, True, "abandoned"),
    (None, True, False, "transferred"),          # went on to another queue: moved, not abandoned
    (None, True, True, "timeout"),               # ... at the overflow threshold: the timeout move
])
def test_unanswered_exit(reason: str | None, moved_on: bool, overflowed: bool, outcome: str) -> None:
    assert judge.unanswered_exit(reason, moved_on, overflowed) == outcome


@pytest.mark.parametrize(("answered", "last", "seen", "outcome"), [
    (True, "abandoned", True, "answered"),       # answered once: answered, whatever came after
    (True, None, False, "answered"),
    (False, "abandoned", True, "abandoned"),
    (False, "timeout", True, "unanswered"),      # a move is not an abandon
    (False, "exit_with_key", True, "unanswered"),
    (False, "unobserved", True, "unanswered"),
    (False, None, True, "unanswered"),
    (False, "abandoned", False, "unknown"),      # the PBX went away: never an abandon
    (False, None, False, "unknown"),
])
def test_call_outcome(answered: bool, last: str | None, seen: bool, outcome: str) -> None:
    assert judge.call_outcome(answered, last, seen) == outcome


@pytest.mark.parametrize(("queue", "wait", "payable"), [
    ("first-line", 30_000, True),                # inclusive: 30.000 s is within
    ("first-line", 30_001, False),
    ("first-line", 0, True),
    ("first-line", -5, True),                    # a clock step back is still within
    ("first-line", None, False),                 # the wait is not known
    ("common", 1_000, False),                    # answered elsewhere: never payable
    (None, 1_000, False),                        # never answered
])
def test_payable(queue: str | None, wait: int | None, payable: bool) -> None:
    assert judge.payable(queue, "first-line", wait, 30_000) is payable


def test_payable_takes_the_configured_first_line() -> None:
    assert judge.payable("support", "support", 10_000, 30_000)
    assert not judge.payable("first-line", "support", 10_000, 30_000)


def test_enums_compare_as_their_strings() -> None:
    assert {Outcome.EXIT_WITH_KEY} == {"exit_with_key"} and f"{CallOutcome.UNKNOWN}" == "unknown"


@pytest.mark.parametrize(("seconds", "within"), [(29, True), (30, True), (31, False)])
def test_a_wait_in_whole_seconds_is_judged_as_asterisk_counts_it(seconds: int,
                                                                  within: bool) -> None:
    # app_queue: holdtime <= servicelevel.  31 s is over 30 s, never floored to 30,000 ms.
    waited = judge.seconds_wait_ms(seconds)
    assert waited == seconds * 1000
    assert judge.within_sla(Outcome.ANSWERED, waited, 30_000) is within
    assert judge.payable("first-line", "first-line", waited, 30_000) is within


@pytest.mark.parametrize(("hung_up", "ran_on", "cause", "outcome"), [
    (True, False, 16, "abandoned"),      # HangupRequest while waiting: the caller hung up
    (True, True, None, "abandoned"),     # ... whatever the channel did after
    (False, True, 16, "timeout"),        # Hangup at priority 3 after Queue() at 1, or a join
    (False, True, 0, "timeout"),
    (False, False, 0, "abandoned"),      # ended where Queue() ran, a BYE's cause (none)
    (False, False, 19, "abandoned"),     # ... a CANCEL's (no answer)
    (False, False, 16, "unknown_exit"),  # ... normal clearing: the PBX's or a caller's
    (False, False, None, "unknown_exit"),
    (False, False, 127, "unknown_exit"),
])
def test_an_exit_without_queuestatus_is_told_by_the_channel(
        hung_up: bool, ran_on: bool, cause: int | None, outcome: str) -> None:
    assert judge.silent_exit(hung_up, ran_on, cause) == outcome
