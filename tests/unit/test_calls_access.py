"""Who may act on a call (ivr/calls/access.py), over ivr's real web app: an operator
only on the call they are talking to, a supervisor, the office and the admin on any;
a refusal is a 403 with code not_yours that changes nothing (no AMI action, no
ledger row, no metric)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from ivr.calls import access as calls_access
from ivr.config import tokens as roles
from ivr.ami.client import Fields
from ivr.ami.codec import Message
from ivr.app import Services
from ivr.calls import records as rec
from tests.unit.test_desk_access import OP2_TOKEN, with_op2
from tests.unit.test_desk_api import TOKENS, answered, auth

UID = "1796000000.5"


class FakeAmi:
    """The PBX's side of the actions: records each one and answers as Asterisk would."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def action(self, name: str, fields: Fields | None = None,
                     timeout: float | None = None) -> Message:
        self.sent.append(name)
        return Message((("Response", "Success"), ("Value", "PJSIP/op1-1")))


Live = tuple[TestClient[Any, Any], Services, FakeAmi]     # the web app's client, the app, its PBX's AMI


@pytest.fixture
async def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Live]:
    async with with_op2(tmp_path) as (client, app):     # three calls op2 answered, ended
        pbx = app.pbxs["default"]
        fake = FakeAmi()
        monkeypatch.setattr(pbx.ami, "action", fake.action)
        for fields in ((("Event", "QueueCallerJoin"), ("Timestamp", "1796000000.000000"),
                        ("Uniqueid", UID), ("Channel", "PJSIP/c-5"), ("CallerIDNum", "79101"),
                        ("Queue", "first-line")),
                       (("Event", "QueueCallerLeave"), ("Timestamp", "1796000002.000000"),
                        ("Uniqueid", UID), ("Channel", "PJSIP/c-5"), ("Queue", "first-line")),
                       (("Event", "AgentConnect"), ("Timestamp", "1796000002.010000"),
                        ("Uniqueid", UID), ("Queue", "first-line"), ("MemberName", "op1"),
                        ("HoldTime", "2"))):
            pbx.on_event(Message(fields))
        yield client, app, fake


def as_op2() -> dict[str, str]:
    return {"Authorization": f"Bearer {OP2_TOKEN}"}


def actions_counted(app: Services) -> float:
    return sum(app.registry.get_sample_value("ivr_operator_actions_total",
                                             {"pbx": "default", "action": a}) or 0.0
               for a in ("warn", "end", "transfer", "escalate", "disposition"))


@pytest.mark.parametrize("path,body", [
    ("warn", {}), ("end", {"reason": "abuse"}), ("transfer", {"to": "supervisor"}),
    ("escalate", {}), ("disposition", {"code": "resolved"})])
async def test_an_operator_may_not_act_on_anothers_call(live: Live, path: str,
                                                        body: dict[str, Any]) -> None:
    client, app, fake = live
    app.calls.warned.add(("default", UID))          # so that end is refused for whose call it is
    resp = await client.post(f"/api/v1/calls/{UID}/{path}", headers=as_op2(), data=json.dumps(body))
    answer = await resp.json()
    assert resp.status == 403 and answer["code"] == "not_yours", answer
    assert "op1" not in answer["error"]          # whose call it is stays untold
    assert fake.sent == [] and actions_counted(app) == 0
    assert not any(app.registry.get_sample_value("ivr_escalations_total",
                                                 {"pbx": "default", "result": r})
                   for r in ("accepted", "refused_incident", "failed"))


async def test_the_operator_talking_to_the_caller_may(live: Live) -> None:
    client, app, fake = live
    resp = await client.post(f"/api/v1/calls/{UID}/warn", headers=auth("operator"), data="{}")
    assert resp.status == 202, await resp.text()
    assert fake.sent == ["Getvar", "Setvar", "Redirect"] and actions_counted(app) == 1


@pytest.mark.parametrize("role", ["supervisor", "admin"])
async def test_a_supervisor_and_the_admin_act_on_any_call(live: Live, role: str) -> None:
    client, app, fake = live
    resp = await client.post(f"/api/v1/calls/{UID}/transfer", headers=auth(role),
                             data=json.dumps({"to": "supervisor"}))
    assert resp.status == 202, await resp.text()
    assert fake.sent == ["Redirect"] and actions_counted(app) == 1


