"""A site whose queues are numbered, as FreePBX numbers them (issue 21): the shipped
dialplan takes the queue names from its globals, and ivr from [routing]."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator

import pytest

from ivr import config as cfg
from ivr.calls.facts import Exited, JourneyEnded
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from tests.lab.conftest import Running, _ivr
from tests.lab.test_sla_scenarios import finished, queue_log

pytestmark = [pytest.mark.lab]

GLOBALS = {"IVR_QUEUE_FIRST_LINE": ("600", "first-line"), "IVR_QUEUE_COMMON": ("601", "common")}


def numbered(config: cfg.Config) -> cfg.Config:
    """600 plays first-line and 601 common; the move after 5 s keeps the test short."""
    routing = replace(config.routing, first_line="600", common="601")
    return replace(config, routing=routing, queues=(
        cfg.QueueConfig("600", 5.0, overflow_to="601", overflow_after_seconds=5.0),
        cfg.QueueConfig("601"), cfg.QueueConfig("engineers"), cfg.QueueConfig("supervisors")))


@pytest.fixture
async def ivr_numbered(lab: Lab, tmp_path: Path, request: pytest.FixtureRequest
                       ) -> AsyncIterator[Running]:
    """ivr configured for 600/601, on a lab whose dialplan globals say the same."""
    for name, (number, _) in GLOBALS.items():
        lab.cli(f"dialplan set global {name} {number}")
    try:
        async for running in _ivr(lab, tmp_path, request, configure=numbered):
            yield running
    finally:
        for name, (_, default) in GLOBALS.items():
            lab.cli(f"dialplan set global {name} {default}")


async def test_numbered_queues_first_line_then_common_when_unanswered(
        lab: Lab, ivr_numbered: Running, phones: list[traffic.Sipp]) -> None:
    """A caller of the hotline waits in 600 (first-line) where op3 only rings; ivr moves
    it after 5 s through [ivr-queues] common, which is 601, and gen1 answers there."""
    ivr = ivr_numbered
    since = time.time()
    phones.append(traffic.agent("gen1", ring_ms=500))
    phones.append(traffic.callers(1, hold_ms=14_000, number_prefix="7990"))
    await finished(ivr, 1, timeout=30)
    [ended] = ivr.of(JourneyEnded)
    visits = [(f.queue, f.outcome) for f in ivr.of(Exited) if f.uniqueid == ended.uniqueid]
    assert visits == [("600", "timeout"), ("601", "answered")]
    assert ended.outcome == "answered" and not ended.record.payable
    assert ivr.value("ivr_queue_overflow_total", from_queue="600", to_queue="601") == 1
    rows = queue_log(lab, since)[ended.uniqueid]
    assert ("600", "IVRMOVE") in [(q, e) for q, e, _d in rows], rows
    assert ("601", "CONNECT") in [(q, e) for q, e, _d in rows], rows
