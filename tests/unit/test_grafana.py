"""grafana/ of the kit (ivr/kit/files), where it can break without Grafana: the
dashboard's panels and variables all go through its ${datasource} variable, the
provisioned datasource is ivr's own and not the default, and every query of a PBX's
series is filtered by the PBX variable (and by the queue variable where it has a
queue).  tests/lab/test_dashboard.py runs every query on a real Prometheus."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from ivr.kit import shipped
from tests.unit.test_prometheus_rules import PROMETHEUS, RULES, exposition

GRAFANA = shipped.directory() / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "ivr.json"
DATASOURCE = GRAFANA / "provisioning" / "datasources" / "ivr.yaml"
BOUND = {"type": "prometheus", "uid": "${datasource}"}
# A series name in a query: ivr's, a recording rule's (queue:..., ivr_payable:...) or
# prometheus_client's process_*; with its {matchers} when it has any.
SELECTOR = re.compile(r"(?<![\w:])((?:ivr_|queue:|process_|python_)[\w:]*)(\{[^}]*\})?")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        if panel["type"] != "row":
            yield panel


def queries() -> Iterator[tuple[str, str]]:
    for panel in panels():
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def provisioned() -> dict[str, str]:
    """The datasource's keys as ivr.yaml gives them (one datasource, flat)."""
    return dict(re.findall(r"^\s+(?:- )?(\w+): (.+)$", DATASOURCE.read_text(), flags=re.M))


def labels_of_series() -> dict[str, set[str]]:
    """Each series name ivr exports, or the recording rules record, with its label names."""
    found: dict[str, set[str]] = {}
    for name, matchers in re.findall(r"^([a-z_:]+)(?:\{([^}]*)\})? ", exposition().decode(),
                                     flags=re.M):
        found.setdefault(name, set()).update(re.findall(r'(\w+)="', matchers))
    for record in re.findall(r"record: (\S+)", (PROMETHEUS / RULES[0]).read_text()):
        found[record] = {"pbx", "queue"} if record.startswith("queue:") else {"pbx"}
    return found


def test_the_datasource_is_provisioned_with_a_uid_and_not_as_the_default() -> None:
    source = provisioned()
    assert source["uid"] == "ivr-prometheus" and source["isDefault"] == "false"
    assert source["name"] != "Prometheus"     # would take over a site's own "Prometheus"
    [variable] = [v for v in dashboard()["templating"]["list"] if v["type"] == "datasource"]
    assert (variable["name"], variable["query"]) == ("datasource", "prometheus")
    assert variable["current"]["value"] == source["uid"]


def test_every_panel_and_variable_goes_through_the_datasource_variable() -> None:
    for panel in panels():
        assert panel["datasource"] == BOUND, panel["title"]
        assert panel["targets"] and all(t["datasource"] == BOUND for t in panel["targets"]), \
            panel["title"]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == BOUND, variable["name"]


def test_every_query_of_a_pbx_is_filtered_by_the_pbx_and_queue_variables() -> None:
    labels = labels_of_series()
    whole_service = set()
    for title, expr in queries():
        for name, matchers in SELECTOR.findall(expr):
            assert name in labels, f"{title!r}: {name} is neither exported nor recorded"
            has = labels[name]
            if "pbx" in has:
                assert 'pbx=~"$pbx"' in matchers, f"{title!r}: {name} not filtered by PBX"
            else:   # a filter would empty the panel whenever one PBX is picked
                assert "$pbx" not in matchers, f"{title!r}: {name} has no pbx label"
                whole_service.add(name)
            queue = "queue" if "queue" in has else "from_queue" if "from_queue" in has else None
            if queue:
                assert f'{queue}=~"$queue"' in matchers, f"{title!r}: {name} not filtered by queue"
    # The series of no PBX: the ledger's, the desk's, the webhooks', the incidents', the process's.
    assert {n.split("_")[1] for n in whole_service if n.startswith("ivr_")} == {
        "incidents", "build", "ledger", "tickets", "complaints", "claims", "webhook"}


def test_the_rows_show_the_ledger_the_desk_repeat_callers_and_webhooks() -> None:
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert any("ledger" in r.lower() for r in rows) and any("desk" in r.lower() for r in rows)
    used = {name for _, expr in queries() for name, _ in SELECTOR.findall(expr)}
    assert {"ivr_ledger_backlog_records", "ivr_ledger_write_errors_total",
            "ivr_ledger_quarantined_records_total", "ivr_tickets_overdue", "ivr_complaints_overdue",
            "ivr_repeat_calls_total", "ivr_webhook_deliveries_total", "ivr_webhook_messages",
            "process_resident_memory_bytes", "ivr_build_info"} <= used
    # Grafana lays panels out by gridPos: none may overlap another.
    cells: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        g = panel["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells and g["x"] + g["w"] <= 24, panel["title"]
        cells |= mine
