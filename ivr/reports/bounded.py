"""Reports that cannot hold ivr: their work off the event loop, under a deadline.

A report reads the ledger in the ledger's own thread (ledger/offloop.py) and
judges and renders what it read here, in a thread of its own.  That thread is
a daemon thread, not asyncio's default executor: a report cut short by its
deadline, or by SIGTERM, goes on in the background until it ends, but it
keeps neither the event loop nor the process's exit waiting (asyncio.run
joins its default executor's threads; the interpreter joins non-daemon
threads).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, TypeVar

from ivr.ledger.db import LedgerError

T = TypeVar("T")


class ReportTimeout(LedgerError):
    """A report or history query passed report.deadline_seconds (a 503: try a shorter period)."""


async def in_thread(work: Callable[..., T], *args: Any) -> T:
    """`work(*args)` in a daemon thread of its own; its result, or its exception."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.cancelled():
            return                      # cut short: nobody waits for it any more
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)     # type: ignore[arg-type]

    def body() -> None:
        try:
            result = work(*args)
        except BaseException as exc:    # handed to the awaiting task, which raises it
            _post(loop, settle, None, exc)
        else:
            _post(loop, settle, result, None)

    threading.Thread(target=body, name="report", daemon=True).start()
    return await done


def _post(loop: asyncio.AbstractEventLoop, settle: Callable[[Any, BaseException | None], None],
          result: Any, error: BaseException | None) -> None:
    try:
        loop.call_soon_threadsafe(settle, result, error)
    except RuntimeError:                # the loop closed while the report ran: ivr stopped
        pass


async def within(seconds: float, what: str, work: Awaitable[T]) -> T:
    """`work`, or ReportTimeout once `seconds` have passed (the work is cancelled)."""
    try:
        return await asyncio.wait_for(work, seconds)
    except asyncio.TimeoutError:
        raise ReportTimeout(f"{what} took longer than {seconds:g} s (report.deadline_seconds): "
                            "ask for a shorter period") from None
