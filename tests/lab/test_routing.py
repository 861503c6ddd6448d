"""Routing end to end on the lab: entry, known incidents, escalation, live moves, fallback.

SIPp plays customers and agents; ivr answers the dialplan on 9105 (IVR_URL)
with the lab's subscriber directory (every 79N0M caller is known: 791xx
north, 794xx south, 797xx center) and API token.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

import aiohttp
import pytest

from ivr.calls.facts import Entered, Exited, JourneyEnded
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from tests.fixtures.capture import Recorder
from tests.helpers import eventually
from tests.lab.conftest import Running
from tests.lab.test_sla_scenarios import queue_log

pytestmark = pytest.mark.lab
OPERATORS = ("op1", "op2", "op3", "op4")
ENGINEERS = ("eng1", "eng2")


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base, self.token = session, base, token

    async def __call__(self, method: str, path: str, body: Any = None, token: str | None = None,
                       raw: bytes | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token if token is None else token}"}
        async with self.session.request(method, self.base + path, json=body, data=raw,
                                        headers=headers) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def api(ivr: Running) -> AsyncIterator[Api]:
    cfg = ivr.app.config
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{cfg.listen_port}", cfg.api.token)


def first_line_call(ivr: Running) -> str:
    return next(f.uniqueid for f in ivr.of(Entered) if f.queue == "first-line")


def answered_in(ivr: Running, queue: str) -> list[str]:
    return [f.uniqueid for f in ivr.of(Exited)
            if f.queue == queue and f.outcome == "answered"]


async def test_incident_is_announced_and_blocks_escalation(lab: Lab, ivr: Running, api: Api,
                                                           phones: list[traffic.Sipp]) -> None:
    status, incident = await api("POST", "/api/v1/incidents",
                                 {"area": "north", "message": "Fibre cut in the north.", "expires_in": 600})
    assert status == 201 and incident["area"] == "north"
    phones += [traffic.agent(op, ring_ms=1500) for op in OPERATORS]
    phones += [traffic.agent(eng, ring_ms=1000) for eng in ENGINEERS]
    async with Recorder(lab) as rec:
        phones.append(traffic.callers(1, hold_ms=15_000, rate=1, number_prefix="7910"))  # north
        await eventually(lambda: bool(answered_in(ivr, "first-line")), timeout=25, interval=0.2,
                         what="the caller reached an operator")
        uid = answered_in(ivr, "first-line")[0]
        status, body = await api("POST", f"/api/v1/calls/{uid}/escalate")
    assert status == 409 and body["incident"] == incident["id"], body
    # The announcement played (seen on AMI), its own prompt, before the queue.
    assert f"ivr/incident-{incident['id']}".encode() in bytes(rec.data)
    assert ivr.value("ivr_incident_announcements_total") >= 1
    assert ivr.value("ivr_escalations_total", result="refused_incident") == 1
    assert ivr.value("ivr_queue_entered_total", queue="engineers") == 0
    status, _ = await api("DELETE", f"/api/v1/incidents/{incident['id']}")
    assert status == 200


async def test_incident_elsewhere_does_not_touch_the_caller(lab: Lab, ivr: Running, api: Api,
                                                            phones: list[traffic.Sipp]) -> None:
    await api("POST", "/api/v1/incidents", {"area": "south", "message": "South is down.", "expires_in": 600})
    phones += [traffic.agent(op, ring_ms=1500) for op in OPERATORS]
    async with Recorder(lab) as rec:
        phones.append(traffic.callers(1, hold_ms=8000, rate=1, number_prefix="7910"))  # north
        await eventually(lambda: bool(answered_in(ivr, "first-line")), timeout=25, interval=0.2)
    assert b"ivr/incident-" not in bytes(rec.data) and b"known-incident" not in bytes(rec.data)
    assert ivr.value("ivr_incident_announcements_total") == 0
    assert ivr.value("ivr_route_decisions_total", route="first-line") >= 1


async def test_escalation_through_the_api_reaches_an_engineer(lab: Lab, ivr: Running, api: Api,
                                                              phones: list[traffic.Sipp]) -> None:
    phones += [traffic.agent(op, ring_ms=1500) for op in OPERATORS]
    phones += [traffic.agent(eng, ring_ms=1000) for eng in ENGINEERS]
    phones.append(traffic.callers(1, hold_ms=15_000, rate=1, number_prefix="7940"))
    await eventually(lambda: bool(answered_in(ivr, "first-line")), timeout=25, interval=0.2)
    uid = answered_in(ivr, "first-line")[0]
    status, body = await api("POST", f"/api/v1/calls/{uid}/escalate")
    assert status == 202 and body["queue"] == "engineers"
    await eventually(lambda: bool(answered_in(ivr, "engineers")), timeout=15, interval=0.2,
                     what="an engineer answered")
    status, call = await api("GET", f"/api/v1/calls/{uid}")
    assert status == 200 and call["path"] == ["first-line", "engineers"] and call["area"] == "south"
    assert ivr.value("ivr_escalations_total", result="accepted") == 1


@pytest.mark.recorded
async def test_escalation_by_operator_transfer_reaches_an_engineer(lab: Lab, ivr: Running,
                                                                   phones: list[traffic.Sipp]) -> None:
    since = time.time()
    phones += [traffic.transferring_agent(op, ring_ms=1000, talk_ms=2000) for op in OPERATORS]
    phones += [traffic.agent(eng, ring_ms=1000) for eng in ENGINEERS]
    phones.append(traffic.callers(1, hold_ms=15_000, rate=1, number_prefix="7970"))
    await eventually(lambda: bool(ivr.of(JourneyEnded)), timeout=30, interval=0.2)
    uid = answered_in(ivr, "engineers")[0]
    assert answered_in(ivr, "first-line") == [uid]
    events = [(q, e) for q, e, _ in queue_log(lab, since)[uid]]
    assert ("first-line", "BLINDTRANSFER") in events and ("engineers", "CONNECT") in events
    assert ivr.value("ivr_escalations_total", result="accepted") == 1


async def test_transfer_refused_during_an_incident_ends_politely(lab: Lab, ivr: Running, api: Api,
                                                                 phones: list[traffic.Sipp]) -> None:
    await api("POST", "/api/v1/incidents", {"area": "*", "message": "Everything is down.", "expires_in": 600})
    phones += [traffic.transferring_agent(op, ring_ms=1000, talk_ms=1000) for op in OPERATORS]
    phones += [traffic.agent(eng, ring_ms=1000) for eng in ENGINEERS]
    async with Recorder(lab) as rec:
        phones.append(traffic.callers(1, hold_ms=30_000, rate=1, number_prefix="7970"))
        await eventually(lambda: bool(ivr.of(JourneyEnded)), timeout=40, interval=0.2,
                         what="the call ended")
    data = bytes(rec.data)
    assert b"ivr/escalation-refused" in data           # the polite goodbye played
    assert ivr.value("ivr_queue_entered_total", queue="engineers") == 0
    assert ivr.value("ivr_escalations_total", result="refused_incident") == 1


async def test_waiting_caller_moved_by_hand(
        lab: Lab, ivr: Running, api: Api, phones: list[traffic.Sipp]) -> None:
    phones += [traffic.agent(op, ring_ms=120_000) for op in OPERATORS]      # nobody answers
    phones += [traffic.agent(g, ring_ms=1000) for g in ("gen1", "gen2")]
    phones.append(traffic.callers(1, hold_ms=20_000, rate=1, number_prefix="7910"))
    await eventually(lambda: bool(ivr.of(Entered)), timeout=10, interval=0.1)
    uid = first_line_call(ivr)
    status, queues = await api("GET", "/api/v1/queues")
    assert status == 200 and [c["uniqueid"] for c in queues["queues"]["first-line"]["waiting"]] == [uid]
    status, body = await api("POST", f"/api/v1/calls/{uid}/move", {"queue": "common"})
    assert status == 202 and body == {"result": "moved", "from": "first-line", "to": "common"}
    await eventually(lambda: bool(answered_in(ivr, "common")), timeout=10, interval=0.1)
    (left,) = [f for f in ivr.of(Exited) if f.queue == "first-line"]
    assert left.outcome == "withdrawn" and left.wait_ms < 10_000
    assert ivr.value("ivr_queue_overflow_total", from_queue="first-line", to_queue="common") == 1


async def test_api_rejects_bad_requests_and_changes_nothing(ivr: Running, api: Api) -> None:
    assert (await api("GET", "/api/v1/incidents", token="wrong"))[0] == 401
    assert (await api("POST", "/api/v1/incidents", raw=b"{not json"))[0] == 400
    status, body = await api("POST", "/api/v1/incidents", {"area": "north", "message": "", "expires_in": 60})
    assert status == 400 and "message" in body["error"]
    status, body = await api("POST", "/api/v1/incidents", {"area": "north", "message": "x", "expires_in": "soon"})
    assert status == 400 and "expires_in" in body["error"]
    assert (await api("GET", "/api/v1/incidents"))[1] == {"incidents": []}
    assert (await api("DELETE", "/api/v1/incidents/inc-nope"))[0] == 404
    assert (await api("POST", "/api/v1/calls/1.2/escalate"))[0] == 404
    assert (await api("POST", "/api/v1/calls/1.2/move", {"queue": "common"}))[0] == 404
    status, body = await api("POST", "/api/v1/calls/1.2/move", {"queue": "nowhere"})
    assert status == 400 and "unknown queue" in body["error"]
    assert ivr.value("ivr_incidents_active") == 0
    assert ivr.value("ivr_escalations_total", result="failed") == 0


async def test_calls_still_route_when_ivr_is_stopped(lab: Lab, phones: list[traffic.Sipp]) -> None:
    """No ivr at all: greeting, first-line, and the dialplan's own move to common."""
    since = time.time()
    phones += [traffic.agent(op, ring_ms=120_000) for op in OPERATORS]
    phones += [traffic.agent(g, ring_ms=1000) for g in ("gen1", "gen2")]
    caller = traffic.callers(1, hold_ms=38_000, rate=1, number_prefix="7910")
    phones.append(caller)
    assert caller.wait(timeout=60) == 0
    events = list(queue_log(lab, since).values())[-1]      # this call: the newest
    kinds = [(q, e) for q, e, _ in events]
    assert kinds[0] == ("first-line", "ENTERQUEUE")
    assert ("first-line", "EXITWITHTIMEOUT") in kinds
    assert ("common", "ENTERQUEUE") in kinds and ("common", "CONNECT") in kinds
    timeout = next(d for q, e, d in events if e == "EXITWITHTIMEOUT")
    assert 30 <= int(timeout[2]) <= 31      # whole seconds waited in first-line


