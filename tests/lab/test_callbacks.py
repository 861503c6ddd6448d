"""Callbacks on the lab (issue 22): a caller in common presses 1, hangs up, keeps their
place; a placeholder waits there for them, and when an agent takes it, the lab's trunk
dials the customer's SIPp (127.0.0.1:5300) once.

common's members are paused but gen2, whose SIPp is started when a test wants an agent:
one member, so the queue offers its head caller alone and the order of service is the
queue's, not autofill's.  first-line moves its callers to common after 2 s (not 30)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from ivr import config as cfg
from ivr.calls.facts import JourneyAnswered, JourneyEnded
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from tests.helpers import eventually
from tests.lab.conftest import Running, _ivr

pytestmark = pytest.mark.lab
COMMON = "common"


def quick(config: cfg.Config) -> cfg.Config:
    queues = tuple(replace(q, overflow_after_seconds=2.0) if q.name == "first-line" else q
                   for q in config.queues)
    return replace(config, queues=queues, callback=replace(
        config.callback, attempts=2, retry_seconds=2, ring_seconds=5))


@asynccontextmanager
async def running(lab: Lab, tmp_path: Path, request: pytest.FixtureRequest
                  ) -> AsyncIterator[Running]:
    """ivr with `quick`'s config, on the test's ledger (a second one in the same test
    shares it: a restart)."""
    runs = _ivr(lab, tmp_path, request, configure=quick)
    ivr = await runs.__anext__()
    try:
        yield ivr
    finally:
        with contextlib.suppress(StopAsyncIteration):   # runs _ivr's cleanup: ivr stops
            await runs.__anext__()


def member(lab: Lab, name: str, paused: bool) -> None:
    lab.cli(f"queue {'pause' if paused else 'unpause'} member PJSIP/{name} queue {COMMON}")


@pytest.fixture
def one_agent(lab: Lab) -> Iterator[None]:
    """gen1 out of common for the test; gen2 too, until the test lets it take calls."""
    for name in ("gen1", "gen2"):
        member(lab, name, paused=True)
    yield
    for name in ("gen1", "gen2"):
        member(lab, name, paused=False)


def asking(number_prefix: str, key: str = "1", hold_ms: int = 15_000) -> traffic.Sipp:
    """A known customer (79x01) who calls the hotline, is moved to common at 2 s, and
    presses `key` about 3 s after reaching it (greeting 3.4 s, entry, first-line 2 s)."""
    return traffic.typing_caller(key, type_after_ms=9000, hold_ms=hold_ms,
                                 number_prefix=number_prefix)


def placeholder_waiting(ivr: Running) -> str:
    """The uniqueid of the placeholder waiting in common, or ""."""
    return next((j.uniqueid for j in ivr.app.tracker.waiting(COMMON) if j.placeholder), "")


def asked_ended(ivr: Running, number: str) -> list[JourneyEnded]:
    """The end of the call that asked (it came through first-line; its placeholder did not)."""
    return [f for f in ivr.of(JourneyEnded) if f.record.caller == number
            and f.record.visits and f.record.visits[0].queue == "first-line"]


def events(ivr: Running) -> list[tuple[str, str]]:
    db = ivr.app.config.ledger.url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT event, uniqueid FROM callback_events ORDER BY id").fetchall()


async def test_a_callback_is_served_at_the_callers_place_before_a_later_caller(
        lab: Lab, tmp_path: Path, request: pytest.FixtureRequest, one_agent: None,
        phones: list[traffic.Sipp]) -> None:
    async with running(lab, tmp_path, request) as ivr:
        customer = traffic.customer(ring_ms=300, talk_ms=1500)
        phones += [customer, asking("7930", key="1,,,1")]   # 1 again during the read-back
        await asyncio.sleep(3)
        phones.append(asking("7940", key="5", hold_ms=40_000))    # any other key: ignored
        await eventually(lambda: bool(placeholder_waiting(ivr)), timeout=25,
                         what="the placeholder waiting in common")
        await eventually(lambda: bool(asked_ended(ivr, "79301")), timeout=15,
                         what="the caller's call over after the read-back")
        asked = asked_ended(ivr, "79301")[0]
        assert asked.outcome == "callback"
        assert [v.outcome for v in asked.record.visits] == ["timeout", "callback"]
        await eventually(lambda: len(ivr.app.tracker.waiting(COMMON)) == 2, timeout=10,
                         what="the later caller in common too")
        await asyncio.sleep(4)          # the later caller has pressed 5 by now
        later = next(j for j in ivr.app.tracker.waiting(COMMON) if j.caller == "79401")
        holder = ivr.app.tracker.journeys[placeholder_waiting(ivr)]
        assert holder.caller == "79301"      # the agent's phone shows the customer
        [(cb, position)] = ivr.app.callbacks.pending()
        assert (cb.row.origin, position) == (asked.uniqueid, 1)
        assert ivr.value("ivr_callbacks_pending", queue=COMMON) == 1
        assert ivr.value("ivr_callbacks_total", queue=COMMON, result="requested") == 1
        assert (holder.account, holder.area) == ("100301", "center")   # for the agent's card
        phones.append(traffic.agent("gen2", ring_ms=300))
        member(lab, "gen2", paused=False)
        await eventually(lambda: customer.invites() == 1, timeout=15, what="the customer dialed")
        answered = [f for f in ivr.of(JourneyAnswered) if f.queue == COMMON]
        assert [a.uniqueid for a in answered] == [holder.uniqueid]
        assert not answered[0].payable
        assert ivr.app.tracker.journeys[later.uniqueid].waiting    # still waiting, after
        await eventually(lambda: ivr.value("ivr_callbacks_total", queue=COMMON,
                                           result="connected") == 1, timeout=10,
                         what="the callback connected")
        assert customer.invites() == 1
        await ivr.app.ledger.flush()
        assert [e for e, _ in events(ivr)] == ["placed", "queued", "dialing", "connected"]


async def test_a_customer_who_does_not_answer_is_dialed_twice_then_failed(
        lab: Lab, tmp_path: Path, request: pytest.FixtureRequest, one_agent: None,
        phones: list[traffic.Sipp]) -> None:
    """callback.attempts = 2, ring_seconds = 5, retry_seconds = 2: two dials, then failed."""
    async with running(lab, tmp_path, request) as ivr:
        customer = traffic.customer(ring_ms=600_000)           # rings, never answers
        phones += [customer, traffic.agent("gen2", ring_ms=300), asking("7950")]
        await eventually(lambda: bool(placeholder_waiting(ivr)), timeout=25,
                         what="the placeholder waiting in common")
        member(lab, "gen2", paused=False)
        await eventually(lambda: ivr.value("ivr_callbacks_total", queue=COMMON,
                                           result="failed") == 1, timeout=40,
                         what="the callback failed after its dials")
        assert customer.invites() == 2
        await ivr.app.ledger.flush()
        assert [e for e, _ in events(ivr)] == ["placed", "queued", "dialing", "retry",
                                               "placed", "queued", "dialing", "failed"]
        assert ivr.value("ivr_callbacks_pending", queue=COMMON) == 0


async def test_a_customer_who_calls_in_while_pending_cancels_the_callback(
        lab: Lab, tmp_path: Path, request: pytest.FixtureRequest, one_agent: None,
        phones: list[traffic.Sipp]) -> None:
    """The new call takes the callback's place (its QUEUE_PRIO) and nobody is dialed."""
    async with running(lab, tmp_path, request) as ivr:
        customer = traffic.customer(ring_ms=300)
        phones += [customer, asking("7960")]
        await eventually(lambda: bool(placeholder_waiting(ivr)), timeout=25,
                         what="the placeholder waiting in common")
        [(cb, _)] = ivr.app.callbacks.pending()
        phones.append(traffic.callers(1, hold_ms=20_000, number_prefix="7960"))   # 79601 again
        await eventually(lambda: ivr.value("ivr_callbacks_total", queue=COMMON,
                                           result="cancelled") == 1, timeout=15,
                         what="the callback cancelled")
        await eventually(lambda: not placeholder_waiting(ivr), timeout=5,
                         what="its placeholder out of common")
        again = next(j for j in ivr.app.tracker.journeys.values()
                     if j.caller == "79601" and not j.placeholder)
        await eventually(lambda: again.prio != 0, timeout=10, what="the new call's QUEUE_PRIO")
        assert again.prio == cb.row.prio
        [ended] = [f for f in ivr.of(JourneyEnded) if f.record.caller == "79601"
                   and f.record.visits and f.record.visits[-1].outcome == "withdrawn"]
        assert ended.outcome != "abandoned"
        assert customer.invites() == 0


