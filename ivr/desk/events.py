"""The desk's events out: each registry entry as a webhook event (ledger/outbox.py).

The event is the entry's kind and event (`ticket.filed`, `ticket.state`,
`complaint.note`, `claim.filed`, `ticket.refused`...: config/webhooks.EVENTS), its
data the entry's own: what was filed, the new state and the note, the incident that
refused a ticket; with the item's number, who did it, when, and the entry's place in
the registry (`seq`), by which a helpdesk can check it with `ivr registry export`.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from ivr.desk import registry
from ivr.ledger.outbox import Outbox


def event_type(entry: registry.Entry) -> str:
    return f"{entry.kind}.{entry.event}"


def data(entry: registry.Entry) -> dict[str, Any]:
    body = entry.data
    due = body.pop("due_us", None)
    out: dict[str, Any] = {"number": entry.number or None, "kind": entry.kind,
                           "seq": entry.seq, "at": _iso(entry.at_us),
                           "by": {"role": entry.actor_role, "name": entry.actor}, **body}
    if isinstance(due, int):
        out["due"] = _iso(due)
    return out


class DeskEvents:
    """What Desk._append writes with each entry: the outbox rows of its event."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def __call__(self, entry: registry.Entry) -> list[dict[str, Any]]:
        return [asdict(m) for m in self.outbox.messages(event_type(entry), data(entry),
                                                         entry.at_us)]


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, timezone.utc).isoformat(timespec="seconds") \
        .replace("+00:00", "Z")
