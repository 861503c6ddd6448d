"""events.timestamp_us: Asterisk's clock to the microsecond, whatever the digits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.ami.codec import Message
from ivr.ami.events import Place, timestamp_us


def stamped(raw: str) -> Message:
    return Message((("Event", "Hangup"), ("Timestamp", raw)))


@pytest.mark.parametrize("raw, expected", [
    ("1795530561.123456", 1_795_530_561_123_456),   # as Asterisk prints it
    ("1795530561.000001", 1_795_530_561_000_001),
    ("1795530561.5", 1_795_530_561_500_000),
    ("1795530561.", 1_795_530_561_000_000),
    ("1795530561", 1_795_530_561_000_000),
    ("1795530561.123456789", 1_795_530_561_123_456),  # below a microsecond: cut, not rounded
    ("0.000000", 0),
])
def test_timestamp_to_the_microsecond(raw: str, expected: int) -> None:
    assert timestamp_us(stamped(raw), now=0.0) == expected


@pytest.mark.parametrize("raw", ["", "1795530561.12345x", "-1.000000", "1e9", " 1.000000",
                                 "\u0661\u0662.\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic digits
                                 "1" * 13 + ".000000"])
def test_bad_timestamp_is_a_value_error(raw: str) -> None:
    with pytest.raises(ValueError):
        timestamp_us(stamped(raw), now=0.0)


def test_no_timestamp_means_now() -> None:
    assert timestamp_us(Message((("Event", "Hangup"),)), now=12.25) == 12_250_000


@given(seconds=st.integers(0, 10**12 - 1), micros=st.integers(0, 999_999))
def test_six_digit_fractions_are_exact(seconds: int, micros: int) -> None:
    assert timestamp_us(stamped(f"{seconds}.{micros:06d}"), now=0.0) == seconds * 1_000_000 + micros



def test_parse_timed_says_whether_asterisk_stamped_the_event() -> None:
    from ivr.ami.events import Hangup, parse_timed
    stamped_hangup = Message((("Event", "Hangup"), ("Timestamp", "1795530561.5"),
                              ("Uniqueid", "1.1")))
    bare_hangup = Message((("Event", "Hangup"), ("Uniqueid", "1.1")))
    assert parse_timed(stamped_hangup, now=12.25) == (Hangup(1_795_530_561_500_000, "1.1"), True)
    assert parse_timed(bare_hangup, now=12.25) == (Hangup(12_250_000, "1.1"), False)
    assert parse_timed(Message((("Event", "Newexten"),)), now=1.0) == (None, True)


def test_a_leave_says_where_the_channel_is_and_an_abandon_its_holdtime() -> None:
    from ivr.ami.events import CallerLeft, parse
    common = (("Uniqueid", "1.1"), ("Queue", "q"), ("Context", "queue-exit"), ("Exten", "1"),
              ("Priority", "2"))
    leave = parse(Message((("Event", "QueueCallerLeave"), *common)), now=1.0)
    abandon = parse(Message((("Event", "QueueCallerAbandon"), *common, ("HoldTime", "4"))), now=1.0)
    there = Place("queue-exit", "1", "2")
    assert leave == CallerLeft(1_000_000, "1.1", "q", False, there, None)
    assert abandon == CallerLeft(1_000_000, "1.1", "q", True, there, 4)


@pytest.mark.parametrize("cause, parsed", [("0", 0), ("16", 16), ("19", 19), ("127", 127),
                                           ("128", None), ("-1", None), ("", None),
                                           ("１６", None), ("9" * 40, None)])
def test_a_hangup_says_where_the_channel_ended_and_its_cause(cause: str, parsed: int | None) -> None:
    """The cause and place tell a hang-up from a timeout (judge.silent_exit); a cause
    that is not Q.850's is unknown, never a crash."""
    from ivr.ami.events import Hangup, parse
    msg = Message((("Event", "Hangup"), ("Uniqueid", "1.1"), ("Context", "ivr-queues"),
                   ("Exten", "first-line"), ("Priority", "3"), ("Cause", cause)))
    assert parse(msg, now=1.0) == Hangup(1_000_000, "1.1", Place("ivr-queues", "first-line", "3"),
                                         parsed)


def test_a_hangup_request_is_the_far_end_and_a_soft_one_is_not() -> None:
    from ivr.ami.events import HangupAsked, parse
    asked = Message((("Event", "HangupRequest"), ("Uniqueid", "1.1")))
    soft = Message((("Event", "SoftHangupRequest"), ("Uniqueid", "1.1"), ("Cause", "16")))
    assert parse(asked, now=1.0) == HangupAsked(1_000_000, "1.1")
    assert parse(soft, now=1.0) is None


@pytest.mark.parametrize("interface, local", [("Local/agent1@from-queue/n", True),
                                              ("local/7001@agents", True),
                                              ("PJSIP/op1", False)])
def test_a_member_behind_a_local_channel_is_marked(interface: str, local: bool) -> None:
    from ivr.ami.events import MemberState, parse
    msg = Message((("Event", "QueueMemberStatus"), ("Queue", "q"), ("MemberName", "agent1"),
                   ("Interface", interface), ("Status", "2"), ("InCall", "0")))
    state = parse(msg, now=0.0)
    assert isinstance(state, MemberState) and state.local is local