async def test_a_callback_pending_across_a_restart_of_ivr_is_made_once(
        lab: Lab, tmp_path: Path, request: pytest.FixtureRequest, one_agent: None,
        phones: list[traffic.Sipp]) -> None:
    async with running(lab, tmp_path, request) as before:
        phones.append(asking("7970"))
        await eventually(lambda: bool(placeholder_waiting(before)), timeout=25,
                         what="the placeholder waiting in common")
        holder = placeholder_waiting(before)
    async with running(lab, tmp_path, request) as after:       # the same ledger
        await eventually(lambda: bool(after.app.callbacks.pending()), timeout=10,
                         what="the callback restored")
        [(cb, position)] = after.app.callbacks.pending()
        assert (cb.placeholder, position) == (holder, 1)       # the same placeholder, kept
        customer = traffic.customer(ring_ms=300, talk_ms=1500)
        phones += [customer, traffic.agent("gen2", ring_ms=300)]
        member(lab, "gen2", paused=False)
        await eventually(lambda: customer.invites() == 1, timeout=15, what="the customer dialed")
        await eventually(lambda: after.value("ivr_callbacks_total", queue=COMMON,
                                             result="connected") == 1, timeout=10,
                         what="the callback connected")
        assert customer.invites() == 1
        await after.app.ledger.flush()
        assert [e for e, _ in events(after)].count("placed") == 1


