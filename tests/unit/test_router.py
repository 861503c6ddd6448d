"""Deciding apart from doing: the policy re-checks, the router times, actions act."""

from __future__ import annotations

import asyncio
from typing import Mapping

import pytest

from ivr.pbx import actions
from ivr.ami import events as ev
from ivr.ami.codec import Message
from ivr.calls.facts import Entered
from ivr.calls.tracker import Tracker
from ivr.routing.policy import Move, OverflowRule, decide
from ivr.routing.router import Router
from tests.helpers import eventually

RULES = {"first-line": OverflowRule("first-line", "common", after_ms=30_000)}
T0 = 1_795_530_000_000_000


def joined(tracker: Tracker, at_us: int = T0, uid: str = "u1") -> list[Entered]:
    facts = tracker.handle(ev.CallerJoined(at_us, uid, "PJSIP/anonymous-1", "79001", "first-line"))
    entered = [f for f in facts if isinstance(f, Entered)]
    assert entered == facts       # a join makes entries true, nothing else
    return entered


def test_decide_moves_a_caller_still_waiting_in_the_same_visit() -> None:
    tracker = Tracker()
    (entered,) = joined(tracker)
    assert decide(tracker, "u1", entered.visit, RULES) == Move(
        "u1", "PJSIP/anonymous-1", "first-line", "common", "timeout")


def test_decide_leaves_answered_gone_or_requeued_callers_alone() -> None:
    tracker = Tracker()
    (entered,) = joined(tracker)
    tracker.handle(ev.AgentAnswered(T0 + 29_000_000, "u1", "first-line", "op1", 29))
    assert decide(tracker, "u1", entered.visit, RULES) is None
    assert decide(tracker, "nobody", entered.visit, RULES) is None
    (again,) = joined(tracker, uid="u2")
    tracker.handle(ev.CallerLeft(T0 + 5, "u2", "first-line", abandon=True))
    assert decide(tracker, "u2", again.visit, RULES) is None       # leaving, not waiting


class FakeAmi:
    def __init__(self, fail: str | None = None) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.fail = fail

    async def action(self, name: str, fields: Mapping[str, str] | None = None,
                     timeout: float | None = None) -> Message:
        self.sent.append((name, dict(fields or {})))
        if name == self.fail:
            raise RuntimeError("Channel not found")
        return Message((("Response", "Success"),))


async def test_router_fires_on_asterisk_clock_and_acts_once() -> None:
    tracker, ami = Tracker(), FakeAmi()
    now = T0 / 1e6 + 29.95           # ivr reads the join late: 50 ms before the deadline
    router = Router(tracker, RULES, lambda m: actions.move(ami, m), clock=lambda: now)
    for fact in joined(tracker):
        router.on_fact(fact)
    await eventually(lambda: len(ami.sent) == 2, timeout=2)
    assert [name for name, _ in ami.sent] == ["Setvar", "Redirect"]
    assert ami.sent[0][1] == {"Channel": "PJSIP/anonymous-1", "Variable": "IVR_MOVE", "Value": "timeout"}
    assert ami.sent[1][1] == {"Channel": "PJSIP/anonymous-1", "Context": "ivr-queues",
                              "Exten": "common", "Priority": "1"}


async def test_router_cancels_the_timer_when_the_caller_leaves() -> None:
    tracker, ami = Tracker(), FakeAmi()
    router = Router(tracker, RULES, lambda m: actions.move(ami, m), clock=lambda: T0 / 1e6 + 29.9)
    for entry in joined(tracker):
        router.on_fact(entry)
    for fact in tracker.handle(ev.CallerLeft(T0 + 1, "u1", "first-line", abandon=True)):
        router.on_fact(fact)
    for fact in tracker.handle(ev.Hangup(T0 + 2, "u1")):
        router.on_fact(fact)
    assert router._timers == {}
    await asyncio.sleep(0.2)         # past the would-be deadline: nothing may be sent
    assert ami.sent == []


async def test_a_failed_redirect_clears_the_move_reason() -> None:
    ami = FakeAmi(fail="Redirect")
    move = Move("u1", "PJSIP/anonymous-1", "first-line", "common", "timeout")
    with pytest.raises(RuntimeError):
        await actions.move(ami, move)
    assert [(n, f.get("Value")) for n, f in ami.sent] == [
        ("Setvar", "timeout"), ("Redirect", None), ("Setvar", "")]
