"""Fixtures for end-to-end tests on the real lab PBX with SIPp.

Outside CI a machine without root, debootstrap or sipp skips these tests;
with CI=true a missing part fails them instead.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from ivr import config as cfg
from ivr.app import App
from ivr.cli import lab_routing
from ivr.journeys import Fact
from ivr.lab import traffic
from ivr.lab.pbx import Lab
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


class Running:
    """ivr running against the lab, with every fact it produced."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.facts: list[Fact] = []
        app.listeners.append(self.facts.append)

    def of(self, kind: type) -> list[Fact]:
        return [f for f in self.facts if isinstance(f, kind)]

    def value(self, name: str, **labels: str) -> float:
        """A sample of the lab PBX's (pbx="default" unless the labels say)."""
        if name not in ("ivr_ledger_backlog_records", "ivr_incidents_active") \
                and not name.startswith(("ivr_ledger_write_errors", "ivr_ledger_dropped")):
            labels = {"pbx": "default", **labels}
        return self.app.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def ivr(lab: Lab, tmp_path: Path) -> AsyncIterator[Running]:
    """ivr on the lab, with a ledger of the test's own; its decisions go into queue_log."""
    config = lab_config(lab, ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    config = replace(config, ledger=replace(config.ledger, queue_log_decisions=True))
    app, runner = await start(config)
    await eventually(lambda: app.ready, timeout=15, what="ivr ready")
    running = Running(app)
    yield running
    await runner.cleanup()


@pytest.fixture
def phones(lab: Lab) -> Iterator[list[traffic.Sipp]]:
    """SIPp processes a test starts; all stopped, and the lab's calls ended, at the end."""
    lab.hangup_all()
    started: list[traffic.Sipp] = []
    yield started
    for sipp in started:
        sipp.stop()
    lab.hangup_all()