async def test_a_callback_pending_across_a_restart_of_the_pbx_is_placed_again_at_its_place(
        lab: Lab, tmp_path: Path, request: pytest.FixtureRequest, one_agent: None,
        phones: list[traffic.Sipp]) -> None:
    """Asterisk restarts with the placeholder waiting: ivr places it again, with the same
    QUEUE_PRIO, once Asterisk is back; then it is served and dialed once."""
    async with running(lab, tmp_path, request) as ivr:
        phones.append(asking("7980"))
        await eventually(lambda: bool(placeholder_waiting(ivr)), timeout=25,
                         what="the placeholder waiting in common")
        first = placeholder_waiting(ivr)
        [(cb, _)] = ivr.app.callbacks.pending()
        await asyncio.to_thread(lab.down)
        await asyncio.to_thread(lab.up)
        for name in ("gen1", "gen2"):           # a restarted Asterisk forgot the pauses
            member(lab, name, paused=True)
        await eventually(lambda: placeholder_waiting(ivr) not in ("", first), timeout=40,
                         what="a new placeholder waiting in common")
        assert [int(p) for p in re.findall(r"prio: (\d+)", lab.cli(f"queue show {COMMON}"))] \
            == [cb.row.prio]
        customer = traffic.customer(ring_ms=300, talk_ms=1500)
        phones += [customer, traffic.agent("gen2", ring_ms=300)]
        member(lab, "gen2", paused=False)
        await eventually(lambda: ivr.value("ivr_callbacks_total", queue=COMMON,
                                           result="connected") == 1, timeout=30,
                         what="the callback connected")
        assert customer.invites() == 1
