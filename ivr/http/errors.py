"""What a client is told for a service's error, written once.

The services (calls/service.py, desk/service.py) raise typed errors that
know nothing of HTTP; here each kind has its HTTP status (`answer`, used by
every /api/v1 handler through api/auth.py's `allowed`) and the word the
dialplan branches on (`dialplan_word`).  Every API error is JSON with an
`error` message, the error's `code` when it has one, and its extras.
"""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from ivr.calls import service as calls
from ivr.calls.service import CallError
from ivr.desk import service as desk
from ivr.desk.service import DeskError


class BadRequest(Exception):
    """A request ivr cannot read (its body, a parameter): a 400 with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message, self.extra = message, dict[str, Any]()


STATUS: Mapping[type[Exception], int] = {
    calls.NoSuchCall: 404, calls.OnSeveralPbxs: 409, calls.UnknownQueue: 400,
    calls.CannotMove: 409, calls.NotYours: 403, calls.NotInCall: 409,
    calls.NeverAnswered: 409, calls.WarnFirst: 409, calls.Incident: 409,
    calls.PbxFailed: 502, calls.LedgerDown: 503,
    desk.BadInput: 400, desk.NotAllowed: 403, desk.NotFound: 404, desk.Conflict: 409,
    desk.Unavailable: 503, BadRequest: 400,
}
ServiceError = CallError | DeskError | BadRequest

# The dialplan's words for a desk error, by question (any other error: the last word).
STATUS_WORDS: Mapping[type[Exception], str] = {desk.BadInput: "wrong", desk.NotFound: "unknown",
                                               DeskError: "desk"}
CLAIM_WORDS: Mapping[type[Exception], str] = {desk.Unavailable: "desk", DeskError: "refused"}


def error(status: int, message: str, headers: dict[str, str] | None = None,
          **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status, headers=headers)


def status_of(exc: Exception) -> int:
    """The HTTP status of a service's error: its own kind's, else its nearest base's."""
    return next((STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS), 500)


def answer(exc: ServiceError) -> web.Response:
    extra: dict[str, Any] = dict(exc.extra)
    if isinstance(exc, CallError) and exc.code:
        extra["code"] = exc.code
    return error(status_of(exc), exc.message, **extra)


def dialplan_word(exc: DeskError, words: Mapping[type[Exception], str]) -> str:
    return next(words[kind] for kind in type(exc).__mro__ if kind in words)
