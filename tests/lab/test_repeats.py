"""Repeat callers on the lab: a caller who hangs up and calls again keeps their
place in the queue (QUEUE_PRIO, seen in Asterisk's `queue show`), and a second
line of a caller already waiting is told so and ended."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Callable

import pytest

from ivr.calls.facts import JourneyEnded
from ivr.routing import repeats
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from tests.helpers import eventually
from ivr.service import start
from tests.lab.conftest import Running, lab_config
from tests.lab.test_desk_phone import listening

pytestmark = pytest.mark.lab
OPERATORS = ("op1", "op2", "op3", "op4")


def prios(lab: Lab) -> list[int]:
    return [int(p) for p in re.findall(r"prio: (\d+)", lab.cli("queue show first-line"))]


async def test_a_caller_who_calls_again_keeps_their_place(lab: Lab, ivr: Running,
                                                          phones: list[traffic.Sipp]) -> None:
    phones += [traffic.agent(op, ring_ms=120_000) for op in OPERATORS]   # nobody answers
    phones.append(traffic.callers(1, hold_ms=9000, number_prefix="7920"))
    await eventually(lambda: bool(ivr.of(JourneyEnded)), timeout=20, what="the first call over")
    [first] = ivr.of(JourneyEnded)
    assert first.outcome == "abandoned"
    first_joined = first.record.entered_us
    phones.append(traffic.callers(1, hold_ms=12_000, number_prefix="7920"))
    await eventually(lambda: len(ivr.app.tracker.waiting("first-line")) == 1, timeout=15,
                     what="the second call waiting")
    # Asterisk itself holds the caller by the first call's join.
    assert prios(lab) == [repeats.prio(first_joined)]
    assert ivr.value("ivr_repeat_calls_total", kind="after_abandon") == 1
    # The ledger links the two calls.
    await ivr.app.ledger.flush()
    [again] = ivr.app.tracker.waiting("first-line")
    db = ivr.app.config.ledger.url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT uniqueid, kind, repeat_of, first_us FROM repeats").fetchall()
    assert rows == [(again.uniqueid, "after_abandon", first.uniqueid, first_joined)]


async def redial(lab: Lab, ivr: Running, phones: list[traffic.Sipp],
                 call: Callable[[], traffic.Sipp]) -> tuple[JourneyEnded, str]:
    """`call` hangs up in first-line, then calls again from the same number: the
    second call waits with the first one's place, and is counted once as its repeat.
    The first call's end and the second call's uniqueid."""
    phones += [traffic.agent(op, ring_ms=120_000) for op in OPERATORS]   # nobody answers
    phones.append(call())
    await eventually(lambda: bool(ivr.of(JourneyEnded)), timeout=25, what="the first call over")
    [first] = ivr.of(JourneyEnded)
    assert first.outcome == "abandoned" and first.record.visits[0].queue == "first-line"
    phones.append(call())                       # SIPp numbers each process's calls from 1
    await eventually(lambda: len(ivr.app.tracker.waiting("first-line")) == 1, timeout=20,
                     what="the second call waiting")
    [again] = ivr.app.tracker.waiting("first-line")
    assert again.caller == first.record.caller
    assert prios(lab) == [repeats.prio(first.record.entered_us)]
    assert ivr.value("ivr_repeat_calls_total", kind="after_abandon") == 1
    await ivr.app.ledger.flush()
    db = ivr.app.config.ledger.url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT uniqueid, kind, repeat_of, first_us FROM repeats").fetchall()
    assert rows == [(again.uniqueid, "after_abandon", first.uniqueid, first.record.entered_us)]
    return first, again.uniqueid


async def test_an_unknown_number_that_types_nothing_is_judged_when_it_calls_again(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    """Issue 20, item 7: 5561x is not in the directory and types nothing at the account
    prompt; the dialplan still asks ivr the second question (an empty account), where
    the call is judged.  Greeting, prompt and its 3 s: in first-line about 10 s in."""
    first, again = await redial(lab, ivr, phones, lambda: traffic.callers(
        1, hold_ms=13_000, number_prefix="5561"))
    assert first.record.caller == "55611" and first.record.account == ""
    assert ivr.app.tracker.journeys[again].account == ""
    # Each call: the question that asks for the account, then the one that routes it.
    assert ivr.value("ivr_route_decisions_total", route="ask-account") == 2
    assert ivr.value("ivr_route_decisions_total", route="first-line") == 2


async def test_an_unknown_number_that_types_an_account_is_judged_when_it_calls_again(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    first, again = await redial(lab, ivr, phones, lambda: traffic.typing_caller(
        "100402#", type_after_ms=4500, hold_ms=6000, number_prefix="5562"))
    assert (first.record.caller, first.record.account) == ("55621", "100402")
    assert ivr.app.tracker.journeys[again].account == "100402"


async def test_a_caller_keeps_their_place_across_a_restart_of_ivr(lab: Lab, tmp_path: Path,
                                                                   phones: list[traffic.Sipp]) -> None:
    """The first call is abandoned, ivr restarts (the ledger is all it has), the caller
    calls again: Asterisk holds them by the first call's join."""
    config = lab_config(lab, ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    phones += [traffic.agent(op, ring_ms=120_000) for op in OPERATORS]   # nobody answers
    app, runner = await start(config)
    try:
        before = Running(app)
        await eventually(lambda: app.ready, timeout=15, what="ivr ready")
        phones.append(traffic.callers(1, hold_ms=9000, number_prefix="7930"))
        await eventually(lambda: bool(before.of(JourneyEnded)), timeout=20,
                         what="the first call over")
        [first] = before.of(JourneyEnded)
        assert first.outcome == "abandoned"
    finally:
        await runner.cleanup()                      # the ledger writes what it holds
    app, runner = await start(config)
    try:
        after = Running(app)
        await eventually(lambda: app.ready, timeout=15, what="ivr ready again")
        phones.append(traffic.callers(1, hold_ms=12_000, number_prefix="7930"))
        await eventually(lambda: len(app.tracker.waiting("first-line")) == 1, timeout=15,
                         what="the second call waiting")
        assert prios(lab) == [repeats.prio(first.record.entered_us)]
        assert after.value("ivr_repeat_calls_total", kind="after_abandon") == 1
    finally:
        await runner.cleanup()


async def test_a_second_line_of_a_waiting_caller_is_told_and_ended(lab: Lab, ivr: Running,
                                                                   phones: list[traffic.Sipp]) -> None:
    phones += [traffic.agent(op, ring_ms=120_000) for op in OPERATORS]
    async with listening(lab) as heard:
        phones.append(traffic.callers(1, hold_ms=25_000, number_prefix="7910"))   # 100101
        await eventually(lambda: len(ivr.app.tracker.waiting("first-line")) == 1, timeout=15,
                         what="the first line waiting")
        # From an unknown number, the caller types the same account.
        phones.append(traffic.typing_caller("100101#", type_after_ms=4500, hold_ms=15_000,
                                            number_prefix="5557"))
        await eventually(lambda: any("already-waiting" in p for p in heard.played.values()),
                         timeout=20, what=lambda: f"the second line told (heard {dict(heard.played)})")
    assert ivr.value("ivr_repeat_calls_total", kind="concurrent") == 1
    assert ivr.value("ivr_route_decisions_total", route="concurrent") == 1
    assert len(ivr.app.tracker.waiting("first-line")) == 1       # the second never queued
