"""Callbacks: the caller keeps their place, nobody sits in the queue or redials.

Deciding is callbacks/model.py's, doing pbx/actions.py's; here the order of things:

    the dialplan's key 1 (request)  -> kept in the ledger, the caller's visit ends
                                       `callback`, a placeholder is placed
    its placeholder joins (Entered) -> waiting, at the caller's place
    an agent takes it, the dialplan asks (dial)
                                    -> the one dial of this attempt, or a refusal
    the dialplan's h extension (result, DIALSTATUS)
                                    -> connected; or retry after callback.retry_seconds
                                       at the same place; or failed
    the customer calls in (claim)   -> cancelled, its placeholder withdrawn; the new
                                       call takes the place
    a placeholder gone unanswered (ended, or missing after a resync: the PBX restarted)
                                    -> placed again, at the same place

Every change is a callback_events row; at start the requests without a final event
come back from the ledger (restore) and, once their PBX has resynced, are placed
again unless their placeholder is still waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Coroutine

from ivr.callbacks import model
from ivr.callbacks.model import Callback, State
from ivr.calls.facts import Entered, Fact, JourneyEnded, Unobserved
from ivr.config.callback import CallbackConfig
from ivr.ledger.rows import CallbackEvent, CallbackRow
from ivr.ledger.store import Store
from ivr.pbx import actions
from ivr.pbx.session import Pbx

if TYPE_CHECKING:
    from ivr.ledger.offloop import OffLoop
    from ivr.ledger.writer import LedgerWriter
    from ivr.metrics.families import Metrics

log = logging.getLogger(__name__)
LOST_AFTER_S = 15.0         # a placeholder not in its queue by then is placed again
MAX_PLACEMENTS = 20         # placeholders lost (not dials) before a request fails


class CallbackRefused(Exception):
    """Why a request, or a dial, is not taken: one word for the dialplan."""

    def __init__(self, word: str, why: str) -> None:
        super().__init__(why)
        self.word = word


@dataclass(eq=False)
class Callbacks:
    config: CallbackConfig
    queues: tuple[str, ...]                     # where key 1 is offered
    pbxs: dict[str, Pbx]
    ledger: LedgerWriter
    store: OffLoop
    metrics: Metrics
    clock: Callable[[], float] = time.time
    by_id: dict[str, Callback] = field(default_factory=dict)   # every request not final
    restored: bool = False      # the ledger's pending requests are known (restore)
    queue_log: bool = False     # ledger.queue_log_decisions: a withdrawn placeholder told there
    _timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # -- asked by the dialplan ---------------------------------------------------

    def offered(self, number: str) -> bool:
        """Whether a caller from `number` is offered a callback at all."""
        return (self.config.enabled and model.callable_number(number)
                and not self.config.blocked(number))

    def queue_of(self, pbx: Pbx, uniqueid: str) -> str:
        """The queue a caller asking for a callback left (or is in): where they go back to
        when it is refused; the first callback queue when ivr does not know the call."""
        j = pbx.tracker.journeys.get(uniqueid)
        if j is not None and j.visit is not None:
            return j.visit.queue
        return self.queues[0]

    def request(self, pbx: Pbx, uniqueid: str, number: str, prio: int) -> Callback:
        """Key 1: take the request of the caller on `uniqueid`.  Raises CallbackRefused."""
        if not self.config.enabled:
            raise CallbackRefused("off", "callbacks are off (no callback.dial)")
        if not model.callable_number(number):
            raise CallbackRefused("number", f"{number[:32]!r} is not a number ivr can call")
        if self.config.blocked(number):
            raise CallbackRefused("blocked", f"{number} is on callback.block")
        j = pbx.tracker.journeys.get(uniqueid)
        queue = j.visit.queue if j is not None and j.visit is not None else ""
        if queue not in self.queues:
            raise CallbackRefused("queue", f"call {uniqueid} is not in a queue offering callbacks")
        if (held := self._pending_for(pbx.name, number, j.account if j else "")) is not None:
            raise CallbackRefused("pending", f"{number} has callback {held.id} pending already")
        now = self._now_us()
        cb_id = str(now)
        while cb_id in self.by_id:
            cb_id = str(int(cb_id) + 1)
        row = CallbackRow(cb_id, pbx.name, uniqueid, number, j.account if j else "", queue, prio, now)
        cb = self.by_id[cb_id] = Callback(row, area=j.area if j else "")
        self.ledger.keep(row)
        self.metrics.callbacks.labels(pbx=pbx.name, queue=queue, result="requested").inc()
        log.info("call %s: callback %s requested for %s in %s (QUEUE_PRIO %d)", uniqueid, cb_id,
                 number, queue, prio)
        pbx.emit(pbx.tracker.callback_taken(uniqueid))
        self._spawn(self._place(cb))
        return cb

    def dial(self, pbx: str, cb_id: str, placement: int) -> tuple[str, Callback]:
        """An agent took placeholder `placement` of `cb_id`: the dial string for its one
        dial, counted.  Raises CallbackRefused (cancelled, unknown, dialled already)."""
        cb = self.by_id.get(cb_id)
        if cb is None or cb.row.pbx != pbx:
            raise CallbackRefused("unknown", f"no pending callback {cb_id}")
        if cb.state not in (State.WAITING, State.PLACING) or placement != cb.placements:
            raise CallbackRefused("gone", f"callback {cb_id} is {cb.state.value} "
                                          f"(placeholder {placement} of {cb.placements})")
        cb.state, cb.attempts = State.DIALING, cb.attempts + 1
        self._event(cb, "dialing", cb.placeholder)
        log.info("callback %s: dialing %s (attempt %d of %d)", cb_id, cb.row.number, cb.attempts,
                 self.config.attempts)
        return self.config.dial_string(cb.row.number), cb

    def result(self, pbx: str, cb_id: str, placement: int, status: str) -> Callback | None:
        """The dialplan's DIALSTATUS for a dial (from its h extension)."""
        cb = self.by_id.get(cb_id)
        if cb is None or cb.row.pbx != pbx or cb.state is not State.DIALING \
                or placement != cb.placements:
            return None
        now = self._now_us()
        cb.state = model.after_dial(cb, status, self.config.attempts,
                                    round(self.config.retry_seconds * 1e6), now)
        if cb.state is State.RETRY:
            cb.reason = status.lower()
            self._event(cb, "retry", reason=cb.reason)
            self._later(cb, cb.next_us)
        else:
            why = "" if cb.state is State.CONNECTED else (
                f"{status.lower()} after {cb.attempts} dial(s)" if not cb.stop_after_dial
                else "the customer called in")
            self._finish(cb, cb.state, why)
        return cb

    # -- the customer calls in -----------------------------------------------------

    def claim(self, pbx: str, number: str, account: str = "") -> int | None:
        """The customer called in (from the number, or with the account, of a pending
        callback): it is cancelled and the new call takes its place (the QUEUE_PRIO
        returned).  Being dialed right now, it is not dialed again, and the new call keeps
        its own place: one of the two."""
        cb = self._pending_for(pbx, number, account, dialing=True)
        if cb is None:
            return None
        if cb.state is State.DIALING:
            cb.stop_after_dial = True
            return None
        self._finish(cb, State.CANCELLED, "the customer called in")
        return cb.row.prio

    # -- what the PBX's facts say about placeholders ------------------------------------

    def on_fact(self, pbx: Pbx, fact: Fact) -> None:
        if isinstance(fact, Entered):
            j = pbx.tracker.journeys.get(fact.uniqueid)
            cb = self.by_id.get(j.placeholder) if j is not None and j.placeholder else None
            if cb is not None and cb.state is State.PLACING and j is not None:
                cb.state, cb.placeholder = State.WAITING, fact.uniqueid
                self._event(cb, "queued", fact.uniqueid)
            elif cb is None and j is not None and j.placeholder and self.restored:
                self._spawn(self._drop(pbx, j.channel, j.placeholder))   # a stray: its request ended
        elif isinstance(fact, (JourneyEnded, Unobserved)):
            for cb in self.by_id.values():
                if cb.placeholder == fact.uniqueid and cb.state is State.WAITING:
                    log.warning("callback %s: its placeholder %s left the queue unanswered; "
                                "placed again", cb.id, fact.uniqueid)
                    cb.state, cb.placeholder = State.PLACING, ""
                    self._spawn(self._place(cb))

    def resynced(self, pbx: Pbx) -> None:
        """After a PBX's (re)connect: a request whose placeholder is not waiting there (the
        PBX restarted, or ivr did) is placed again at its place."""
        waiting = {j.placeholder: j.uniqueid for j in pbx.tracker.journeys.values()
                   if j.placeholder and j.in_queue}
        now = self._now_us()
        for cb in list(self.by_id.values()):
            if cb.row.pbx != pbx.name or cb.state not in (State.WAITING, State.PLACING):
                continue
            if cb.id in waiting:
                cb.state, cb.placeholder = State.WAITING, waiting[cb.id]
            elif cb.state is State.WAITING or now - cb.placed_us > LOST_AFTER_S * 1e6:
                cb.state, cb.placeholder = State.PLACING, ""
                self._spawn(self._place(cb))

    async def restore(self, timeout: float = 5.0) -> int:
        """At start: the requests the ledger holds without a final event."""
        try:
            found = await asyncio.wait_for(self.store.run(Store.callbacks_open), timeout)
        except Exception as exc:
            log.warning("callbacks: the ledger cannot be read (%s); pending callbacks of "
                        "before this start are not made", exc)
            return 0
        self.restored = True
        retry_us = round(self.config.retry_seconds * 1e6)
        for row, events in found:
            cb = model.replay(row, events, retry_us)
            if cb.state is State.FAILED:
                self._finish(cb, State.FAILED, cb.reason)
                continue
            self.by_id[cb.id] = cb
            if cb.state is State.RETRY:
                self._later(cb, cb.next_us)
        if found:
            log.info("callbacks: %d pending restored from the ledger", len(self.by_id))
        return len(self.by_id)

    # -- views ------------------------------------------------------------------------

    def pending(self) -> list[tuple[Callback, int | None]]:
        """Pending requests, oldest first, each with its placeholder's place in its queue."""
        out = []
        for cb in sorted(self.by_id.values(), key=lambda c: (-c.row.prio, c.row.requested_us)):
            if cb.state in model.FINAL:
                continue
            out.append((cb, self._position(cb)))
        return out

    def counts(self) -> dict[tuple[str, str], int]:
        found: dict[tuple[str, str], int] = {}
        for cb in self.by_id.values():
            if cb.state not in model.FINAL:
                key = (cb.row.pbx, cb.row.queue)
                found[key] = found.get(key, 0) + 1
        return found

    def _position(self, cb: Callback) -> int | None:
        pbx = self.pbxs.get(cb.row.pbx)
        if pbx is None or not cb.placeholder:
            return None
        order = [j.uniqueid for j in pbx.tracker.in_order(cb.row.queue)]
        return order.index(cb.placeholder) + 1 if cb.placeholder in order else None

    # -- doing ------------------------------------------------------------------------------

    async def _place(self, cb: Callback) -> None:
        pbx = self.pbxs.get(cb.row.pbx)
        if pbx is None or cb.state in model.FINAL:
            return
        if not pbx.ready:                # placed after the PBX's resync (resynced)
            cb.state, cb.placed_us = State.PLACING, 0
            return
        if cb.placements >= MAX_PLACEMENTS:
            self._finish(cb, State.FAILED, f"its placeholder was lost {cb.placements} times")
            return
        cb.placements += 1
        cb.state, cb.placed_us = State.PLACING, self._now_us()
        self._event(cb, "placed", attempt=cb.placements)
        try:
            await actions.place_callback(pbx.ami, cb.exten(), cb.id, cb.row.number, cb.row.queue,
                                         cb.row.prio, cb.placements, cb.row.account, cb.area)
        except Exception as exc:
            log.warning("callback %s: placeholder not placed (%s); tried again in %.0f s",
                        cb.id, exc, LOST_AFTER_S)
        placement = cb.placements
        self._timers[f"{cb.id}:placed"] = asyncio.get_running_loop().call_later(
            LOST_AFTER_S, self._check_placed, cb, placement)

    def _check_placed(self, cb: Callback, placement: int) -> None:
        """A placeholder not in its queue LOST_AFTER_S after it was sent is sent again."""
        if cb.state is State.PLACING and cb.placements == placement and cb.id in self.by_id:
            log.warning("callback %s: placeholder %d never joined %s; placed again", cb.id,
                        placement, cb.row.queue)
            self._spawn(self._place(cb))

    async def _drop(self, pbx: Pbx, channel: str, cb_id: str, queue: str = "",
                    uniqueid: str = "") -> None:
        try:
            await actions.drop_placeholder(pbx.ami, channel, cb_id, queue, uniqueid,
                                           self.queue_log)
        except Exception as exc:
            log.warning("callback %s: placeholder %s not withdrawn: %s", cb_id, channel, exc)

    def _finish(self, cb: Callback, state: State, reason: str) -> None:
        cb.state, cb.reason = state, reason
        self._event(cb, state.value, cb.placeholder, reason)
        self.metrics.callbacks.labels(pbx=cb.row.pbx, queue=cb.row.queue, result=state.value).inc()
        log.info("callback %s for %s: %s%s", cb.id, cb.row.number, state.value,
                 f" ({reason})" if reason else "")
        for key in (cb.id, f"{cb.id}:placed"):
            if (timer := self._timers.pop(key, None)) is not None:
                timer.cancel()
        pbx = self.pbxs.get(cb.row.pbx)
        j = pbx.tracker.journeys.get(cb.placeholder) if pbx is not None and cb.placeholder else None
        if state is State.CANCELLED and pbx is not None and j is not None and j.in_queue:
            self._spawn(self._drop(pbx, j.channel, cb.id, j.queue or "", j.uniqueid))
        self.by_id.pop(cb.id, None)

    def _event(self, cb: Callback, event: str, uniqueid: str = "", reason: str = "",
               attempt: int | None = None) -> None:
        row = CallbackEvent(cb.id, self._now_us(), event,
                            cb.attempts if attempt is None else attempt, uniqueid, reason[:64])
        cb.events.append(row)
        self.ledger.keep(row)

    def _later(self, cb: Callback, at_us: int) -> None:
        delay = max(0.0, at_us / 1e6 - self.clock())
        self._timers[cb.id] = asyncio.get_running_loop().call_later(
            delay, lambda: self._spawn(self._place(cb)))

    def _pending_for(self, pbx: str, number: str, account: str = "",
                     dialing: bool = False) -> Callback | None:
        for cb in self.by_id.values():
            mine = cb.row.number == number or (account != "" and cb.row.account == account)
            if cb.row.pbx == pbx and mine and (
                    cb.pending or (dialing and cb.state is State.DIALING)):
                return cb
        return None

    def _spawn(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()

    def _now_us(self) -> int:
        return round(self.clock() * 1e6)
