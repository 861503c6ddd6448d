"""The office's data (issue 23): the downtime report with the claims that cover it, and
the console's formatting helpers (static/format.js, run by Node.js) for its page."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from ivr.config.tokens import Actor
from ivr.desk import claims
from ivr.desk.service import Item
from ivr.reports.downtime import Downtime, Span
from tests.helpers import require_tool
from tests.unit.test_desk_api import desk as desk, get, post   # desk: the fixture

STATIC = Path(__file__).resolve().parents[2] / "ivr" / "console" / "static"
REPORT = "/api/v1/reports/downtime?from=2026-11-30&to=2026-12-02"


def claim(number: str, account: str, incidents: list[str], filed_us: int = 0) -> Item:
    return Item("claim", number, "filed", filed_us,
                {"account": account, "area": "north", "from": "2026-11-30T00:00:00Z",
                 "to": "2026-12-01T00:00:00Z", "downtime_seconds": 60.0,
                 "incidents": [{"id": i} for i in incidents]}, Actor("office", "anna"))


def test_a_claim_covers_its_accounts_downtime_of_the_incidents_it_counted() -> None:
    cut = Downtime(3600.0, (Span("inc-a", "north", 0, 3_600_000_000),))
    found = {"100101": cut, "100102": cut, "100201": Downtime(0.0, ())}
    items = [claim("30000024", "100101", ["inc-a"], filed_us=2),
             claim("30000016", "100101", ["inc-a", "inc-b"], filed_us=1),
             claim("30000032", "100101", []),                 # filed before the incident
             claim("30000040", "100102", ["inc-old"]),        # another outage of that account
             Item("ticket", "10000012", "open", 0, {"account": "100101"}, Actor("operator", "op1"))]
    covered = claims.covering(items, found)
    assert [c["number"] for c in covered["100101"]] == ["30000016", "30000024"]   # oldest first
    assert covered["100101"][0] == {"number": "30000016", "state": "filed",
                                    "filed_at": "1970-01-01T00:00:00Z",
                                    "from": "2026-11-30T00:00:00Z", "to": "2026-12-01T00:00:00Z",
                                    "downtime_seconds": 60.0}
    assert covered["100102"] == [] and covered["100201"] == []


async def test_the_downtime_report_names_the_claim_that_covers_an_account(desk: Any) -> None:
    client, app, clock = desk
    await post(client, "/api/v1/incidents", "engineer",
               {"area": "north", "message": "cut", "expires_in": 7200})
    clock.now += 1800
    status, filed = await post(client, "/api/v1/claims", "operator",
                               {"account": "100101", "from": "2026-11-30T00:00:00Z",
                                "to": "2026-12-02T00:00:00Z"})
    assert status == 201
    clock.now += 1800
    status, body = await get(client, REPORT, "office")
    assert status == 200
    by_account = {a["account"]: a for a in body["accounts"]}
    north, other = by_account["100101"], by_account["100102"]
    assert north["downtime_seconds"] == 3600 and other["downtime_seconds"] == 3600
    assert north["claims"] == [{"number": filed["number"], "state": "filed",
                                "filed_at": filed["filed_at"], "from": "2026-11-30T00:00:00Z",
                                "to": "2026-12-02T00:00:00Z", "downtime_seconds": 1800.0}]
    assert other["claims"] == [] and by_account["100201"]["claims"] == []


async def test_the_downtime_report_waits_for_the_desk_to_read_its_registry(desk: Any) -> None:
    """Before the registry is read every account would look unclaimed: a 503, not a lie."""
    client, app, _ = desk
    app.desk.loaded = False
    status, body = await get(client, REPORT, "office")
    assert status == 503 and "registry" in body["error"]


def run_format(calls: list[tuple[str, list[Any]]]) -> list[Any]:
    """format.js's functions called in Node.js, their results as JSON."""
    node = require_tool("node", "nodejs")
    script = (f"import * as f from {json.dumps((STATIC / 'format.js').as_uri())};\n"
              f"const calls = {json.dumps(calls)};\n"
              "console.log(JSON.stringify(calls.map(([fn, args]) => f[fn](...args))));\n")
    out = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True,
                         text=True, timeout=30, check=True, env={**os.environ, "TZ": "UTC"})
    return list(json.loads(out.stdout))


EN = {"h": "h", "min": "min", "s": "s"}
RU = {"h": "ч", "min": "мин", "s": "с"}


def test_durations_are_hours_and_minutes_seconds_only_under_a_minute() -> None:
    cases = [0, 0.4, 1.603, 59, 59.6, 60, 89, 90, 3569, 3600, 3660, 86400, 90061, 200000]
    got = run_format([("duration", [s, EN]) for s in cases] + [("duration", [3600, RU]),
                                                               ("duration", [59, RU])])
    assert got == ["0 s", "0 s", "2 s", "59 s", "1 min", "1 min", "1 min", "2 min",
                   "59 min", "1 h 0 min", "1 h 1 min", "24 h 0 min", "25 h 1 min",
                   "55 h 33 min", "1 ч 0 мин", "59 с"]


def test_nice_axis_steps_and_the_period_of_the_statements_days() -> None:
    got = run_format([("ticks", [0]), ("ticks", [3]), ("ticks", [7]), ("ticks", [42]),
                      ("ticks", [1234]),
                      ("fill", ["{1} – {2}: {1} {x}", {"1": "2026-11-01", "2": "2026-11-30"}])])
    assert got[0] == [0, 1] and got[1] == [0, 1, 2, 3]
    assert got[2] == [0, 2, 4, 6, 8] and got[3] == [0, 10, 20, 30, 40, 50]
    assert got[4] == [0, 500, 1000, 1500]
    assert got[5] == "2026-11-01 – 2026-11-30: 2026-11-01 {x}"


def test_moments_in_the_readers_language_on_a_24_hour_clock() -> None:
    moment = "2026-11-30T00:53:20Z"
    assert run_format([("when", [moment, "en"]), ("when", [moment, "ru"]), ("when", [None, "en"]),
                       ("when", ["not a time", "ru"])]) == [
        "Nov 30, 2026, 00:53", "30 нояб. 2026 г., 00:53", "", "not a time"]
