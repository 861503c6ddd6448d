"""The office's data (issue 23): the downtime report with the claims that cover it."""

from __future__ import annotations

from typing import Any

from ivr.config.tokens import Actor
from ivr.desk import claims
from ivr.desk.service import Item
from ivr.reports.downtime import Downtime, Span
from tests.unit.test_desk_api import desk as desk, get, post   # desk: the fixture

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
