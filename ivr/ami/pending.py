"""The actions in flight on one AMI connection, and the replies that finish them.

Replies are matched to requests by ActionID only and finish on protocol markers
(`Response:`, `EventList: Complete`), never on the human `Message:` text.  A list
that timed out is remembered until its Complete, so its late items are dropped
instead of dispatched as events.  No asyncio here beyond each request's future.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from dataclasses import dataclass, field

from ivr.ami.codec import Message
from ivr.ami.errors import AmiDisconnected, AmiError

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Pending:
    is_list: bool
    future: asyncio.Future[list[Message]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())
    items: list[Message] = field(default_factory=list)

    def finish(self, outcome: list[Message] | AmiError) -> None:
        if self.future.done():
            return
        if isinstance(outcome, AmiError):
            self.future.set_exception(outcome)
        else:
            self.future.set_result(outcome)


class Requests:
    """Every request of one client gets a fresh ActionID (a per-client prefix, then a
    counter), so a reply from an earlier connection or another client never matches."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._prefix = f"ivr-{secrets.token_hex(3)}-"
        self._pending: dict[str, Pending] = {}
        self._abandoned: set[str] = set()   # timed-out lists: swallow late items

    def new_id(self) -> str:
        return f"{self._prefix}{next(self._ids)}"

    def open(self, action_id: str, is_list: bool) -> Pending:
        self._pending[action_id] = Pending(is_list)
        return self._pending[action_id]

    def close(self, action_id: str, timed_out: bool) -> None:
        if self._pending.pop(action_id).is_list and timed_out:
            self._abandoned.add(action_id)

    def take(self, msg: Message) -> bool:
        """Whether `msg` belongs to a request of ours (answer, list item, late item)."""
        action_id = msg.action_id or ""
        pending = self._pending.get(action_id)
        if msg.response is not None:
            _on_response(msg, msg.response, pending)
        elif pending is not None and pending.is_list:
            _on_list_item(msg, pending)
        elif action_id in self._abandoned:
            self._on_late_item(msg, action_id)
        else:
            return False
        return True

    def fail_all(self, reason: str) -> None:
        """The connection is gone: every pending request fails now, not at its deadline."""
        for pending in self._pending.values():
            pending.finish(AmiDisconnected(reason))
        self._abandoned.clear()

    def _on_late_item(self, msg: Message, action_id: str) -> None:
        logger.debug("dropping late %s for timed-out ActionID %s", msg.event, action_id)
        if _completes_list(msg):
            self._abandoned.discard(action_id)


def _on_response(msg: Message, response: str, pending: Pending | None) -> None:
    if pending is None:
        logger.debug("dropping AMI response for unknown ActionID %s", msg.action_id)
    elif response.lower() == "error":
        pending.finish(AmiError(msg.get("Message") or "error"))
    elif not pending.is_list:
        pending.finish([msg])
    # A list's Success response opens it; only its Complete event ends it.


def _on_list_item(msg: Message, pending: Pending) -> None:
    if _completes_list(msg):
        pending.finish(pending.items)
    else:
        pending.items.append(msg)


def _completes_list(msg: Message) -> bool:
    return (msg.get("EventList") or "").lower() == "complete"
