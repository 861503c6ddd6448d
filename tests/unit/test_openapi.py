"""The OpenAPI description of /api/v1 (ivr/http/openapi.py) held to the real app: its
routes and methods, their path parameters, who may call each operation, and
the document itself valid OpenAPI 3.1 and served to anyone."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator

import jsonschema_rs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from schemathesis.specs.openapi.definitions import OPENAPI_31

from ivr.http import openapi, throttle
from ivr.config import tokens as roles
from ivr.ledger.store import Store
from ivr.reports import billing
from ivr.app import Services, build
from ivr.config import ApiConfig
from ivr.http.api.auth import OPENAPI_PATH
from ivr.http.app import make_web
from tests.unit.test_desk_api import TOKENS, Clock, auth, config_for

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def api_routes(w: web.Application) -> dict[str, dict[str, set[str]]]:
    """path -> method -> the path's parameters, as aiohttp routes them under /api/v1."""
    found: dict[str, dict[str, set[str]]] = {}
    for route in w.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path") or ""
        if path.startswith("/api/v1"):
            found.setdefault(path, {})[route.method] = set(re.findall(r"{(\w+)}", path))
    return found


def described(spec: dict[str, Any]) -> dict[str, dict[str, set[str]]]:
    """path -> METHOD -> its path parameters, as the description has them."""
    out: dict[str, dict[str, set[str]]] = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method.upper() in METHODS:
                params = [*item.get("parameters", []), *op.get("parameters", [])]
                out.setdefault(path, {})[method.upper()] = {
                    p["name"] for p in params if p["in"] == "path"}
    return out


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Services]]:
    app = build(config_for(tmp_path, sqlite(tmp_path)), clock=Clock())
    async with TestClient(TestServer(make_web(app))) as c:
        await app.store.run(Store.migrate)
        await app.desk.load()
        yield c, app


def test_the_description_is_valid_openapi_3_1() -> None:
    errors = [f"{e.instance_path}: {e.message}"
              for e in jsonschema_rs.validator_for(OPENAPI_31).iter_errors(openapi.spec())]
    assert errors == []
    assert openapi.spec()["openapi"].startswith("3.1")


def test_every_route_is_described_and_every_description_is_a_route(tmp_path: Path) -> None:
    real = api_routes(make_web(build(config_for(tmp_path, sqlite(tmp_path)))))
    spec = described(openapi.spec())
    assert len(real) > 20                  # the app's routes were read at all
    assert sorted(real) == sorted(spec)
    for path, methods in real.items():
        # aiohttp answers HEAD beside each GET by itself; a description implies it.
        assert methods.pop("HEAD", None) == methods.get("GET"), path
        assert methods == spec[path], path      # the same methods, the same path parameters


def test_every_path_parameter_is_declared_in_its_path() -> None:
    for path, methods in described(openapi.spec()).items():
        for method, names in methods.items():
            assert names == set(re.findall(r"{(\w+)}", path)), f"{method} {path}"


def test_every_error_answer_is_the_json_error() -> None:
    spec = openapi.spec()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            statuses = {int(s) for s in op["responses"]}
            assert any(s < 400 for s in statuses), f"{method} {path} has no success"
            for status in (s for s in statuses if s >= 400):
                ref = op["responses"][str(status)]["$ref"]
                body = spec["components"]["responses"][ref.rsplit("/", 1)[1]]
                assert body["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"}
            if path != OPENAPI_PATH:
                assert {401, 403} <= statuses, f"{method} {path}"


async def test_served_to_anyone_even_with_the_api_off(
        tmp_path: Path, client: tuple[TestClient[Any, Any], Services]) -> None:
    c, _ = client
    resp = await c.get(OPENAPI_PATH)
    assert resp.status == 200 and resp.content_type == "application/json"
    assert await resp.json() == openapi.spec()
    off = build(replace(config_for(tmp_path, sqlite(tmp_path)), api=ApiConfig()))
    async with TestClient(TestServer(make_web(off))) as c2:
        assert (await c2.get(OPENAPI_PATH)).status == 200
        refused = await c2.get("/api/v1/queues")          # the rest of the API stays off
        assert refused.status == 403 and "off" in (await refused.json())["error"]


async def test_only_get_is_open_and_nothing_else_passes_by_its_path(
        client: tuple[TestClient[Any, Any], Services]) -> None:
    c, _ = client
    anonymous = await c.post(OPENAPI_PATH, data=b"{}")
    assert anonymous.status == 401 and "error" in await anonymous.json()
    wrong = await c.post(OPENAPI_PATH, headers=auth("admin"), data=b"{}")
    assert wrong.status == 405 and "error" in await wrong.json()
    for hostile in (OPENAPI_PATH + "/../queues", "/api/v1/openapi.json/x",
                    "/api/v1/OPENAPI.JSON", "/api/v1/openapi.json%00"):
        resp = await c.get(hostile)
        assert resp.status in (401, 404), hostile
        assert resp.status == 401 or "error" in await resp.json()


