"""What the console's pages are told live (server-sent events), from ivr's own state.

A Hub is one more consumer of every PBX's facts (Services.listeners): when an agent
connects a call (JourneyAnswered), each desk page of that member gets the
caller's card.  A desk opened (or reloaded) during a call gets that call's
card at once (`current`).  The card is built here, from the tracker, the incidents, the
ledger (recent calls) and the desk (open tickets and complaints).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ivr.calls.facts import Fact, JourneyAnswered, JourneyEnded
from ivr.ledger.store import Store
from ivr.routing import policy
from ivr.app import Services

log = logging.getLogger(__name__)
RECENT_US = 7 * 86_400 * 1_000_000


class Hub:
    def __init__(self, app: Services) -> None:
        self.app = app
        self.desks: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        app.listeners.append(self.on_fact)

    def subscribe(self, member: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self.desks.setdefault(member, set()).add(queue)
        return queue

    def unsubscribe(self, member: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.desks.get(member, set()).discard(queue)

    def on_fact(self, fact: Fact) -> None:
        if isinstance(fact, JourneyAnswered) and self.desks.get(fact.member):
            task = asyncio.get_running_loop().create_task(self._send_card(fact))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(fact, JourneyEnded):
            member = fact.record.answered_member
            for queue in self.desks.get(member, ()):
                _put(queue, {"event": "ended", "uniqueid": fact.uniqueid})

    def current(self, member: str) -> JourneyAnswered | None:
        """The call that member has now (its last visit answered by them), if any."""
        found: tuple[int, JourneyAnswered] | None = None
        for pbx in self.app.pbxs.values():
            on = pbx.tracker.on_call(member)
            if on is not None and (found is None or on[0] > found[0]):
                found = on
        return found[1] if found else None

    async def _send_card(self, fact: JourneyAnswered) -> None:
        try:
            card = await self.card(fact.uniqueid, fact.member, fact.wait_ms)
        except Exception:
            log.exception("call %s: no card for %s's desk", fact.uniqueid, fact.member)
            return
        for queue in self.desks.get(fact.member, ()):
            _put(queue, {"event": "answered", **card})

    async def card(self, uniqueid: str, member: str, wait_ms: int) -> dict[str, Any]:
        app = self.app
        found = app.calls.find(uniqueid)
        journey = found[0][1] if found else None
        caller = journey.caller if journey else ""
        account = journey.account if journey else ""
        area = journey.area if journey else ""
        incident = app.incidents.covering(area or None)
        route = app.calls.escalation(area or None)
        now_us = round(app.clock() * 1e6)
        # How long the call has been with the operator, for the desk's timer (the page
        # counts on from here by its own clock, whatever the browser's clock says).
        answer = journey.current_answer if journey else None
        answered_us = answer.left_us if answer is not None and answer.left_us is not None else now_us
        recent: list[dict[str, Any]] = []
        if caller or account:
            try:
                calls = await app.store.run(Store.calls, now_us - RECENT_US, now_us, caller=caller or None,
                                              account=None if caller else account, limit=20)
            except Exception as exc:      # the ledger away: the card without history
                log.warning("call %s: no recent calls on the card: %s", uniqueid, exc)
                calls = []
            # A call that was not answered is one the caller may be redialling after.
            # The wait: to the answer, or for a call nobody answered, to its end.
            recent = [{"uniqueid": r.uniqueid, "at": r.entered_us // 1_000_000,
                       "outcome": r.outcome, "repeat": r.outcome != "answered",
                       "wait_ms": max(0, ((r.answered_us or r.ended_us) - r.entered_us) // 1000)}
                      for r in calls[-10:]]
        items = [i for i in app.desk.items.values() if account and i.data.get("account") == account
                 and i.state not in ("resolved", "closed", "answered")]
        return {"uniqueid": uniqueid, "member": member, "caller": caller, "account": account,
                "area": area, "wait_ms": wait_ms, "on_call_ms": max(0, (now_us - answered_us) // 1000),
                "incident": {"id": incident.id, "message": incident.message} if incident else None,
                "can_escalate": route.route == policy.ENGINEERS,
                "recent": recent, "repeats": sum(1 for r in recent if r["repeat"]),
                "open": [{"number": i.number, "kind": i.kind, "state": i.state} for i in items]}


def _put(queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    try:
        queue.put_nowait(event)
    except asyncio.QueueFull:       # a page that stopped reading: it reconnects and catches up
        pass