async def test_a_disposition_after_the_call_is_the_answering_operators(live: Live) -> None:
    client, app, _ = live
    # 1795996400.1 ended, answered by op2: op1 may not close it, op2 may.
    resp = await client.post("/api/v1/calls/1795996400.1/disposition", headers=auth("operator"),
                             data=json.dumps({"code": "resolved"}))
    assert resp.status == 403 and (await resp.json())["code"] == "not_yours"
    assert actions_counted(app) == 0 and await without_disposition(client, app) == 3   # no row
    resp = await client.post("/api/v1/calls/1795996400.1/disposition", headers=as_op2(),
                             data=json.dumps({"code": "resolved"}))
    assert resp.status == 201 and actions_counted(app) == 1
    assert await without_disposition(client, app) == 2


async def without_disposition(client: TestClient[Any, Any], app: Services) -> int:
    """op2's answered calls the ledger keeps no disposition for (the statement's count)."""
    await app.ledger.flush()
    resp = await client.get("/api/v1/reports/billing?from=2026-11-29&to=2026-12-01",
                            headers=auth("supervisor"))
    [op2] = (await resp.json())["operators"]
    return int(op2["without_disposition"])


async def test_the_console_meets_the_same_decision(live: Live) -> None:
    """The console's pages call the API with a session: op2's session is refused too."""
    client, app, fake = live
    resp = await client.post("/console/sign-in", data={"token": OP2_TOKEN}, allow_redirects=False)
    assert resp.status == 303
    page = await (await client.get("/console/desk/op2")).text()
    settings = page.split('id="settings">', 1)[1].split("</script>")[0]
    csrf = json.loads(settings.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))["csrf"]
    resp = await client.post(f"/api/v1/calls/{UID}/warn", headers={"X-CSRF-Token": csrf}, data="{}")
    assert resp.status == 403 and (await resp.json())["code"] == "not_yours"
    assert fake.sent == []


def test_the_decision_itself() -> None:
    mine = calls_access.Call("default", "op1")
    assert calls_access.decide(roles.Actor("operator", "op1"), mine) is None
    assert calls_access.decide(roles.Actor("operator", "op2"), mine) is not None
    # Nobody answered it: no operator's.
    assert calls_access.decide(roles.Actor("operator", ""), calls_access.Call("default", "")) \
        is not None
    for role in ("supervisor", "office", "admin"):
        assert calls_access.decide(roles.Actor(role, "x"), mine) is None
    assert calls_access.decide(roles.Actor("engineer", "eng1"), mine) is not None
    assert calls_access.decide(roles.Actor(calls_access.PBX, "default"), mine) is None
    assert calls_access.decide(roles.Actor(calls_access.PBX, "b"), mine) is not None
    # After a transfer to supervisors, the supervisor's member is the one talking.
    v1 = rec.VisitRecord(1, "first-line", 0, 1, "answered", 1, "op1")
    v2 = rec.VisitRecord(2, "supervisors", 2, 3, "answered", 1, "sup1")
    assert calls_access.last_answerer([v1, v2]) == "sup1"
    # op1 is no longer talking to the caller, but gives the call's disposition.
    call = rec.CallRecord("default", "1.1", "1.1", "79101", "", "", 0, 3, (v1, v2), "answered",
                          True, rec.LIVE, rec.MS, 1, "first-line", "op1")
    handed_on = calls_access.of_record(call)
    op1 = roles.Actor("operator", "op1")
    assert calls_access.decide(op1, handed_on) is not None
    assert calls_access.decide(op1, handed_on, closing=True) is None
    assert calls_access.decide(roles.Actor("operator", "op3"), handed_on, closing=True) is not None


def test_tokens_of_the_suite_name_members() -> None:
    assert TOKENS["operator"][0] == "op1"


async def test_an_escalation_by_api_is_counted_but_not_timed_as_a_dialplan_question(
        live: Any) -> None:
    """ivr_route_decision_seconds is the dialplan's wait for an answer: a person's
    escalation (or move) through the API is a route decided, not a question timed."""
    client, app, fake = live
    resp = await client.post(f"/api/v1/calls/{UID}/escalate", headers=auth("supervisor"),
                             data="{}")
    assert resp.status == 202, await resp.text()
    assert fake.sent == ["Redirect"]
    assert app.registry.get_sample_value("ivr_route_decisions_total",
                                         {"pbx": "default", "route": "engineers"}) == 1
    assert app.registry.get_sample_value("ivr_route_decision_seconds_count",
                                         {"pbx": "default"}) == 0
