"""The OpenAPI 3.1 description of /api/v1, served at GET /api/v1/openapi.json.

Written here by hand, next to nothing it could drift from unseen: the unit
tests hold it to the real router (every /api/v1 route and method, and their
path parameters), to the real role checks (`x-roles`: a role outside it gets
the 403 "may not do this"), and schemathesis calls every operation of it
against a real app and fails on a 5xx or a status not listed here.

The statuses listed are the ones the code answers: 401, 403 and 429 come from
the auth middleware, its per-source throttle (throttle.py) and the role check
in front of every operation; 403 with code not_yours where the call or item
is another's (calls/access.py, desk/service.py may_read); 413 from the
64 KiB body cap; 503 where the ledger or the desk's registry is read or
written, a report passes report.deadline_seconds, or the registry's key is
unusable.  Every error body is {"error": "...", "code"?: "..."} (plus, for
some, `incident` or `pbx`).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from aiohttp import web

from ivr.pbx import actions
from ivr.config import tokens as roles
from ivr.calls.service import DISPOSITIONS
from ivr.http.api.auth import OPENAPI_PATH
from ivr.desk import numbers
from ivr.http.api import calls as calls_api, incidents as incidents_api, reports as reports_api
from ivr.http.api import callbacks as callbacks_api
from ivr.http.api.desk import ROLES as DESK_ROLES
from ivr.desk.service import CLAIM, COMPLAINT, COMPLAINT_MOVES, MAX_TEXT, TICKET, TICKET_MOVES
from ivr.routing.incidents import MAX_EXPIRES_IN, MAX_MESSAGE

Json = dict[str, Any]

EVERYONE = sorted(roles.EVERYONE)
# Who may call a route: its module's route table's, so the two cannot drift.
_READERS = sorted(reports_api.READERS)
_INCIDENTS = sorted(incidents_api.WHO)
_OPERATORS = sorted(calls_api.OPERATORS)
_SUPERVISORS = sorted(calls_api.SUPERVISORS)


def _desk(op_id: str) -> list[str]:
    """Who may call a desk route: its ROLES (http/api/desk.py), so the two cannot drift."""
    return sorted(DESK_ROLES[op_id])


_WHY: dict[int | str, str] = {
    400: "a bad body, query or number, or a period longer than report.max_days: the "
         "message says which field",
    401: "no bearer token, or one ivr does not know",
    403: "this role may not (the message names the roles that may), or the control API "
         "is off (no token configured)",
    # The same status, where a call or an item may be another's (code not_yours).
    "403mine": "this role may not (as 403), or the call or item is another's: code "
               "not_yours (an operator acts only on the call they answered, reads only "
               "the tickets they filed)",
    404: "no such call, incident, account or number",
    409: "refused: the message says why (and `code`, when it has one)",
    413: "the body is over 64 KiB",
    429: "too many wrong tokens from this source address: every request presenting a "
         "token, the right one too, is refused until Retry-After (code throttled)",
    502: "the PBX did not act",
    503: "the ledger (or the desk's registry) cannot be read or written now, a report "
         "passed report.deadline_seconds, or the registry's key is unusable",
}


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def _obj(required: list[str] | None = None, **props: Json) -> Json:
    out: Json = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def _body(required: list[str] | None = None, **props: Json) -> Json:
    """A request body the code refuses (400) when it has a field not named here."""
    return {**_obj(required, **props), "additionalProperties": False}


def _str(**more: Any) -> Json:
    return {"type": "string", **more}


def _q(name: str, description: str, example: str | None = None, **schema: Any) -> Json:
    out = {"name": name, "in": "query", "required": False, "description": description,
           "schema": {"type": "string", **schema}}
    return {**out, "example": example} if example is not None else out


def _path(name: str, description: str, example: str) -> Json:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}, "example": example}


# The examples are real shapes: the lab directory's first account, the first number
# of each kind; schemathesis starts from them, so its calls also get past validation.
ACCOUNT, CALL, OPERATOR = "100101", "1795996400.0", "op2"
_UNIQUEID = _path("uniqueid", "the caller channel's Uniqueid (as in ivr's logs)", CALL)
_PBX = _q("pbx", "the PBX's name, when the uniqueid is on several")
_PERIOD = [_q("from", "start: a date (YYYY-MM-DD) or an ISO 8601 datetime; required",
              "2026-11-01", format="date"),
           _q("to", "end (excluded), as from; required", "2026-12-01", format="date"),
           _q("tz", "an IANA time zone for times without an offset (report.timezone)", "UTC")]


def _number(kind: str) -> Json:
    return _path("number", f"the {kind}'s number as ivr issued it (digits: the kind, a "
                           "sequence, a check digit)", numbers.issue(kind, 1))


def _op(op_id: str, summary: str, who: list[str], ok: int, answer: Json | None,
        errors: tuple[int, ...] = (), params: list[Json] | None = None,
        body: Json | None = None, mine: bool = False, content: Json | None = None) -> Json:
    """One operation: its success `ok` with the schema `answer` (or another `content`),
    then the errors the code can give (401, 403 and 429 always; 413 with a body; 403
    names not_yours when `mine`: the call or item may be another's)."""
    statuses = sorted({401, 403, 429, *errors, *((413,) if body else ())})
    responses: Json = {str(ok): {"description": summary,
                                 **({"content": _json(answer)} if answer else {}),
                                 **({"content": content} if content else {})}}
    for s in statuses:
        name = "403mine" if s == 403 and mine else s
        responses[str(s)] = {"$ref": f"#/components/responses/E{name}"}
    op: Json = {"operationId": op_id, "summary": summary, "x-roles": who,
                "description": f"Roles: {', '.join(who)}.", "responses": responses}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": _json(body)}
    return op


def _incident_ops() -> Json:
    new = _body(["area", "message", "expires_in"],
                area=_str(description='"*" (every area) or a slug of a-z, 0-9 and -',
                          pattern=r"^(\*|[a-z0-9-]+)$", examples=["west"]),
                message=_str(minLength=1, maxLength=MAX_MESSAGE, examples=["A fibre cut."],
                             description="what callers hear (no control characters)"),
                expires_in={"type": "number", "minimum": 1, "maximum": MAX_EXPIRES_IN,
                            "examples": [3600]})
    return {
        "/api/v1/incidents": {
            "post": _op("open_incident", "open an incident", _INCIDENTS, 201, _ref("Incident"),
                        (400,), body=new),
            "get": _op("incidents", "the incidents in force", EVERYONE, 200,
                       _obj(["incidents"], incidents={"type": "array",
                                                      "items": _ref("Incident")})),
        },
        "/api/v1/incidents/{id}": {
            "delete": _op("close_incident", "close an incident", _INCIDENTS, 200,
                          _obj(["closed"], closed=_str()), (404,),
                          [_path("id", "the incident's id", "inc-1a2b3c4d")]),
        },
    }


def _callback_ops() -> Json:
    return {"/api/v1/callbacks": {"get": _op(
        "callbacks", "the callbacks pending now, in their places", sorted(callbacks_api.WHO), 200,
        _obj(["callbacks"], callbacks={"type": "array", "items": _ref("Callback")}))}}


def _call_ops() -> Json:
    def action(op_id: str, summary: str, who: list[str], answer: Json, body: Json | None = None,
               errors: tuple[int, ...] = (400, 404, 409, 502), ok: int = 202) -> Json:
        return {"post": _op(op_id, summary, who, ok, answer, errors, [_UNIQUEID, _PBX], body,
                            mine=True)}

    result = functools.partial(_obj, ["result"])
    return {
        "/api/v1/queues": {"get": _op(
            "queues", "each queue's threshold, waiting callers and agents", EVERYONE, 200,
            _obj(["queues"], queues={"type": "object", "additionalProperties": _obj(
                ["threshold_seconds", "waiting", "agents"],
                threshold_seconds={"type": "number"}, waiting={"type": "array"},
                agents={"type": "array"})}))},
        "/api/v1/calls": {"get": _op(
            "calls", "ended calls from the ledger", EVERYONE, 200,
            _obj(["calls"], calls={"type": "array", "items": {"type": "object"}}), (400, 503),
            [_q("caller", "the caller's number", "79101"),
             _q("account", "the subscriber's account", ACCOUNT),
             *_PERIOD])},
        "/api/v1/calls/{uniqueid}": {"get": _op(
            "call", "one call in progress", EVERYONE, 200,
            _obj(["pbx", "uniqueid", "path", "answered"], pbx=_str(), uniqueid=_str(),
                 caller=_str(), account=_str(), area=_str(),
                 path={"type": "array", "items": _str()}, answered={"type": "boolean"},
                 queue={"type": ["string", "null"]}), (404,), [_UNIQUEID, _PBX])},
        "/api/v1/calls/{uniqueid}/escalate": action(
            "escalate", "send the caller to the engineers", _OPERATORS,
            result(result=_str(const="accepted"), queue=_str()), errors=(404, 409, 502)),
        "/api/v1/calls/{uniqueid}/move": action(
            "move", "move a waiting caller to another queue", _SUPERVISORS,
            result(result=_str(const="moved"), **{"from": _str(), "to": _str()}),
            _obj(["queue"], queue=_str(description="a configured queue's name",
                                       examples=["common"]))),
        "/api/v1/calls/{uniqueid}/warn": action(
            "warn", "play the abuse warning to the caller", _OPERATORS,
            result(result=_str(const="warned")), errors=(404, 409, 502)),
        "/api/v1/calls/{uniqueid}/end": action(
            "end", "end a warned caller's call for abuse", _OPERATORS,
            result(result=_str(const="ended")),
            _body(["reason"], reason=_str(enum=["abuse"]))),
        "/api/v1/calls/{uniqueid}/transfer": action(
            "transfer", "what a blind transfer to 9001 or 9002 does", _OPERATORS,
            result(result=_str(const="transferred"), to=_str()),
            _body(["to"], to=_str(enum=list(actions.TRANSFERS)))),
        "/api/v1/calls/{uniqueid}/disposition": action(
            "disposition", "how the operator closed an answered call", _OPERATORS,
            result(result=_str(const="recorded"), code=_str()),
            _body(["code"], code=_str(enum=list(DISPOSITIONS))),
            errors=(400, 404, 409, 503), ok=201),
    }


def _report_ops() -> Json:
    def report(op_id: str, summary: str, extra: tuple[Json, ...] = ()) -> Json:
        return {"get": _op(op_id, summary, _READERS, 200, {"type": "object"}, (400, 503),
                           [*_PERIOD, *extra])}

    return {
        "/api/v1/reports/billing": report(
            "billing", "the contractor's statement",
            (_q("calls", "1: with every call's line", type="string", enum=["0", "1"]),)),
        "/api/v1/reports/downtime": {"get": _op(
            "downtime", "each account's downtime of incidents, with the claims that cover it",
            _READERS, 200, _obj(["from", "to", "accounts"], **{
                "from": {"type": "integer"}, "to": {"type": "integer"}},
                accounts={"type": "array", "items": _ref("Downtime")}), (400, 503), _PERIOD)},
        "/api/v1/reports/fcr": report("fcr", "first-contact resolution per queue and operator"),
    }


def _desk_ops() -> Json:
    text = functools.partial(_str, maxLength=MAX_TEXT)

    def moment(example: str) -> Json:
        return {"type": ["string", "number"], "examples": [example],
                "description": "ISO 8601 (UTC without an offset) or epoch seconds"}

    state = _q("state", "only items in this state")
    items = {"type": "array", "items": _ref("Item")}
    item_ops = (400, 404)
    return {
        "/api/v1/tickets": {
            "post": _op("file_ticket", "file a repair ticket", _desk("file_ticket"), 201, _ref("Item"),
                        (400, 404, 409, 503), body=_body(
                            ["problem"], account=_str(examples=[ACCOUNT]),
                            call=_str(examples=[CALL]), problem=text(examples=["No line."]),
                            insisted={"type": "boolean"})),
            "get": _op("tickets", "the tickets (an operator: the ones they filed)",
                       _desk("tickets"), 200, _obj(["tickets"], tickets=items),
                       (400,), [{**state, "schema": _str(enum=list(TICKET_MOVES))}]),
        },
        "/api/v1/tickets/{number}": {"get": _op(
            "ticket", "one ticket with its events", _desk("ticket"), 200, _ref("Item"), item_ops,
            [_number(TICKET)], mine=True)},
        "/api/v1/tickets/{number}/events": {"post": _op(
            "ticket_event", "a state change or a note", _desk("ticket_event"), 200,
            _ref("Item"), (400, 404, 409, 503), [_number(TICKET)],
            _body(state=_str(enum=list(TICKET_MOVES)), note=text()), mine=True)},
        "/api/v1/complaints": {
            "post": _op("file_complaint", "file a complaint against an operator",
                        _desk("file_complaint"), 201,
                        _ref("Item"), (400, 404, 409, 503), body=_body(
                            ["text"], call=_str(examples=[CALL]),
                            operator=_str(examples=[OPERATOR]), at=moment("2026-11-29T23:53:20"),
                            text=text(examples=["Rude."]))),
            "get": _op("complaints", "the complaints", _desk("complaints"), 200,
                       _obj(["complaints"], complaints=items), params=[state]),
        },
        "/api/v1/complaints/{number}": {"get": _op(
            "complaint", "one complaint with its events", _desk("complaint"), 200, _ref("Item"), item_ops,
            [_number(COMPLAINT)])},
        "/api/v1/complaints/{number}/events": {"post": _op(
            "complaint_event", "a state change or a note", _desk("complaint_event"), 200, _ref("Item"),
            (400, 404, 409, 503), [_number(COMPLAINT)],
            _body(state=_str(enum=list(COMPLAINT_MOVES)), note=text()))},
        "/api/v1/claims": {"post": _op(
            "file_claim", "claim a recalculation for an account's downtime", _desk("file_claim"),
            201,
            _ref("Item"), (400, 404, 503),
            body=_body(["account", "from", "to"], account=_str(examples=[ACCOUNT]),
                       **{"from": moment("2026-11-01"), "to": moment("2026-11-29")}))},
        "/api/v1/claims/{number}": {"get": _op(
            "claim", "one claim", _desk("claim"), 200, _ref("Item"), item_ops, [_number(CLAIM)])},
        "/api/v1/registry": {"get": _op(
            "registry", "the registry's entries and the chain's check", _desk("registry"), 200,
            _obj(["entries", "head", "intact", "problem"],
                 entries={"type": "array", "items": {"type": "object"}},
                 head=_obj(["seq", "hash"], seq={"type": "integer"}, hash=_str()),
                 intact={"type": "boolean"}, problem={"type": ["string", "null"]}),
            (400, 503), [_q("from", "entries made at or after (ISO 8601)", "2026-11-01"),
                         _q("to", "entries made before (ISO 8601)", "2026-12-01")])},
        **_tlog_ops(),
    }


def _tlog_ops() -> Json:
    """The registry as a transparency log (http/api/registry.py): 503 while its key is unusable."""
    size = functools.partial(_q, type="string", pattern=r"^[0-9]{1,18}$")
    return {
        "/api/v1/registry/checkpoint": {"get": _op(
            "registry_checkpoint", "the registry's signed checkpoint (a signed note: origin, "
            "size, root hash, signature)", _desk("registry_checkpoint"), 200, None, (503,),
            content={"text/plain": {"schema": _str()}})},
        "/api/v1/registry/consistency": {"get": _op(
            "registry_consistency", "a proof that the tree of size `from` is a prefix of the "
            "tree of size `to`", _desk("registry_consistency"), 200,
            _obj(["from", "to", "size", "proof"], **{"from": {"type": "integer"},
                                                     "to": {"type": "integer"}},
                 size={"type": "integer"}, proof={"type": "array", "items": _str()}),
            (400, 503), [size("from", "a tree size (0 or more); required", "0"),
                         size("to", "a tree size, at most the registry's size; required",
                              "0")])},
    }


def _components() -> Json:
    error = _obj(["error"], error=_str(description="one line, in English"),
                 code=_str(description="stable, for a person's language: not_in_call, incident, "
                                       "warn_first, never_answered, state_order, bad_number, "
                                       "no_number"))
    actor = _obj(["role", "name"], role=_str(enum=list(roles.ROLES)), name=_str())
    return {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "a token of the tokens file (its role "
                                                      "and name), or api.token (admin); the "
                                                      "role wall (a wallboard) is refused "
                                                      "everywhere"}},
        "schemas": {
            "Error": error,
            "Incident": _obj(["id", "area", "message", "started_at", "expires_at"], id=_str(),
                             area=_str(), message=_str(), started_at={"type": "number"},
                             expires_at={"type": "number"}, started=_str(), expires=_str(),
                             expires_in={"type": "number"}),
            "Callback": _obj(
                ["id", "pbx", "number", "queue", "origin", "requested_at", "state", "attempts",
                 "position"], id=_str(), pbx=_str(), number=_str(), account=_str(), queue=_str(),
                origin=_str(description="the uniqueid of the call that asked"),
                requested_at={"type": "number"},
                state=_str(enum=["placing", "waiting", "dialing", "retry"]),
                attempts={"type": "integer", "description": "dials made"},
                position={"type": ["integer", "null"],
                          "description": "its placeholder's place in the queue, 1 first"},
                next_attempt_at={"type": ["number", "null"]}, reason=_str()),
            "Downtime": _obj(
                ["account", "area", "downtime_seconds", "incidents", "claims"], account=_str(),
                area=_str(), downtime_seconds={"type": "number"},
                incidents={"type": "array", "items": _obj(
                    ["id", "area", "from_us", "to_us", "message"], id=_str(), area=_str(),
                    from_us={"type": "integer"}, to_us={"type": "integer"}, message=_str())},
                claims={"type": "array", "description": "the account's claims that counted one "
                        "of these incidents (desk/claims.py), oldest first", "items": _obj(
                            ["number", "state", "filed_at"], number=_str(), state=_str(),
                            filed_at=_str(), **{"from": {"type": ["string", "null"]},
                                                "to": {"type": ["string", "null"]}},
                            downtime_seconds={"type": ["number", "null"]})}),
            "Item": _obj(["number", "kind", "state", "filed_at", "filed_by", "overdue", "events"],
                         number=_str(), kind=_str(enum=["ticket", "complaint", "claim"]),
                         state=_str(), filed_at=_str(), filed_by=actor,
                         due={"type": ["string", "null"]}, overdue={"type": "boolean"},
                         events={"type": "array", "items": {"type": "object"}}),
        },
        "responses": {f"E{s}": {"description": why, "content": _json(_ref("Error")),
                                **({"headers": {"Retry-After": {
                                    "description": "seconds until this source may present "
                                                   "a token again",
                                    "schema": {"type": "integer", "minimum": 1}}}}
                                   if s == 429 else {})}
                      for s, why in _WHY.items()},
    }


@functools.cache
def _spec() -> Json:
    # The desk first: a fuzzer going in this order files tickets before it opens an
    # incident that refuses them (then, on a second pass, meets the refusal too).
    paths: Json = {**_desk_ops(), **_incident_ops(), **_call_ops(), **_report_ops(),
                   **_callback_ops()}
    paths[OPENAPI_PATH] = {"get": {
        "operationId": "openapi", "summary": "this description (no token needed)",
        "security": [], "x-roles": [],
        "responses": {"200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "ivr control API", "version": "1",
                 "description": "The control API and service desk of ivr (README: Control API, "
                                "The service desk). Every error is JSON {\"error\": ...}; a "
                                "refused request changes nothing."},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": _components(),
    }


def spec() -> Json:
    """The description, a copy the caller may change."""
    return copy.deepcopy(_spec())


async def serve(request: web.Request) -> web.Response:
    return web.json_response(_spec())


def routes() -> list[web.RouteDef]:
    return [web.get(OPENAPI_PATH, serve)]
