"""The service desk's registry and the console's sessions: what the desk and the
console keep in the ledger's database (desk/registry.py, console/web.py)."""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import delete, insert, select, update

from ivr.ledger import schema as t
from ivr.ledger.db import Database, LedgerError


class DeskStore(Database):
    """The registry (appended, never rewritten) and the console's sessions, a part of the Store."""

    async def registry_append(self, entry: dict[str, Any],
                              messages: Sequence[dict[str, Any]] = ()) -> None:
        """One entry, the new head and the webhooks' messages about the entry
        (ledger/outbox.py), in one transaction: all or none.  An entry whose seq is
        taken fails (IntegrityError), so a chain never forks."""
        head = {"id": 1, "seq": entry["seq"], "hash": entry["hash"]}
        with self._failing():
            async with self.engine.begin() as conn:
                await conn.execute(insert(t.registry), [entry])
                if entry["seq"] == 1:
                    await conn.execute(insert(t.registry_head), [head])
                else:
                    done = await conn.execute(update(t.registry_head)
                                              .where(t.registry_head.c.id == 1,
                                                     t.registry_head.c.seq == entry["seq"] - 1)
                                              .values(seq=head["seq"], hash=head["hash"]))
                    if done.rowcount != 1:
                        raise LedgerError(f"registry head is not at entry {entry['seq'] - 1}: "
                                          f"run ivr registry verify")
                if messages:
                    await conn.execute(insert(t.webhook_outbox), list(messages))

    async def registry(self, from_us: int | None = None,
                       to_us: int | None = None) -> tuple[list[dict[str, Any]], tuple[int, str] | None]:
        """The registry's entries in seq order (those made in [from_us, to_us) if given),
        and its head (seq, hash), None if there is none."""
        c = t.registry.c
        query = select(t.registry).order_by(c.seq)
        if from_us is not None:
            query = query.where(c.at_us >= from_us)
        if to_us is not None:
            query = query.where(c.at_us < to_us)
        with self._failing():
            async with self.engine.connect() as conn:
                rows = [dict(r) for r in (await conn.execute(query)).mappings()]
                head = (await conn.execute(select(t.registry_head.c.seq, t.registry_head.c.hash)
                                           .where(t.registry_head.c.id == 1))).first()
        return rows, (int(head[0]), str(head[1])) if head is not None else None

    # -- console sessions (console/sessions.py): not figures, so they may be deleted ---------

    async def session_put(self, row: dict[str, Any]) -> None:
        await self._change(insert(t.console_sessions), [row])

    async def session_drop(self, sid_hash: str) -> None:
        await self._change(delete(t.console_sessions)
                           .where(t.console_sessions.c.sid_hash == sid_hash))

    async def sessions(self, now_us: int) -> list[dict[str, Any]]:
        """The sessions still valid at now_us; the expired ones are deleted."""
        c = t.console_sessions.c
        await self._change(delete(t.console_sessions).where(c.expires_us <= now_us))
        return [dict(r) for r in await self._read(select(t.console_sessions), mappings=True)]

