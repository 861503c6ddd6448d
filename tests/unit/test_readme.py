"""The README's metrics table is the public contract: keep it equal to the code's."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from ivr.metrics.callbacks import PendingCallbacks

from ivr.config import Config
from ivr.metrics.desk import DeskMetrics
from ivr.metrics.webhooks import WebhookMetrics
from ivr.webhooks.sender import Sender
from ivr.desk.service import Desk
from ivr.ledger.store import Store
from ivr.routing.directory import Directory
from ivr.routing.incidents import Incidents
from ivr.calls.tracker import Tracker
from ivr.metrics.families import Metrics
from ivr.metrics.live import LiveCollector
from ivr.metrics import runtime
from ivr.http.throttle import Guard

README = Path(__file__).resolve().parents[2] / "README.md"


class _Ami:
    up, reconnects, events_received, malformed_frames = False, 0, 0, 0


class _Pbx:
    name, tracker, ami = "default", Tracker(), _Ami()


class _Ledger:
    backlog, write_errors, dropped, quarantined = 0, 0, 0, 0


def documented() -> set[str]:
    section = README.read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(ivr_[a-z_]+)`", section, flags=re.M))


def exported() -> set[str]:
    registry = CollectorRegistry()
    runtime.install(registry)
    queues = Config().queue_names
    Metrics(registry, queues, [30.0])
    registry.register(LiveCollector([_Pbx()], queues, incidents=Incidents(), ledger=_Ledger()))
    # An in-memory ledger never opened: the desk's metrics read none.
    DeskMetrics(registry, Desk(Store("sqlite://"), Directory.empty(), Incidents()))
    WebhookMetrics(registry, Sender(Store("sqlite://"), []))
    Guard(registry)
    registry.register(PendingCallbacks(dict, [("default", "common")]))
    suffix = {"counter": "_total", "info": "_info"}
    # process_* and python_* are prometheus_client's own: the README names them apart.
    return {family.name + suffix.get(family.type, "") for family in registry.collect()
            if family.name.startswith("ivr_")}


def test_readme_lists_exactly_the_exported_metrics() -> None:
    assert documented() == exported()


def _keys_table(after: str) -> dict[str, set[str]]:
    """A README table of JSON keys: key -> the `names` listed in its second column."""
    rest = README.read_text().split(after, 1)[1]
    section = rest[rest.index("\n|"):].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (.*) \|$", section, flags=re.M)
    return {key: set(re.findall(r"`([a-z_]+)`", text)) for key, text in rows}


def test_readme_lists_the_statement_json_keys() -> None:
    from ivr.calls.records import BillingCall
    from ivr.reports import billing
    p = billing.period("2026-11-01", "2026-11-02", "UTC")
    call = BillingCall("default", "1.1", p.from_us + 1, 3000, "answered", "op1", True, "live")
    body = billing.to_json(billing.build([call], p), with_calls=True)
    table = _keys_table("The JSON\nkeys are a contract")
    assert set(table) == set(body)
    assert table["totals"] == set(body["totals"])
    assert table["period"] == set(body["period"])
    assert table["operators"] == set(body["operators"][0])
    assert table["calls"] - {"calls"} == set(body["calls"][0])
    assert table["days"] == {"date", "totals"}
    assert set(body["days"][0]) == {"date"} | (table["totals"] - {"payable_share"})


def test_readme_lists_the_reconcile_json_keys() -> None:
    from ivr.reconcile.compare import reconcile
    from ivr.reconcile.read import read_lines
    result = reconcile(read_lines([]), [], 0, 1)
    table = _keys_table("**Reconciliation with Asterisk's own account.**")
    assert set(table) == set(result.to_json())
