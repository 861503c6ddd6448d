"""Fuzz what comes in over HTTP: the dialplan's query strings and incident bodies.

    fuzz/run.sh 60                                 # every harness, 60 s each
    .venv/bin/python fuzz/fuzz_http.py --seeds DIR  # write the seed corpus
    .venv/bin/python fuzz/fuzz_http.py crash-...    # replay one finding

The first byte picks the target, the rest is its input:
  0  GET /dialplan/v1/entry?<rest>     through the real route handler: the
  1  GET /dialplan/v1/escalate?<rest>  validation, then the routing policy
  2  POST /api/v1/incidents body       decoded as the API does, then Incidents.open
  3  Incidents.open(area, message, expires_in) with JSON-like values built from <rest>

Bytes that cannot stand in a request line are percent-encoded first, as any
HTTP client would: aiohttp's parser answers 400 for them before ivr sees
anything.  A finding is any exception, a dialplan answer other than 200 with
a route or an empty 400 or 403 (past the PBX's secret check, dialplan_auth.py), or an
incident that breaks open()'s promises.
"""

from __future__ import annotations

import json
import logging
import sys
import unicodedata
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, quote_from_bytes

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["ivr"]):
    from aiohttp import web

    from ivr.http import dialplan as dialplan_http
    from ivr.ami import events as ev
    from ivr.app import Services, build
    from ivr.config import AmiConfig, Config, RoutingConfig
    from ivr.routing.incidents import ALL_AREAS, MAX_EXPIRES_IN, MAX_MESSAGE, IncidentError, Incidents
    from yarl import URL

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIBERS = ROOT / "ivr" / "lab" / "files" / "subscribers.csv"
ROUTE_KEYS = {"route", "account", "area", "announce", "incident", "ask_account", "claim", "prio"}
QUERY_SAFE = b"-._~!$'()*+,;=:@/?%&"   # left as they are: '%' may start a bad escape
NOW = 1_795_530_600.0
KNOWN_UID = "1795530561.42"
SECRET = "dialplan-secret-of-the-fuzzer"    # the PBX's own: the questions past its check

# What http/api/body.py's body_of answers with a 400.  Anything else escaping is a 500.
API_400 = (ValueError, RecursionError)


def make_app() -> Services:
    """ivr's own object graph: the lab directory, a caller in a queue, an incident in the north."""
    app = build(Config(ami=AmiConfig(dialplan_secret=SECRET),
                       routing=RoutingConfig(directory=str(SUBSCRIBERS))), clock=lambda: NOW)
    ts = round(NOW * 1e6)
    app.tracker.handle(ev.VarSet(ts, KNOWN_UID, ev.IVR_AREA, "north"))
    app.tracker.handle(ev.CallerJoined(ts, KNOWN_UID, "PJSIP/anonymous-0000002a", "79101",
                                       "first-line"))
    app.incidents.open("north", "Fibre cut near the depot", 3600)
    return app


APP = make_app()
Handler = Callable[[Any], Coroutine[Any, Any, web.StreamResponse]]
HANDLERS = {route.path: cast(Handler, route.handler) for route in dialplan_http.routes(APP)}


class QueryRequest:
    """The part of a web.Request the dialplan handlers read, from the URL as
    aiohttp's parser builds it.  (make_mocked_request costs 1.5 ms a call and
    its mocks record every call: the fuzzer would run slow and out of memory.)"""

    headers = {"X-Ivr-Secret": SECRET}
    remote = "127.0.0.1"

    def __init__(self, rel_url: URL) -> None:
        self.rel_url = rel_url

    @property
    def path(self) -> str:
        return self.rel_url.path

    @property
    def query(self) -> Any:
        return self.rel_url.query

    @property
    def query_string(self) -> str:
        return self.rel_url.query_string


