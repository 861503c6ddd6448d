"""The Grafana dashboard against a real Prometheus scraping ivr during lab traffic.

Grafana itself is not packaged in Debian, so the dashboard is checked where
it can break: every panel's query, with the shipped recording rules loaded,
must return data from a real Prometheus (Debian's package) that scrapes a
real ivr following real calls.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.parse
from pathlib import Path
from typing import Iterator, TypedDict

import pytest

from ivr.calls.facts import Exited, JourneyEnded
from ivr.kit import shipped
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from tests.helpers import require_tool, eventually, free_port, http_get
from tests.lab.conftest import Running

pytestmark = pytest.mark.lab
DASHBOARD = shipped.directory() / "grafana" / "dashboards" / "ivr.json"
# What Grafana would put in place of its variables.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "1h", "$queue": ".*", "$pbx": ".*"}


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"]
            for target in panel["targets"]]


def grafana_expand(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


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
        f"  - job_name: ivr\n    static_configs: [{{targets: ['127.0.0.1:{ivr.app.config.listen_port}']}}]\n")
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

    queries = panel_queries()
    assert len(queries) >= 14
    for title, expr in queries:
        expanded = grafana_expand(expr)
        await eventually(lambda: bool(query(prometheus, expanded)), timeout=30, interval=0.5,
                         what=f"data for panel {title!r}: {expanded}")
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
