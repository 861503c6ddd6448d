"""Ways of leaving a queue, on the lab, judged against Asterisk's own account.

The lab's own queues (ivr/lab/files: shape-key with a `context`, shape-redir)
have no members, so a caller waits until the test acts: it presses a key, or
another AMI session redirects it out.  Asterisk's verdict is its queue_log
and the events it raises; ivr's is the outcome it records.  The lab also
runs as a PBX with `timestampevents = no`, and ivr's session filter is
checked to keep out everything ivr does not follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest

from ivr.calls.facts import Exited, JourneyEnded
from ivr.calls.judge import Outcome
from ivr.ami.client import AmiClient, AmiSettings
from ivr.ami.codec import Message
from ivr.lab import traffic
from ivr.lab.pbx import AGENTS, Lab
from tests.helpers import eventually
from tests.lab.conftest import Running
from tests.lab.test_sla_scenarios import finished, queue_log

pytestmark = [pytest.mark.lab, pytest.mark.recorded]


@contextlib.asynccontextmanager
async def other_ami_client(lab: Lab, on_event: Callable[[Message], None] = lambda msg: None
                           ) -> AsyncIterator[AmiClient]:
    """A second AMI session, as another application (a wallboard, a CRM) would hold;
    it sees every event (no filter of ivr's)."""
    ami = lab.status().ami
    client = AmiClient(AmiSettings(ami.host, ami.port, ami.username, ami.secret),
                       on_event=on_event)
    task = asyncio.create_task(client.run())
    try:
        await eventually(lambda: client.up, timeout=10, what="the other AMI client up")
        yield client
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def exits_in(ivr: Running, queue: str) -> list[Exited]:
    return [f for f in ivr.of(Exited) if f.queue == queue]


async def test_a_key_pressed_while_waiting_is_an_exit_with_key(lab: Lab, ivr: Running,
                                                               phones: list[traffic.Sipp]) -> None:
    since = time.time()
    phones.append(traffic.typing_caller("1", type_after_ms=2000, hold_ms=4000,
                                        number_prefix="7961", service="8701"))
    await finished(ivr, 1, timeout=20)
    [left] = exits_in(ivr, "shape-key")
    assert left.outcome == Outcome.EXIT_WITH_KEY
    assert 1500 <= left.wait_ms <= 4000
    rows = queue_log(lab, since)[left.uniqueid]
    exit_row = [(e, d) for q, e, d in rows if q == "shape-key" and e == "EXITWITHKEY"]
    assert exit_row and exit_row[0][1][0] == "1", rows       # Asterisk: left by key 1
    assert not [e for _q, e, _d in rows if e == "ABANDON"]
    assert ivr.value("ivr_queue_exits_total", queue="shape-key", outcome="abandoned") == 0
    assert ivr.value("ivr_queue_exits_total", queue="shape-key", outcome=Outcome.EXIT_WITH_KEY) == 1


async def test_a_caller_redirected_away_by_another_client_is_transferred(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    since = time.time()
    phones.append(traffic.callers(1, hold_ms=15_000, number_prefix="7962", service="8702"))
    await eventually(lambda: bool(ivr.app.tracker.waiting("shape-redir")), timeout=10,
                     what="the caller waiting in shape-redir")
    [journey] = ivr.app.tracker.waiting("shape-redir")
    await asyncio.sleep(1.5)
    async with other_ami_client(lab) as other:
        reply = await other.action("Redirect", {"Channel": journey.channel,
                                                "Context": "lab-after-redirect",
                                                "Exten": "s", "Priority": "1"})
        assert reply.response == "Success"
    await finished(ivr, 1, timeout=15)
    [left] = exits_in(ivr, "shape-redir")
    assert left.outcome == "transferred"
    assert 1500 <= left.wait_ms < 5000
    # Asterisk itself writes an ABANDON for it: the reason ivr has to know better.
    rows = queue_log(lab, since)[left.uniqueid]
    assert [e for q, e, _d in rows if q == "shape-redir"][-1] == "ABANDON", rows
    [ended] = ivr.of(JourneyEnded)
    assert ended.outcome == "unanswered"


async def test_the_session_filter_keeps_out_what_ivr_does_not_follow(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    assert ivr.app.event_filter == "advanced"          # Asterisk 22
    before = ivr.app.ami.events_received, ivr.app.ami.events_skipped
    phones += [traffic.agent(op, ring_ms=2000) for op in ("op1", "op2", "op3", "op4")]
    phones.append(traffic.callers(3, hold_ms=9000, rate=3, number_prefix="7980"))
    await finished(ivr, 3, timeout=40)
    received = ivr.app.ami.events_received - before[0]
    skipped = ivr.app.ami.events_skipped - before[1]
    # Every answered call came with its followed events, and no noise came at all.
    assert received >= 3 * 5
    assert skipped == 0
    assert ivr.value("ivr_queue_exits_total", queue="first-line", outcome="answered") == 3


async def test_without_timestamps_waits_are_asterisks_holdtime(lab: Lab, ivr: Running,
                                                              phones: list[traffic.Sipp]) -> None:
    lab.event_timestamps(False)
    try:
        since = time.time()
        phones += [traffic.agent(op, ring_ms=3000) for op in ("op1", "op2", "op3", "op4")]
        phones.append(traffic.callers(3, hold_ms=9000, rate=3, number_prefix="7990"))
        await finished(ivr, 3, timeout=40)
    finally:
        lab.event_timestamps(True)
    assert ivr.app.timestamps is False
    assert ivr.value("ivr_ami_untimestamped_events_total") > 0
    asterisk = queue_log(lab, since)
    answered = [f for f in exits_in(ivr, "first-line") if f.outcome == "answered"]
    assert len(answered) == 3
    for fact in answered:
        [holdtime] = [int(d[0]) for q, e, d in asterisk[fact.uniqueid] if e == "CONNECT"]
        assert fact.wait_ms == holdtime * 1000, (fact, holdtime)
    records = [f.record for f in ivr.of(JourneyEnded)]
    assert {r.precision for r in records} == {"s"}


# -- members that are not a plain phone ----------------------------------------------

async def phones_up(*names: str) -> None:
    """Until each agent's SIPp holds its port.  These queues ring at once (no
    greeting first): an INVITE before SIPp listens fails, and the member with it."""
    def bound(port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return True
            return False
    await eventually(lambda: all(bound(AGENTS[n]) for n in names), timeout=5,
                     what=f"the phones of {names} listening")


async def free(ivr: Running, queue: str, *members: str) -> None:
    """Until the members are free: an earlier test's call may still hold a phone."""
    def state() -> list[str]:
        return [m.state if (m := ivr.app.tracker.members.get((queue, name))) else "unknown"
                for name in members]
    await eventually(lambda: all(s == "available" for s in state()), timeout=15,
                     what=lambda: f"members {members} of {queue} free (now {state()})")


def connect_rows(lab: Lab, since: float, uid: str, queue: str) -> list[tuple[str, list[str]]]:
    """queue_log's CONNECT rows of a call: (agent, data); agents are member names here."""
    rows = []
    for line in lab.queue_log().splitlines():
        epoch, callid, q, agent, event, *data = line.split("|")
        if int(epoch) >= int(since) and callid == uid and q == queue and event == "CONNECT":
            rows.append((agent, data))
    return rows


async def test_a_local_member_with_n_rings_then_answers(lab: Lab, ivr: Running,
                                                        phones: list[traffic.Sipp]) -> None:
    since = time.time()
    phones.append(traffic.agent("op1", ring_ms=4000))
    await phones_up("op1")
    phones.append(traffic.callers(1, hold_ms=12_000, number_prefix="7965", service="8703"))
    member = ("shape-local", "op1-local")
    # Ringing through a Local/.../n channel: Asterisk says "in use", not in a call.
    await eventually(lambda: bool(ivr.app.tracker.waiting("shape-local")), timeout=10,
                     what="the caller waiting in shape-local")
    await eventually(lambda: (m := ivr.app.tracker.members.get(member)) is not None
                     and m.status == 2, timeout=5, what="the Local member in use")
    assert ivr.app.tracker.members[member].state == "ringing"
    await eventually(lambda: bool(exits_in(ivr, "shape-local")), timeout=15, what="answered")
    [fact] = exits_in(ivr, "shape-local")
    assert fact.outcome == "answered" and 3500 <= fact.wait_ms < 6000
    assert ivr.app.tracker.members[member].state == "in_call"
    [(agent, data)] = connect_rows(lab, since, fact.uniqueid, "shape-local")
    assert agent == "op1-local" and abs(fact.wait_ms / 1000 - int(data[0])) < 1.0
    await finished(ivr, 1, timeout=20)
    [ended] = ivr.of(JourneyEnded)
    assert ended.record.answered_member == "op1-local"


async def test_a_local_member_without_n_is_optimised_away_and_still_answers(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    since = time.time()
    phones.append(traffic.agent("op2", ring_ms=2000))
    await phones_up("op2")
    phones.append(traffic.callers(1, hold_ms=8000, number_prefix="7966", service="8704"))
    await finished(ivr, 1, timeout=25)
    [fact] = exits_in(ivr, "shape-local-opt")
    assert fact.outcome == "answered"
    [(agent, data)] = connect_rows(lab, since, fact.uniqueid, "shape-local-opt")
    assert agent == "op2-opt" and abs(fact.wait_ms / 1000 - int(data[0])) < 1.0
    [ended] = ivr.of(JourneyEnded)
    assert ended.record.answered_member == "op2-opt"


async def test_a_member_whose_confirm_step_refuses_is_never_connected(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    await free(ivr, "shape-confirm", "op3")
    since = time.time()
    phones.append(traffic.agent("op4", ring_ms=1000))      # answers, then its step refuses
    phones.append(traffic.agent("op3", ring_ms=2000))
    await phones_up("op4", "op3")
    phones.append(traffic.callers(1, hold_ms=15_000, number_prefix="7968", service="8706"))
    await finished(ivr, 1, timeout=40)
    [fact] = exits_in(ivr, "shape-confirm")
    assert fact.outcome == "answered"
    rows = connect_rows(lab, since, fact.uniqueid, "shape-confirm")
    assert [agent for agent, _ in rows] == ["op3"]            # Asterisk: connected to op3 only
    [ended] = ivr.of(JourneyEnded)
    assert ended.record.answered_member == "op3"
    # The refusing member rang first: the wait covers its ring and refusal too.
    assert fact.wait_ms >= 3000


async def test_an_app_agent_pool_agent_answers_through_agentrequest(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    """The agent logs in from its phone (AgentLogin) and stays on the line; the
    queue's member Local/1001@lab-agents asks for it (AgentRequest), its state
    the agent's own device, Agent:1001."""
    member = ("shape-agent", "agent1001")

    def state() -> str:
        return m.state if (m := ivr.app.tracker.members.get(member)) else "unknown"
    phones.append(traffic.callers(1, hold_ms=40_000, number_prefix="7967", service="8710"))
    await eventually(lambda: state() == "available", timeout=15,
                     what=lambda: f"agent 1001 logged in (now {state()})")
    since = time.time()
    phones.append(traffic.callers(1, hold_ms=8000, number_prefix="7969", service="8707"))
    await eventually(lambda: bool(exits_in(ivr, "shape-agent")), timeout=15, what="answered")
    [fact] = exits_in(ivr, "shape-agent")
    assert fact.outcome == "answered"
    # Asterisk sends no QueueMemberStatus when the agent takes the call: the
    # AgentConnect says it.
    assert state() == "in_call"
    [(agent, data)] = connect_rows(lab, since, fact.uniqueid, "shape-agent")
    assert agent == "agent1001" and abs(fact.wait_ms / 1000 - int(data[0])) < 1.0
    await finished(ivr, 1, timeout=20)
    [ended] = ivr.of(JourneyEnded)
    assert ended.record.answered_member == "agent1001"
    # The caller hung up; the agent is still logged in, back in its holding bridge.
    await eventually(lambda: state() == "available", timeout=5,
                     what=lambda: f"agent 1001 free again (now {state()})")


async def test_ringall_with_a_member_that_never_answers(lab: Lab, ivr: Running,
                                                         phones: list[traffic.Sipp]) -> None:
    await free(ivr, "shape-ringall", "op1", "op2")
    since = time.time()
    phones.append(traffic.agent("op1", ring_ms=600_000))   # rings on, never answers
    phones.append(traffic.agent("op2", ring_ms=3000))
    await phones_up("op1", "op2")
    phones.append(traffic.callers(1, hold_ms=10_000, number_prefix="7962", service="8708"))
    # Both free members ring at once.
    await eventually(lambda: all(ivr.app.tracker.members[("shape-ringall", m)].state == "ringing"
                                 for m in ("op1", "op2")), timeout=10, what="op1 and op2 ringing")
    await eventually(lambda: bool(exits_in(ivr, "shape-ringall")), timeout=15, what="answered")
    [fact] = exits_in(ivr, "shape-ringall")
    assert fact.outcome == "answered" and 2500 <= fact.wait_ms < 5000
    [(agent, data)] = connect_rows(lab, since, fact.uniqueid, "shape-ringall")
    assert agent == "op2" and abs(fact.wait_ms / 1000 - int(data[0])) < 1.0
    await finished(ivr, 1, timeout=20)
    [ended] = ivr.of(JourneyEnded)
    assert ended.record.answered_member == "op2"
    # op1 rang the whole time and was let go when op2 answered (queue_log writes
    # nothing of it); it took no call.
    assert ivr.app.tracker.members[("shape-ringall", "op1")].state == "available"


async def test_leave_when_empty(lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    since = time.time()
    phones.append(traffic.callers(1, hold_ms=6000, number_prefix="7963", service="8705"))
    await finished(ivr, 1, timeout=20)
    [left] = exits_in(ivr, "shape-empty")
    assert left.outcome == "empty"
    rows = queue_log(lab, since)[left.uniqueid]
    assert [e for q, e, _d in rows if q == "shape-empty"][-1] == "EXITEMPTY", rows
    [ended] = ivr.of(JourneyEnded)
    assert ended.outcome == "unanswered"


async def test_a_caller_withdrawn_by_another_client(lab: Lab, ivr: Running,
                                                    phones: list[traffic.Sipp]) -> None:
    """QueueWithdrawCaller, as a CRM that takes a caller out of the queue does."""
    since = time.time()
    phones.append(traffic.callers(1, hold_ms=12_000, number_prefix="7964", service="8702"))
    await eventually(lambda: bool(ivr.app.tracker.waiting("shape-redir")), timeout=10,
                     what="the caller waiting in shape-redir")
    [journey] = ivr.app.tracker.waiting("shape-redir")
    await asyncio.sleep(1.5)
    async with other_ami_client(lab) as other:
        reply = await other.action("QueueWithdrawCaller", {"Queue": "shape-redir",
                                                           "Caller": journey.channel,
                                                           "WithdrawInfo": "crm"})
        assert reply.response == "Success"
    await finished(ivr, 1, timeout=15)
    [left] = exits_in(ivr, "shape-redir")
    assert left.outcome == "withdrawn"
    assert 1500 <= left.wait_ms < 5000
    rows = queue_log(lab, since)[left.uniqueid]
    assert [e for q, e, _d in rows if q == "shape-redir"][-1] == "WITHDRAW", rows
