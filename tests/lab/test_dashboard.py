"""The Grafana dashboard against a real Prometheus scraping ivr during lab traffic.

Grafana itself is not packaged in Debian, so the dashboard is checked where
it can break: every panel's query, with the shipped recording rules loaded,
must return data from a real Prometheus (Debian's package) that scrapes a
real ivr following real calls, on ivr's http.metrics_listen address.  The
variables are expanded as Grafana would: ${datasource} through the datasource
variable to the provisioned datasource (here, this Prometheus), $pbx and
$queue from their own label_values queries, All as Grafana writes it.  Picking
a PBX that does not exist empties every panel of a PBX's series and no other.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator, Iterator, TypedDict

import pytest

import ivr as ivr_package
from ivr.calls.facts import Exited, JourneyEnded
from ivr.config import WebhookConfig
from ivr.kit import shipped
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from ivr.service import start
from tests.helpers import require_tool, eventually, free_port, http_get
from tests.lab.conftest import Running, lab_config

pytestmark = pytest.mark.lab
GRAFANA = shipped.directory() / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "ivr.json"
PROVISIONED = GRAFANA / "provisioning" / "datasources" / "ivr.yaml"
# What Grafana puts in place of its built-in variables.
BUILT_IN = {"$__rate_interval": "1m", "$__range": "1h"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panel_queries() -> list[tuple[str, dict[str, str], str]]:
    """(title, datasource, expr) of every query of every panel (rows have none)."""
    return [(panel["title"], target["datasource"], target["expr"])
            for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def datasource_uid(datasource: dict[str, str]) -> str:
    """The datasource a panel or variable queries: ${datasource} is the datasource
    variable's current value, which must be the provisioned datasource's uid."""
    uid = datasource["uid"]
    [variable] = [v for v in dashboard()["templating"]["list"] if v["type"] == "datasource"]
    if uid in ("${datasource}", "$datasource"):
        uid = variable["current"]["value"]
    provisioned = re.search(r"^\s+uid: (\S+)$", PROVISIONED.read_text(), flags=re.M)
    assert provisioned and uid == provisioned.group(1), f"datasource {datasource} is not ivr's"
    return uid


def grafana_expand(expr: str, values: dict[str, list[str]]) -> str:
    """Grafana's expansion in a regex matcher: one value as it is, several (All) as an
    alternation, a regex's special characters escaped as a PromQL string needs (\\.)."""
    for var, chosen in values.items():
        escaped = [re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", v) for v in chosen]
        expr = expr.replace(f"${var}", escaped[0] if len(escaped) == 1 else f"({'|'.join(escaped)})")
    for var, value in BUILT_IN.items():
        expr = expr.replace(var, value)
    return expr


@pytest.fixture
async def ivr(lab: Lab, tmp_path: Path) -> AsyncIterator[Running]:
    """ivr on the lab, as conftest's, with /metrics also on http.metrics_listen (which
    Prometheus scrapes) and a webhook endpoint: the webhooks' series exist, at zero, only
    for configured endpoints.  The endpoint refuses; no desk event is sent here anyway."""
    config = lab_config(lab, ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    config = replace(config, metrics_listen=("127.0.0.1", free_port()), webhooks=(WebhookConfig(
        "helpdesk", f"http://127.0.0.1:{free_port()}/in", "whsec_" + "A" * 44, ("ticket.filed",)),))
    app, runner = await start(config)
    await eventually(lambda: app.ready, timeout=15, what="ivr ready")
    yield Running(app)
    await runner.cleanup()


@pytest.fixture
def prometheus(tmp_path: Path, ivr: Running) -> Iterator[str]:
    binary = require_tool("prometheus", "prometheus")
    rules = tmp_path / "rules"
    rules.mkdir()
    for src in sorted((shipped.directory() / "prometheus" / "rules").glob("*.yml")):
        # Evaluate every second instead of every 30 s, so the test is short.
        text = re.sub(r"(?m)^(\s*interval:\s*)\S+", r"\g<1>1s", src.read_text())
        (rules / src.name).write_text(text)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{rules}/*.yml']\n"
        "scrape_configs:\n"
        f"  - job_name: ivr\n    static_configs: [{{targets: ['127.0.0.1:{metrics_port(ivr)}']}}]\n")
    base = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address={base[7:]}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    yield base
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    assert "level=error" not in err, err    # e.g. a rule file that failed to load


class Sample(TypedDict):
    """One series of an instant query's result, as Prometheus's HTTP API gives it."""

    metric: dict[str, str]
    value: list[float | str]     # [time, the value as text]


def metrics_port(ivr: Running) -> int:
    assert ivr.app.config.metrics_listen is not None
    return ivr.app.config.metrics_listen[1]


def variable_values(base: str, variables: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each query variable's values, in the dashboard's order (queue's query uses $pbx),
    as Grafana's label_values(SELECTOR, LABEL) finds them."""
    values: dict[str, list[str]] = {}
    for variable in variables:
        if variable["type"] != "query":
            continue
        found = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
        assert found, variable["query"]
        selector, label = grafana_expand(found.group(1), values), found.group(2)
        status, body = http_get(f"{base}/api/v1/series?match[]={urllib.parse.quote(selector)}")
        assert status == 200, body
        values[variable["name"]] = sorted({s[label] for s in json.loads(body)["data"] if label in s})
    return values


def query(base: str, expr: str) -> list[Sample]:
    status, body = http_get(f"{base}/api/v1/query?query={urllib.parse.quote(expr)}")
    if status != 200:
        raise AssertionError(f"query failed ({status}): {expr}\n{body}")
    rows: list[Sample] = list(json.loads(body)["data"]["result"])
    return rows


async def test_every_panel_query_returns_data(lab: Lab, ivr: Running, prometheus: str,
                                              phones: list[traffic.Sipp]) -> None:
    await eventually(lambda: http_get(prometheus + "/-/ready")[0] == 200, timeout=30, what="prometheus ready")
    # Prometheus scrapes for the first time about 5 s after it says ready. The
    # counters must be seen at 0 before the calls: a counter first seen at 3
    # has increase() 0, and every ratio would be NaN for the whole window.
    await eventually(lambda: bool(query(prometheus, 'up{job="ivr"} == 1')), timeout=30, interval=0.2,
                     what="prometheus has scraped ivr")
    phones += [traffic.agent(op, ring_ms=3000) for op in ("op1", "op2", "op3", "op4")]
    phones.append(traffic.callers(3, hold_ms=8000, rate=3, number_prefix="7970"))
    # Hangs up about 1.5 s after queueing (the greeting and its 0.5 s for a key take
    # about 4 s), before any operator answers: a short abandon.
    phones.append(traffic.callers(1, hold_ms=5500, rate=1, number_prefix="7980"))
    await eventually(lambda: len(ivr.of(JourneyEnded)) >= 4, timeout=30, interval=0.2,
                     what="4 journeys ended")
    assert {f.outcome for f in ivr.of(JourneyEnded)} == {"answered", "abandoned"}

    # Every panel and variable queries ivr's provisioned datasource, here this Prometheus.
    variables = dashboard()["templating"]["list"]
    assert {datasource_uid(ds) for _, ds, _ in panel_queries()} | {
        datasource_uid(v["datasource"]) for v in variables if v["type"] == "query"} == {"ivr-prometheus"}
    values = variable_values(prometheus, variables)
    assert values["pbx"] == ["default"]
    assert {"first-line", "common", "engineers", "supervisors"} <= set(values["queue"])

    queries = panel_queries()
    assert len(queries) >= 30
    for title, _, expr in queries:
        expanded = grafana_expand(expr, values)
        await eventually(lambda: bool(query(prometheus, expanded)), timeout=30, interval=0.5,
                         what=f"data for panel {title!r}: {expanded}")
    # A PBX of nobody's: every query of a PBX's series is empty, the whole service's not.
    nobody = {**values, "pbx": ["no-such-pbx"]}
    for title, _, expr in queries:
        rows = query(prometheus, grafana_expand(expr, nobody))
        assert bool(rows) != ("$pbx" in expr), f"{title!r} for PBX no-such-pbx: {expr}: {rows}"
    # What moves only on rare events is there from the start, at 0: not "no data".
    for name in ("ivr_ledger_quarantined_records_total", "ivr_ledger_dropped_records_total",
                 "ivr_ledger_write_errors_total", "ivr_tickets_overdue", "ivr_complaints_overdue",
                 "ivr_webhook_deliveries_total", "ivr_webhook_messages"):
        rows = query(prometheus, name)
        assert rows and all(float(r["value"][1]) == 0 for r in rows), (name, rows)
    [build] = query(prometheus, "ivr_build_info")
    assert build["metric"]["version"] == ivr_package.__version__
    # ivr's live exposition, as Prometheus scraped it, passes promtool's lint.
    # In a thread: the ivr under test serves /metrics on this very event loop.
    status, text = await asyncio.to_thread(http_get, f"http://127.0.0.1:{ivr.app.config.listen_port}/metrics")
    lint = subprocess.run([require_tool("promtool", "prometheus"), "check", "metrics"],
                          input=text, capture_output=True, text=True, timeout=30)
    assert status == 200 and lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint
    # The figures are the real ones: 3 of 3 answered within 30 s.
    # Poll: a rule evaluated before the answered calls were scraped says NaN.
    def service_level() -> float:
        rows = query(prometheus, 'queue:ivr_service_level:ratio_rate15m{queue="first-line"}')
        return float(rows[0]["value"][1]) if len(rows) == 1 else float("nan")
    try:
        await eventually(lambda: service_level() == 1.0, timeout=30, interval=0.5,
                         what="service level of first-line = 1.0 (3 of 3 within 30 s)")
    except AssertionError as e:
        raw = {expr: query(prometheus, expr) for expr in (
            'ivr_queue_answered_within_sla_total{queue="first-line"}[15m]',
            'ivr_queue_exits_total{queue="first-line",outcome="answered"}[15m]')}
        ends = [(f.queue, f.outcome, f.wait_ms, f.within_sla) for f in ivr.of(Exited)]
        raise AssertionError(f"{e}; samples {raw}; exits {ends}") from None