def run_sync(coro: Coroutine[Any, Any, web.StreamResponse]) -> web.StreamResponse:
    """The dialplan handlers never await: step the coroutine once, no event loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("a dialplan handler awaited something")


def dialplan(endpoint: str, raw_query: bytes) -> None:
    path = f"/dialplan/v1/{endpoint}"
    query = quote_from_bytes(raw_query, safe=QUERY_SAFE)
    url = URL.build(path=path, query_string=query, encoded=True)   # as aiohttp's parser does
    resp = run_sync(HANDLERS[path](QueryRequest(url)))
    assert isinstance(resp, web.Response)
    assert resp.status in (200, 400, 403), resp.status    # 403: pbx= names another PBX
    if resp.status in (400, 403):
        assert not resp.body, resp.body
        return
    answer = parse_qs(resp.text or "", strict_parsing=True)
    if endpoint == "status":
        assert set(answer) in ({"kind", "state"}, {"error"}), answer
        return
    assert "route" in answer and set(answer) <= ROUTE_KEYS, answer


def incident_body(raw: bytes) -> None:
    """As body_of (http/api/body.py) then Routing.open_incident: json.loads on the body's bytes."""
    try:
        body = json.loads(raw)
    except API_400:
        return
    if isinstance(body, dict) and not set(body) - {"area", "message", "expires_in"}:
        open_incident(body.get("area"), body.get("message"), body.get("expires_in"))


def open_incident(area: object, message: object, expires_in: object) -> None:
    incidents = Incidents(lambda: NOW)
    try:
        incident = incidents.open(area, message, expires_in)
    except IncidentError as exc:
        assert "\n" not in str(exc)
        return
    assert incident.area == ALL_AREAS or (
        incident.area and set(incident.area) <= set("abcdefghijklmnopqrstuvwxyz0123456789-"))
    assert 0 < len(incident.message) <= MAX_MESSAGE and incident.message == incident.message.strip()
    assert not any(unicodedata.category(c) == "Cc" for c in incident.message)
    assert 1 <= incident.expires_at - NOW <= MAX_EXPIRES_IN
    json.dumps(incident.to_json(NOW))   # what web.json_response does with it
    assert incidents.covering(incident.area) == incident


def json_like(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> object:
    kind = fdp.ConsumeIntInRange(0, 8 if depth < 3 else 6)
    makers: list[Callable[[], object]] = [
        lambda: None, fdp.ConsumeBool, lambda: fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 80)),
        fdp.ConsumeRegularFloat, fdp.ConsumeFloat,
        lambda: fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 24)),
        lambda: fdp.PickValueInList(["north", "*", "sever-1", "Fibre cut", " ", "60", ""]),
        lambda: [json_like(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))],
        lambda: {fdp.ConsumeUnicodeNoSurrogates(4): json_like(fdp, depth + 1)
                 for _ in range(fdp.ConsumeIntInRange(0, 3))},
    ]
    return makers[kind]()


def test_one_input(data: bytes) -> None:
    if not data:
        return
    target, rest = data[0] % 5, data[1:]
    if target == 0:
        dialplan("entry", rest)
    elif target == 1:
        dialplan("escalate", rest)
    elif target == 4:
        dialplan("status", rest)
    elif target == 2:
        incident_body(rest)
    else:
        fdp = atheris.FuzzedDataProvider(rest)
        open_incident(json_like(fdp), json_like(fdp), json_like(fdp))


SEEDS = [
    b"\x00uniqueid=1795530561.42&caller=79101",
    b"\x00uniqueid=1795530561.43&caller=%2B7%20(910)%20123-45-67&account=100102&asked=1",
    b"\x00uniqueid=1.2&caller=anonymous&asked=1",
    b"\x00uniqueid=1.3&caller=55611&account=&asked=1",         # typed nothing
    b"\x00uniqueid=1.4&caller=55611&account=1%2A2&asked=1",    # keys that are no account
    b"\x01uniqueid=" + KNOWN_UID.encode(),
    b"\x01uniqueid=1795530561.99",
    b'\x02{"area": "north", "message": "Fibre cut near the depot", "expires_in": 3600}',
    b'\x02{"area": "*", "message": "PBX maintenance", "expires_in": 60.5}',
    b'\x02{"area": "North", "message": "", "expires_in": true}',
    b"\x03north*Fibre cut\x00\x01\x02\x03\x04\x05\x06\x07",
]


def write_seeds(corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for n, seed in enumerate(SEEDS):
        (corpus / f"seed-{n:02d}").write_bytes(seed)


def main() -> None:
    logging.getLogger("ivr").setLevel(logging.CRITICAL)   # a warning per bad request otherwise
    if sys.argv[1:2] == ["--seeds"]:
        write_seeds(Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
