"""The README's metrics table is the public contract: keep it equal to the code's."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from ivr.config import Config
from ivr.incidents import Incidents
from ivr.journeys import Tracker
from ivr.metrics import LiveCollector, Metrics

README = Path(__file__).resolve().parents[2] / "README.md"


class _Ami:
    up, reconnects, events_received, malformed_frames = False, 0, 0, 0


def documented() -> set[str]:
    section = README.read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(ivr_[a-z_]+)`", section, flags=re.M))


def exported() -> set[str]:
    registry = CollectorRegistry()
    queues = Config().queue_names
    Metrics(registry, queues, [30.0])
    registry.register(LiveCollector(Tracker(), _Ami(), queues, incidents=Incidents()))
    names = set()
    for family in registry.collect():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_readme_lists_exactly_the_exported_metrics() -> None:
    assert documented() == exported()
