"""The lab's dialplan and ivr share the lab's dialplan secret (`ivr lab up` writes both
sides): a real SIPp call is identified and routed by ivr.  An ivr that expects another
secret answers the dialplan 401, and the caller still reaches first-line by the
dialplan's default route, unidentified."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator

import pytest

from ivr.calls.facts import Entered
from ivr.calls.journeys import Journey
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from ivr.service import start
from tests.helpers import eventually
from tests.lab.conftest import Running, lab_config

pytestmark = pytest.mark.lab
OPERATORS = ("op1", "op2", "op3", "op4")


def queued(ivr: Running) -> list[Journey]:
    uids = [f.uniqueid for f in ivr.of(Entered) if f.queue == "first-line"]
    return [j for u in uids if (j := ivr.app.tracker.journeys.get(u)) is not None]


async def test_the_labs_dialplan_sends_its_secret(lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    assert ivr.app.config.ami.dialplan_secret == lab.status().dialplan_secret != ""
    phones += [traffic.agent(op, ring_ms=1000) for op in OPERATORS]
    phones.append(traffic.callers(1, hold_ms=6000, rate=1, number_prefix="7910"))   # north
    await eventually(lambda: bool(queued(ivr)), timeout=20, interval=0.1, what="caller queued")
    journey = queued(ivr)[0]
    assert journey.area == "north" and journey.account != ""       # ivr identified them
    assert ivr.value("ivr_route_decisions_total", route="first-line") >= 1
    assert ivr.app.registry.get_sample_value("ivr_auth_failures_total",
                                             {"kind": "dialplan_secret"}) == 0


@pytest.fixture
async def ivr_other_secret(lab: Lab, tmp_path: Path) -> AsyncIterator[Running]:
    config = lab_config(lab, ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    config = replace(config, ami=replace(config.ami, dialplan_secret="not-the-labs-secret-0001"))
    app, runner = await start(config)
    await eventually(lambda: app.ready, timeout=15, what="ivr ready")
    yield Running(app)
    await runner.cleanup()


async def test_a_refused_dialplan_still_routes_the_caller(lab: Lab, ivr_other_secret: Running,
                                                           phones: list[traffic.Sipp]) -> None:
    ivr = ivr_other_secret
    phones += [traffic.agent(op, ring_ms=1000) for op in OPERATORS]
    phones.append(traffic.callers(1, hold_ms=6000, rate=1, number_prefix="7910"))
    await eventually(lambda: bool(queued(ivr)), timeout=20, interval=0.1,
                     what="caller queued by the default route")
    journey = queued(ivr)[0]
    assert (journey.account, journey.area) == ("", "")            # ivr told the dialplan nothing
    assert ivr.value("ivr_route_decisions_total", route="first-line") == 0
    assert (ivr.app.registry.get_sample_value("ivr_auth_failures_total",
                                              {"kind": "dialplan_secret"}) or 0) >= 1
