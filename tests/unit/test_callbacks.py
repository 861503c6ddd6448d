"""Callbacks, the pure parts (issue 22): the [callback] config, the placeholder's
channel name, a callback's decisions, and the tracker's `callback` outcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr import config as cfg
from ivr.ami import events as ev
from ivr.callbacks import model
from ivr.callbacks.model import Callback, State
from ivr.calls import judge
from ivr.calls.facts import Exited, JourneyAnswered, JourneyEnded
from ivr.calls.tracker import Tracker
from ivr.ledger.rows import CallbackEvent, CallbackRow

S = 1_000_000
T0 = 1_796_000_000 * S
UID, CHAN = "1796000000.1", "PJSIP/anonymous-00000001"
QUEUE = ev.Place("ivr-queues", "common", "2")
KEY = ev.Place(judge.CALLBACK_KEY_CONTEXT, "1", "1")
HOLDER = "Local/cb1796000000000001n1@ivr-callback-place-0000001a;2"


def load(tmp_path: Path, text: str) -> cfg.Config:
    path = tmp_path / "ivr.toml"
    path.write_text(text)
    return cfg.load(path, env={})


def test_the_config_has_callbacks_off_until_a_dial_template_is_given(tmp_path: Path) -> None:
    assert not load(tmp_path, "").callback.enabled
    on = load(tmp_path, '[callback]\ndial = "PJSIP/{number}@trunk"\nblock = ["112", "8800*"]\n')
    assert on.callback.enabled and on.callback_queues == ("common",)
    assert on.callback.dial_string("79161234567") == "PJSIP/79161234567@trunk"
    assert on.callback.blocked("112") and on.callback.blocked("88001") and not on.callback.blocked("1120")
    named = load(tmp_path, '[routing]\ncommon = "601"\n[callback]\ndial = "PJSIP/{number}@t"\n')
    assert named.callback_queues == ("601",)


@pytest.mark.parametrize("line, says", [
    ('dial = "PJSIP/79161234567@trunk"', "{number} exactly once"),
    ('dial = "PJSIP/{number}@t&PJSIP/{number}@u"', "{number} exactly once"),
    ('dial = "PJSIP/{number}@t&Local/1@x"', "one dial string"),
    ('dial = "PJSIP/{number}@{trunk}"', "no other braces"),
    ('dial = "PJSIP/{number}@t,30"', "one dial string"),
    ('attempts = 0', "callback.attempts"),
    ('attempts = 11', "callback.attempts"),
    ('retry_seconds = 0', "callback.retry_seconds"),
    ('ring_seconds = 1', "callback.ring_seconds"),
    ('block = ["abc"]', "is not a number"),
    ('block = ["1*2"]', "is not a number"),
    ('queues = "common"', "callback.queues"),
    ('dail = "PJSIP/{number}@t"', "unknown config key callback.dail"),
])
def test_a_bad_callback_config_is_one_line(tmp_path: Path, line: str, says: str) -> None:
    with pytest.raises(cfg.ConfigError) as caught:
        load(tmp_path, f"[callback]\n{line}\n")
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_a_placeholder_is_told_by_its_channel_name() -> None:
    assert judge.placeholder_of(HOLDER) == "1796000000000001"
    for other in (CHAN, "Local/cb1n1@other-00000001;2", "Local/op1@ivr-callback-place-1;2",
                  "Local/cb1n1", ""):
        assert judge.placeholder_of(other) == ""


def callback(**kw: object) -> Callback:
    row = CallbackRow("1", "default", UID, "79101", "", "common", 5, T0)
    return Callback(row, **kw)      # type: ignore[arg-type]


def test_a_dial_connects_retries_or_fails() -> None:
    cb = callback(attempts=1)
    assert model.after_dial(cb, "ANSWER", 2, 60 * S, T0) is State.CONNECTED
    assert model.after_dial(cb, "NOANSWER", 2, 60 * S, T0) is State.RETRY
    assert cb.next_us == T0 + 60 * S
    cb.attempts = 2
    assert model.after_dial(cb, "BUSY", 2, 60 * S, T0) is State.FAILED
    told = callback(attempts=1, stop_after_dial=True)   # the customer called in meanwhile
    assert model.after_dial(told, "NOANSWER", 3, 60 * S, T0) is State.FAILED


def test_a_callback_comes_back_from_its_events() -> None:
    row = CallbackRow("1", "default", UID, "79101", "", "common", 5, T0)

    def replay(*names: str) -> Callback:
        return model.replay(row, [CallbackEvent("1", T0 + i, n, 1 if n != "placed" else i + 1,
                                                "u.1" if n == "queued" else "")
                                  for i, n in enumerate(names)], 60 * S)
    assert replay("placed").state is State.PLACING
    waiting = replay("placed", "queued")
    assert (waiting.state, waiting.placeholder, waiting.placements) == (State.WAITING, "u.1", 1)
    again = replay("placed", "queued", "dialing", "retry")
    assert (again.state, again.attempts) == (State.RETRY, 1) and again.next_us == T0 + 3 + 60 * S
    # A dial whose result ivr never heard is not made twice: the request fails.
    lost = replay("placed", "queued", "dialing")
    assert lost.state is State.FAILED and "unknown" in lost.reason


def key_1(tracker: Tracker) -> list[object]:
    facts: list[object] = []
    facts += tracker.handle(ev.CallerJoined(T0, UID, CHAN, "79101", "common", place=QUEUE))
    facts += tracker.handle(ev.CallerLeft(T0 + 40 * S, UID, "common", False, place=KEY))
    return facts


def test_key_1_then_ivr_taking_it_ends_the_visit_as_a_callback() -> None:
    tracker = Tracker()
    assert [type(f).__name__ for f in key_1(tracker)] == ["Entered"]   # the Leave waits
    [exited] = tracker.callback_taken(UID)
    assert isinstance(exited, Exited) and (exited.outcome, exited.wait_ms) == ("callback", 40_000)
    [ended] = tracker.handle(ev.Hangup(T0 + 50 * S, UID, ev.Place("ivr-callback", "request", "8"), 16))
    assert isinstance(ended, JourneyEnded) and ended.outcome == "callback"
    assert not ended.record.payable


def test_ivr_taking_it_before_the_leave_is_read_is_the_same() -> None:
    tracker = Tracker()
    tracker.handle(ev.CallerJoined(T0, UID, CHAN, "79101", "common", place=QUEUE))
    assert tracker.callback_taken(UID) == []
    [exited] = tracker.handle(ev.CallerLeft(T0 + 40 * S, UID, "common", False, place=KEY))
    assert isinstance(exited, Exited) and exited.outcome == "callback"


def test_a_refused_request_back_in_the_queue_left_by_a_key() -> None:
    tracker = Tracker()
    key_1(tracker)
    facts = tracker.handle(ev.CallerJoined(T0 + 45 * S, UID, CHAN, "79101", "common", place=QUEUE))
    assert [f.outcome for f in facts if isinstance(f, Exited)] == ["exit_with_key"]
    assert tracker.journeys[UID].waiting


def test_a_placeholder_answered_in_first_line_within_30_s_is_never_payable() -> None:
    tracker = Tracker()
    tracker.handle(ev.CallerJoined(T0, "2.1", HOLDER, "79101", "first-line"))
    facts = tracker.handle(ev.AgentAnswered(T0 + 5 * S, "2.1", "first-line", "op1", 5))
    [answered] = [f for f in facts if isinstance(f, JourneyAnswered)]
    assert tracker.journeys["2.1"].placeholder == "1796000000000001"
    assert not answered.payable