async def test_x_roles_are_who_the_app_lets_through(
        client: tuple[TestClient[Any, Any], Services]) -> None:
    """Each role on each operation: a 403 "may not" exactly when it is not in x-roles
    (bodies that are not JSON, so an operation that is allowed refuses with a 400 or
    finds nothing, and nothing changes)."""
    c, _ = client
    for path, item in openapi.spec()["paths"].items():
        url = re.sub(r"{\w+}", "10000012", path)
        for method, op in item.items():
            if path == OPENAPI_PATH:
                continue
            for role in roles.ROLES:
                resp = await c.request(method.upper(), url, headers=auth(role), data=b"not json")
                # The checkpoint is text/plain when given (its 200), JSON when refused.
                text = await resp.text()
                body: Any = json.loads(text) if resp.content_type == "application/json" else text
                refused = resp.status == 403 and "may not do this" in body["error"]
                assert refused == (role not in op["x-roles"]), (method, path, role, body)
                assert str(resp.status) in op["responses"], (method, path, role, resp.status)
    assert set(TOKENS) == set(roles.ROLES)


def test_the_description_is_plain_json() -> None:
    assert json.loads(json.dumps(openapi.spec())) == openapi.spec()


@pytest.mark.parametrize("path", ["/api/v1/calls", "/api/v1/reports/billing",
                                  "/api/v1/reports/downtime", "/api/v1/reports/fcr"])
async def test_a_period_of_thousands_of_years_is_refused_before_it_is_cut_into_days(
        client: tuple[TestClient[Any, Any], Services], path: str) -> None:
    """Found by schemathesis: 2026 to 8957 was seconds of a stalled event loop.  Now
    report.max_days (366 by default) answers first, and a year is still given."""
    c, _ = client
    resp = await c.get(path, headers=auth("admin"),
                       params={"from": "2026-11-01", "to": "8957-01-13"})
    error = (await resp.json())["error"]
    assert resp.status == 400 and "longer than 366 days (report.max_days)" in error
    over = await c.get(path, headers=auth("admin"), params={"from": "2024-01-01",
                                                            "to": "2025-01-03"})
    assert over.status == 400 and "report.max_days" in (await over.json())["error"]
    year = await c.get(path, headers=auth("admin"),
                       params={"from": "2024-01-01", "to": "2025-01-01"})   # 366 days: given
    assert year.status == 200


def test_the_century_cap_holds_without_max_days() -> None:
    """billing.MAX_PERIOD_DAYS: what bounds a period when no max_days is given (the
    registry's export), so thousands of years are never cut into days."""
    with pytest.raises(billing.ReportError, match=f"at most {billing.MAX_PERIOD_DAYS} days"):
        billing.period("2026-11-01", "8957-01-13", "UTC", max_days=None)
    century = billing.period("2000-01-01", "2100-01-01", "UTC", max_days=None)
    assert len(century.boundaries) == 36525 + 1           # every day of the century, given


def test_every_authenticated_operation_lists_the_throttle_and_its_retry_after() -> None:
    spec = openapi.spec()
    e429 = spec["components"]["responses"]["E429"]
    assert e429["headers"]["Retry-After"]["schema"]["type"] == "integer"
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert ("429" in op["responses"]) == (path != OPENAPI_PATH), (method, path)


async def test_a_throttled_source_gets_the_described_429_even_with_the_right_token(
        client: tuple[TestClient[Any, Any], Services]) -> None:
    c, _ = client
    for n in range(throttle.LIMIT):
        wrong = await c.get("/api/v1/queues", headers={"Authorization": f"Bearer wrong-{n}"})
        assert wrong.status == 401
    for path, item in openapi.spec()["paths"].items():
        if path == OPENAPI_PATH:
            continue
        url = re.sub(r"{\w+}", "10000012", path)
        for method, op in item.items():
            resp = await c.request(method.upper(), url, headers=auth("admin"), data=b"{}")
            assert resp.status == 429 and "429" in op["responses"], (method, path)
            assert (await resp.json())["code"] == "throttled"
            assert int(resp.headers["Retry-After"]) >= 1
    assert (await c.get(OPENAPI_PATH)).status == 200     # the description stays open


async def test_not_yours_is_described_where_an_operator_meets_it(
        client: tuple[TestClient[Any, Any], Services]) -> None:
    """A ticket filed by the office: an operator may not read it or add to it (403
    not_yours), and the description's 403 for those operations says so."""
    c, _ = client
    filed = await c.post("/api/v1/tickets", headers=auth("office"),
                         json={"account": openapi.ACCOUNT, "problem": "No line."})
    assert filed.status == 201, await filed.text()
    number = (await filed.json())["number"]
    spec = openapi.spec()
    mine = spec["components"]["responses"]["E403mine"]["description"]
    assert "not_yours" in mine
    for method, path, url in (("get", "/api/v1/tickets/{number}", f"/api/v1/tickets/{number}"),
                              ("post", "/api/v1/tickets/{number}/events",
                               f"/api/v1/tickets/{number}/events")):
        resp = await c.request(method.upper(), url, headers=auth("operator"),
                               json={"note": "x"})
        assert resp.status == 403 and (await resp.json())["code"] == "not_yours"
        assert spec["paths"][path][method]["responses"]["403"]["$ref"].endswith("/E403mine")
    for path in ("/api/v1/calls/{uniqueid}/escalate", "/api/v1/calls/{uniqueid}/disposition"):
        assert spec["paths"][path]["post"]["responses"]["403"]["$ref"].endswith("/E403mine")
