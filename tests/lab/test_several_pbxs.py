"""One ivr following two lab PBXs at once: the default lab and `ivr lab up --name b`.

Each PBX has its own AMI connection, resync and callers: calls on both are
counted with their pbx label and kept with their pbx in the ledger, the
dialplan of each names its PBX to ivr, and a PBX going away touches none of
the other's callers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ivr import config as cfg
from ivr.calls.facts import JourneyEnded, Unobserved
from ivr.cli.lab import lab_routing
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from ivr.ledger.store import Store
from ivr.service import start
from tests.helpers import eventually
from tests.lab.conftest import Running

pytestmark = pytest.mark.lab

OPERATORS = ("op1", "op2", "op3", "op4")


@pytest.fixture(scope="module")
def lab_b(lab: Lab) -> Iterator[Lab]:
    b = Lab(name="b")
    b.up()
    b.forget_registrations()
    yield b
    b.down()


def _ami(lab: Lab) -> cfg.AmiConfig:
    status = lab.status()
    a = status.ami
    return cfg.AmiConfig(host=a.host, port=a.port, username=a.username, secret=a.secret,
                         dialplan_secret=status.dialplan_secret)    # each lab's own


@pytest.fixture
async def ivr2(lab: Lab, lab_b: Lab, tmp_path: Path) -> AsyncIterator[Running]:
    config = cfg.Config(pbx=(cfg.PbxConfig("default", _ami(lab)), cfg.PbxConfig("b", _ami(lab_b))),
                        ledger=cfg.LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    config = lab_routing(config, lab.status())
    app, runner = await start(config)
    await eventually(lambda: app.ready, timeout=15, what="ivr ready on both PBXs")
    running = Running(app)
    yield running
    await runner.cleanup()


async def test_calls_on_two_pbxs_at_once(lab: Lab, lab_b: Lab, ivr2: Running,
                                         phones: list[traffic.Sipp]) -> None:
    lab_b.hangup_all()
    phones += [traffic.agent(op, ring_ms=2000) for op in OPERATORS]
    phones += [traffic.agent(op, ring_ms=2000, offset=lab_b.offset) for op in OPERATORS]
    phones.append(traffic.callers(2, hold_ms=9000, rate=2, number_prefix="7910"))
    phones.append(traffic.callers(3, hold_ms=9000, rate=3, number_prefix="7930",
                                  sip_port=lab_b.sip_port))
    await eventually(lambda: len(ivr2.of(JourneyEnded)) >= 5, timeout=40, interval=0.2,
                     what="5 journeys ended")
    records = [f.record for f in ivr2.of(JourneyEnded)]
    assert sorted(r.pbx for r in records) == ["b", "b", "b", "default", "default"]
    assert all(r.payable for r in records)
    for pbx, calls in (("default", 2), ("b", 3)):
        assert ivr2.value("ivr_queue_exits_total", pbx=pbx, queue="first-line",
                          outcome="answered") == calls
        assert ivr2.value("ivr_payable_calls_total", pbx=pbx) == calls
        # Each dialplan named its PBX in its requests (IVR_PBX).
        assert ivr2.value("ivr_route_decisions_total", pbx=pbx, route="first-line") == calls
        assert ivr2.value("ivr_ami_up", pbx=pbx) == 1
    # The ledger keeps each call with its PBX's name.
    await eventually(lambda: ivr2.app.ledger.written >= 5 and ivr2.app.ledger.backlog == 0,
                     timeout=5, what="the ledger written")
    stored = await ivr2.app.store.run(Store.calls, 0, 2**62)
    assert sorted(c.pbx for c in stored) == ["b", "b", "b", "default", "default"]


async def test_a_pbx_going_away_leaves_the_others_callers_alone(
        lab: Lab, lab_b: Lab, ivr2: Running, phones: list[traffic.Sipp]) -> None:
    lab_b.hangup_all()
    # Nobody answers on the default PBX: its callers wait through b's outage.
    phones += [traffic.agent(op, ring_ms=120_000) for op in OPERATORS]
    phones.append(traffic.callers(2, hold_ms=25_000, rate=2, number_prefix="7910"))
    default, b = ivr2.app.pbxs["default"], ivr2.app.pbxs["b"]
    await eventually(lambda: len(default.tracker.waiting("first-line")) == 2, timeout=15,
                     what="2 callers waiting on the default PBX")
    waiting = {j.uniqueid for j in default.tracker.waiting("first-line")}
    lab_b.down()
    try:
        await eventually(lambda: not b.ready, timeout=15, what="ivr noticed PBX b went away")
        assert default.ready and ivr2.value("ivr_ami_up", pbx="default") == 1
        assert {j.uniqueid for j in default.tracker.waiting("first-line")} == waiting
        assert not ivr2.of(Unobserved)
        assert ivr2.value("ivr_ami_reconnects_total", pbx="default") == 0
    finally:
        lab_b.up()
    await eventually(lambda: b.ready, timeout=20, what="PBX b back and resynced")
    assert {j.uniqueid for j in default.tracker.waiting("first-line")} == waiting
    assert ivr2.value("ivr_ami_reconnects_total", pbx="default") == 0
    assert ivr2.value("ivr_ami_reconnects_total", pbx="b") >= 1