async def test_incident_cli_against_the_running_ivr(ivr: Running) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    ivr_bin = str(Path(sys.executable).with_name("ivr"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}

    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        # In a thread: the ivr under test answers on this very event loop.
        return await asyncio.to_thread(subprocess.run, [ivr_bin, "incident", *args], env=env,
                                       capture_output=True, text=True, timeout=20)
    opened = await run("open", "--area", "center", "--message", "Maintenance in the center.",
                       "--expires-in", "120")
    assert opened.returncode == 0, opened.stderr
    incident = json.loads(opened.stdout)
    assert [i["id"] for i in json.loads((await run("list")).stdout)["incidents"]] == [incident["id"]]
    assert ivr.value("ivr_incidents_active") == 1
    assert (await run("close", incident["id"])).returncode == 0
    again = await run("close", incident["id"])
    assert again.returncode == 1 and again.stderr.strip() == f"ivr: 404: no active incident '{incident['id']}'"
    bad = await run("open", "--area", "North Side", "--message", "x")
    assert bad.returncode == 1 and bad.stderr.startswith("ivr: 400: area")


async def test_unknown_caller_types_an_account_number(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    phones += [traffic.agent(op, ring_ms=1000) for op in OPERATORS]
    # 5550x is not in the directory: after the greeting ivr asks for the account.
    # After the greeting (which takes one key: 2 to check a number).
    phones.append(traffic.typing_caller("100201#", type_after_ms=4500, hold_ms=8000))
    await eventually(lambda: bool(ivr.of(Entered)), timeout=20, interval=0.1, what="caller queued")
    journey = ivr.app.tracker.journeys[first_line_call(ivr)]
    assert (journey.caller, journey.account, journey.area) == ("55501", "100201", "south")
    assert ivr.value("ivr_route_decisions_total", route="ask-account") == 1


async def test_unknown_caller_may_go_on_unidentified(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    phones += [traffic.agent(op, ring_ms=1000) for op in OPERATORS]
    phones.append(traffic.callers(1, hold_ms=12_000, rate=1, number_prefix="5551"))
    await eventually(lambda: bool(answered_in(ivr, "first-line")), timeout=20, interval=0.1,
                     what="answered unidentified")
    journey = ivr.app.tracker.journeys[answered_in(ivr, "first-line")[0]]
    assert (journey.account, journey.area) == ("", "")
