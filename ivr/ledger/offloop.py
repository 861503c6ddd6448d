"""The app's ledger store, driven from a thread and event loop of its own."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Concatenate, Coroutine, ParamSpec, TypeVar

from ivr.ledger.store import Store

P = ParamSpec("P")
T = TypeVar("T")


class OffLoop:
    """A Store driven from a thread and event loop of its own.

    SQLAlchemy's async layer compiles statements and processes rows in the
    caller's event loop; a batch of 2,000 records held ivr's loop for 30-80 ms,
    and a month's statement would hold it for seconds.  Here the caller only
    awaits a future: the AMI events, timers and the dialplan's answers go on.
    A cancelled await (a timeout) cancels the work in the other loop too.

    Any Store method runs this way, with the arguments it takes, checked by
    mypy: `await ledger.run(Store.calls, from_us, to_us)` (store.Ledger).
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

    async def run(self, query: Callable[Concatenate[Store, P], Coroutine[Any, Any, T]], /,
                  *args: P.args, **kwargs: P.kwargs) -> T:
        """`query(store, *args, **kwargs)` run on the store's loop, awaited from this one."""
        work = query(self.store, *args, **kwargs)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._started()))

    async def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        await self.run(Store.close)
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 5)
        if not thread.is_alive():
            loop.close()
