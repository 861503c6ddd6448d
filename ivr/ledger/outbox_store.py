"""The outbox's reads and moves, a part of the Store (ledger/outbox.py says what a
message is).

A message is pending until a 2xx (delivered) or until its retries run out (dead);
`ivr webhooks retry` makes a dead one pending again.  The sender claims a message
before each attempt by moving its next attempt past the attempt's end, in one
UPDATE that only one claimant wins: two ivr instances on one PostgreSQL never send
the same attempt twice, and a message whose sender died in the middle is due again
when the claim runs out.
"""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import func, select, update

from ivr.ledger import schema as t
from ivr.ledger.db import Database
from ivr.ledger.outbox import DEAD, DELIVERED, PENDING

_c = t.webhook_outbox.c


class OutboxStore(Database):
    """The webhooks' outbox (writes come with the records: desk_store, history)."""

    async def outbox_due(self, now_us: int, endpoints: Sequence[str],
                         limit: int) -> list[dict[str, Any]]:
        """Pending messages of these endpoints due at now_us, the longest due first."""
        if not endpoints:
            return []
        query = (select(t.webhook_outbox)
                 .where(_c.state == PENDING, _c.next_us <= now_us, _c.endpoint.in_(endpoints))
                 .order_by(_c.next_us, _c.created_us, _c.id).limit(limit))
        return [dict(r) for r in await self._read(query, mappings=True)]

    async def outbox_next_us(self, endpoints: Sequence[str]) -> int | None:
        """When the next pending message of these endpoints is due; None if none is."""
        if not endpoints:
            return None
        query = select(func.min(_c.next_us)).where(_c.state == PENDING,
                                                    _c.endpoint.in_(endpoints))
        found = (await self._read(query))[0][0]
        return None if found is None else int(found)

    async def outbox_claim(self, msg_id: str, now_us: int, until_us: int) -> bool:
        """Take a due message for one attempt (its next attempt moved to until_us, one
        more attempt counted); False when it is no longer due (another took it)."""
        return await self._outbox_update(
            update(t.webhook_outbox)
            .where(_c.id == msg_id, _c.state == PENDING, _c.next_us <= now_us)
            .values(next_us=until_us, attempts=_c.attempts + 1))

    async def outbox_delivered(self, msg_id: str, now_us: int) -> None:
        await self._outbox_update(update(t.webhook_outbox).where(_c.id == msg_id)
                                  .values(state=DELIVERED, delivered_us=now_us, last_error=""))

    async def outbox_failed(self, msg_id: str, error: str, next_us: int | None) -> None:
        """An attempt failed: the next one at next_us, or none (None: dead-lettered)."""
        values: dict[str, Any] = {"last_error": error[:500]}
        values.update({"state": DEAD} if next_us is None else {"next_us": next_us})
        await self._outbox_update(update(t.webhook_outbox).where(_c.id == msg_id,
                                                                 _c.state == PENDING)
                                  .values(**values))

    async def outbox_requeue(self, msg_id: str, now_us: int) -> str | None:
        """A dead message pending again, due now, with a new day of retries.  The state
        it was in (only a dead one is changed); None if there is no such message."""
        with self._failing():
            async with self.engine.begin() as conn:
                state = (await conn.execute(select(_c.state).where(_c.id == msg_id))).scalar()
                if state == DEAD:
                    await conn.execute(update(t.webhook_outbox).where(_c.id == msg_id)
                                       .values(state=PENDING, queued_us=now_us, next_us=now_us,
                                               attempts=0))
        return None if state is None else str(state)

    async def outbox_counts(self) -> dict[tuple[str, str], int]:
        """Pending and dead messages, by (endpoint, state)."""
        query = (select(_c.endpoint, _c.state, func.count()).where(_c.state.in_((PENDING, DEAD)))
                 .group_by(_c.endpoint, _c.state))
        return {(str(e), str(s)): int(n) for e, s, n in await self._read(query)}

    async def outbox_list(self, state: str | None = None,
                          limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """Messages (in a state, if given), the newest first, at most `limit`; and how
        many there are in all."""
        where = [] if state is None else [_c.state == state]
        query = select(t.webhook_outbox).where(*where).order_by(_c.created_us.desc(), _c.id)
        total = (await self._read(select(func.count()).select_from(t.webhook_outbox)
                                  .where(*where)))[0][0]
        rows = await self._read(query.limit(limit) if limit is not None else query, mappings=True)
        return [dict(r) for r in rows], int(total)

    async def _outbox_update(self, statement: Any) -> bool:
        with self._failing():
            async with self.engine.begin() as conn:
                return bool((await conn.execute(statement)).rowcount == 1)
