"""The app's ledger store, driven from a thread and event loop of its own."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, Mapping, Sequence, TypeVar

from ivr.calls import records as rec
from ivr.ledger.store import Store

T = TypeVar("T")


class OffLoop:
    """A Store driven from a thread and event loop of its own.

    SQLAlchemy's async layer compiles statements and processes rows in the
    caller's event loop; a batch of 2,000 records held ivr's loop for 30-80 ms,
    and a month's statement would hold it for seconds.  Here the caller only
    awaits a future: the AMI events, timers and the dialplan's answers go on.
    A cancelled await (a timeout) cancels the work in the other loop too.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.url, self.first_line = store.url, store.first_line
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _started(self) -> asyncio.AbstractEventLoop:
        """The store's loop, started at first use (an app that never writes starts none)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="ledger",
                                            daemon=True)
            self._thread.start()
        return self._loop

    async def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._started()))

    async def migrate(self) -> str:
        return await self._run(self.store.migrate())

    async def write(self, records: Sequence[rec.CallRecord],
                    history: Mapping[str, Sequence[dict[str, Any]]] | None = None) -> int:
        return await self._run(self.store.write(records, history))

    async def history(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        await self._run(self.store.history(table, rows))

    async def open_incidents(self, now_us: int) -> list[dict[str, Any]]:
        return await self._run(self.store.open_incidents(now_us))

    async def calls(self, from_us: int, to_us: int, caller: str | None = None,
                    account: str | None = None, pbx: str | None = None,
                    limit: int | None = None) -> list[rec.CallRecord]:
        return await self._run(self.store.calls(from_us, to_us, caller, account, pbx, limit))

    async def newest_us(self, pbx: str) -> int | None:
        return await self._run(self.store.newest_us(pbx))

    async def backfill(self, records: Sequence[rec.CallRecord],
                       visits: Sequence[tuple[str, str, rec.VisitRecord]]) -> None:
        await self._run(self.store.backfill(records, visits))

    async def billing_calls(self, from_us: int, to_us: int) -> list[rec.BillingCall]:
        return await self._run(self.store.billing_calls(from_us, to_us))

    async def statement_tally(self, boundaries: Sequence[int],
                              short_abandon_ms: int) -> list[tuple[int, str, bool, str, int, int]]:
        return await self._run(self.store.statement_tally(boundaries, short_abandon_ms))

    async def statement_digest(self, from_us: int, to_us: int) -> str:
        return await self._run(self.store.statement_digest(from_us, to_us))

    async def registry_append(self, entry: dict[str, Any]) -> None:
        await self._run(self.store.registry_append(entry))

    async def registry(self, from_us: int | None = None, to_us: int | None = None
                       ) -> tuple[list[dict[str, Any]], tuple[int, str] | None]:
        return await self._run(self.store.registry(from_us, to_us))

    async def incidents_between(self, from_us: int, to_us: int) -> list[dict[str, Any]]:
        return await self._run(self.store.incidents_between(from_us, to_us))

    async def call(self, uniqueid: str) -> list[rec.CallRecord]:
        return await self._run(self.store.call(uniqueid))

    async def answered_by(self, member: str, from_us: int, to_us: int) -> list[rec.CallRecord]:
        return await self._run(self.store.answered_by(member, from_us, to_us))

    async def undisposed(self, from_us: int, to_us: int) -> dict[str, int]:
        return await self._run(self.store.undisposed(from_us, to_us))

    async def contacts(self, from_us: int, to_us: int) -> list[tuple[Any, ...]]:
        return await self._run(self.store.contacts(from_us, to_us))

    async def repeat_counts(self, from_us: int, to_us: int) -> dict[str, int]:
        return await self._run(self.store.repeat_counts(from_us, to_us))

    async def ended_since(self, ended_from_us: int, entered_from_us: int) -> list[rec.CallRecord]:
        return await self._run(self.store.ended_since(ended_from_us, entered_from_us))

    async def repeat_firsts(self, from_us: int, to_us: int) -> dict[str, int]:
        return await self._run(self.store.repeat_firsts(from_us, to_us))

    async def operator_actions(self, pbx: str, uniqueid: str) -> list[dict[str, Any]]:
        return await self._run(self.store.operator_actions(pbx, uniqueid))

    async def session_put(self, row: dict[str, Any]) -> None:
        await self._run(self.store.session_put(row))

    async def session_drop(self, sid_hash: str) -> None:
        await self._run(self.store.session_drop(sid_hash))

    async def sessions(self, now_us: int) -> list[dict[str, Any]]:
        return await self._run(self.store.sessions(now_us))

    async def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        await self._run(self.store.close())
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 5)
        if not thread.is_alive():
            loop.close()
