"""The webhooks' outbox: an event becomes one message a endpoint that wants it.

A message is written in the same transaction as the record it tells of (the
registry's entry: desk_store.registry_append; an incident: with the writer's batch,
and its spool while the database is away), so a record is never kept without its
messages, nor a message sent for a record that was not.  Its body is fixed at that
moment, so every attempt sends the same bytes under the same `webhook-id`; the
sender (webhooks/sender.py) signs each attempt with the endpoint's secret of the
day.  The body follows the Standard Webhooks payload: `type`, `timestamp` (when the
event happened), `data`.  outbox_store.py reads and moves the rows.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, Iterable, Mapping

from ivr.config.webhooks import WebhookConfig

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATES = (PENDING, DELIVERED, DEAD)
TABLE = "webhook_outbox"


@dataclass(frozen=True, slots=True)
class Message:
    """An outbox row (schema.webhook_outbox), as made: pending, due at once."""

    table: ClassVar[str] = TABLE
    id: str             # the webhook-id: msg_ and 24 hex digits, never a '.'
    endpoint: str
    event: str
    body: str           # JSON, ASCII only: the bytes signed and sent
    created_us: int
    queued_us: int
    state: str = PENDING
    attempts: int = 0
    next_us: int = 0
    last_error: str = ""
    delivered_us: int | None = None


def new_id() -> str:
    return "msg_" + secrets.token_hex(12)


class Outbox:
    """Which endpoints want which events; the messages for one event."""

    def __init__(self, endpoints: Iterable[WebhookConfig] = ()) -> None:
        self.wanted: dict[str, list[str]] = {}
        for e in endpoints:
            for event in e.events:
                self.wanted.setdefault(event, []).append(e.name)

    def messages(self, event: str, data: Mapping[str, Any], at_us: int) -> list[Message]:
        names = self.wanted.get(event, [])
        if not names:
            return []
        body = json.dumps({"type": event, "timestamp": iso_us(at_us), "data": data},
                          separators=(",", ":"))
        return [Message(new_id(), name, event, body, at_us, at_us, next_us=at_us)
                for name in names]


def iso_us(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, timezone.utc).isoformat(timespec="microseconds") \
        .replace("+00:00", "Z")
