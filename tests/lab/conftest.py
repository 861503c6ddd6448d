"""Fixtures for end-to-end tests on the real lab PBX with SIPp.

Outside CI a machine without root, debootstrap or sipp skips these tests;
with CI=true a missing part fails them instead.

ivr records its AMI stream in every test (as `ivr run --record-ami` does).
With IVR_RECORD_FIXTURES=1, a passing test marked `recorded` keeps it as our
own fixture: tests/fixtures/shapes/<test>.ami, and beside it the verdict the
test checked against Asterisk (ivr's calls and queue_log's rows for them),
which tests/unit/test_shape_fixtures.py replays without the lab.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, TypeVar

import pytest

from ivr import config as cfg
from ivr.ami.recording import Recorder
from ivr.app import Services
from ivr.cli.lab import lab_routing
from ivr.calls.facts import Fact, JourneyEnded
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from ivr.pbx.replay import ReplayedCall
from ivr.service import start
from tests.helpers import eventually, require


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    for tool in ("debootstrap", "sipp"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make setup)"
    return None


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    missing = _missing()
    require(missing is None, f"lab tests cannot run: {missing}")
    lab = Lab()
    lab.up()
    # A softphone registered as an agent would be rung alongside SIPp.
    lab.forget_registrations()
    yield lab


def lab_config(lab: Lab, listen_port: int = 9105, ledger_url: str = "") -> cfg.Config:
    """ivr as `ivr run` configures itself on the lab; on 9105, where the dialplan asks.
    The ledger is the lab's unless the test gives its own."""
    status = lab.status()
    ami = status.ami
    base = cfg.Config(listen_port=listen_port, ledger=cfg.LedgerConfig(url=ledger_url))
    base = replace(base, ami=replace(base.ami, host=ami.host, port=ami.port,
                                     username=ami.username, secret=ami.secret))
    return lab_routing(base, status)


F = TypeVar("F", bound=Fact)


class Running:
    """ivr running against the lab, with every fact it produced."""

    def __init__(self, app: Services) -> None:
        self.app = app
        self.facts: list[Fact] = []
        app.listeners.append(self.facts.append)

    def of(self, kind: type[F]) -> list[F]:
        """The facts of one kind, typed as that kind: `ivr.of(Exited)[0].outcome`."""
        return [f for f in self.facts if isinstance(f, kind)]

    def value(self, name: str, **labels: str) -> float:
        """A sample of the lab PBX's (pbx="default" unless the labels say)."""
        if name not in ("ivr_ledger_backlog_records", "ivr_incidents_active") \
                and not name.startswith(("ivr_ledger_write_errors", "ivr_ledger_dropped")):
            labels = {"pbx": "default", **labels}
        return self.app.registry.get_sample_value(name, labels) or 0.0


SHAPES = Path(__file__).parents[1] / "fixtures" / "shapes"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when == "call":
        item.stash[_PASSED] = report.passed
    return report


_PASSED = pytest.StashKey[bool]()


@pytest.fixture
async def ivr(lab: Lab, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Running]:
    """ivr on the lab, with a ledger of the test's own; its decisions go into queue_log."""
    async for running in _ivr(lab, tmp_path, request):
        yield running


@pytest.fixture
async def ivr_monitor(lab: Lab, tmp_path: Path, request: pytest.FixtureRequest
                      ) -> AsyncIterator[Running]:
    """ivr as `ivr`, logged in as the lab's read-only monitoring user: no `dialplan`
    class, so no VarSet (QUEUESTATUS, IVR_MOVE) reaches it."""
    async for running in _ivr(lab, tmp_path, request, monitor=True):
        yield running


async def _ivr(lab: Lab, tmp_path: Path, request: pytest.FixtureRequest,
               monitor: bool = False, configure: Callable[[cfg.Config], cfg.Config] | None = None
               ) -> AsyncGenerator[Running, None]:
    config = lab_config(lab, ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    config = replace(config, ledger=replace(config.ledger, queue_log_decisions=True))
    if configure is not None:
        config = configure(config)
    if monitor:
        user = lab.status().ami_monitor
        assert user is not None
        config = replace(config, ami=replace(config.ami, username=user.username,
                                             secret=user.secret))
    recording = tmp_path / "ami.rec"
    recorder = Recorder(recording)
    since = time.time()
    app, runner = await start(config, recorder)
    await eventually(lambda: app.ready, timeout=15, what="ivr ready")
    running = Running(app)
    yield running
    await runner.cleanup()
    recorder.close()
    if os.environ.get("IVR_RECORD_FIXTURES") == "1" and request.node.get_closest_marker("recorded") \
            and request.node.stash.get(_PASSED, False):
        _keep(request.node.name.removeprefix("test_"), recording, running, lab, since)


def _keep(name: str, recording: Path, running: Running, lab: Lab, since: float) -> None:
    """The recording and the verdict the test checked, as tests/fixtures/shapes/NAME.*"""
    calls = [ReplayedCall.of_record(f.record).to_json() for f in running.of(JourneyEnded)]
    ours = {c["uniqueid"] for c in calls}
    rows: dict[str, list[str]] = {uid: [] for uid in ours}
    for line in lab.queue_log().splitlines():
        epoch, callid, rest = line.split("|", 2)
        if int(epoch) >= int(since) - 1 and callid in ours:
            rows[callid].append(rest)          # queue|agent|event|data...
    SHAPES.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(recording, SHAPES / f"{name}.ami")
    verdict = {"recorded": time.strftime("%Y-%m-%d", time.gmtime(since)),
               "asterisk": lab.cli("core show version").split()[1], "calls": calls,
               "queue_log": rows}
    (SHAPES / f"{name}.json").write_text(json.dumps(verdict, indent=1) + "\n")


@pytest.fixture
def phones(lab: Lab) -> Iterator[list[traffic.Sipp]]:
    """SIPp processes a test starts; all stopped, and the lab's calls ended, at the end."""
    lab.hangup_all()
    started: list[traffic.Sipp] = []
    yield started
    for sipp in started:
        sipp.stop()
    lab.hangup_all()
