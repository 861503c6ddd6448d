"""Reading a request's JSON body, the same way for every /api/v1 route."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ivr.http.errors import BadRequest


async def body_of(request: web.Request, fields: set[str] | None = None) -> dict[str, Any]:
    """The body, a JSON object of Unicode text (with only `fields`, when given), else
    BadRequest."""
    try:
        # The bytes, not request.json(): a declared charset is not ours to trust.
        body = json.loads(await request.read())
    except (ValueError, RecursionError):   # JSONDecodeError, UnicodeDecodeError, too deep or long
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if (problem := not_unicode(body)) is not None:
        raise BadRequest(problem)
    unknown = set(body) - fields if fields is not None else set()
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    return body


def not_unicode(body: dict[str, Any]) -> str | None:
    """What in a JSON body is not Unicode text (a lone surrogate such as "\\ud800", which
    JSON lets through and UTF-8 cannot write), or None.  Refused here, before anything is
    kept: else the desk's registry or a log line would fail half-way with a 500."""
    def bad(value: Any) -> bool:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
            return False
        if isinstance(value, dict):
            return any(bad(k) or bad(v) for k, v in value.items())
        return isinstance(value, list) and any(bad(v) for v in value)

    for key, value in body.items():
        if bad(key):
            return "a field's name is not Unicode text (a lone surrogate)"
        if bad(value):
            return f"{key}: not Unicode text (a lone surrogate)"
    return None
