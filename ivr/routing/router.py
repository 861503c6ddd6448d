"""The router: schedules the policy's re-checks and hands decisions to actions.

Timers run on Asterisk's clock: a caller who entered first-line at T (from
the QueueCallerJoin timestamp) is looked at again at T + 30.000 s, not
30 s after ivr happened to read the event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from ivr.calls.facts import Entered, Exited, Fact, Unobserved
from ivr.calls.tracker import Tracker
from ivr.routing import policy

log = logging.getLogger(__name__)


class Router:
    def __init__(self, tracker: Tracker, rules: policy.Rules,
                 act: Callable[[policy.Move], Awaitable[None]],
                 clock: Callable[[], float] = time.time) -> None:
        self.tracker, self.rules, self.act, self.clock = tracker, rules, act, clock
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def on_fact(self, fact: Fact) -> None:
        if isinstance(fact, Entered):
            self._schedule(fact)
        elif isinstance(fact, (Exited, Unobserved)):
            timer = self._timers.pop(fact.visit, None)
            if timer is not None:
                timer.cancel()

    def _schedule(self, entered: Entered) -> None:
        due = policy.due_us(entered, self.rules)
        if due is None:
            return
        delay = max(0.0, due / 1e6 - self.clock())
        loop = asyncio.get_running_loop()
        self._timers[entered.visit] = loop.call_later(delay, self._fire, entered.uniqueid, entered.visit)

    def _fire(self, uniqueid: str, visit: int) -> None:
        self._timers.pop(visit, None)
        decision = policy.decide(self.tracker, uniqueid, visit, self.rules)
        if decision is None:
            return
        task = asyncio.get_running_loop().create_task(self._act(decision))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _act(self, decision: policy.Move) -> None:
        try:
            await self.act(decision)
        except Exception as exc:
            log.warning("call %s: move to %s failed: %s", decision.uniqueid, decision.to_queue, exc)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
