"""What the API and the console show of calls in progress: plain JSON-ready dicts
built from the trackers, nothing kept."""

from __future__ import annotations

from typing import Any, Iterable, Protocol

from ivr.calls.journeys import Journey
from ivr.calls.tracker import Tracker
from ivr.config import Config


class Followed(Protocol):
    """A PBX as the views read it."""
    @property
    def name(self) -> str: ...
    @property
    def tracker(self) -> Tracker: ...


def queues(config: Config, pbxs: Iterable[Followed], now: float) -> dict[str, Any]:
    """Each queue's threshold, waiting callers (in the order Asterisk serves them; a
    callback's placeholder marked `callback`) and agents with their states and the
    seconds in it, of every PBX (each entry names its pbx)."""
    view: dict[str, Any] = {q.name: {"threshold_seconds": q.sla_seconds, "waiting": [],
                                     "agents": []} for q in config.queues}
    now_us = round(now * 1_000_000)
    for pbx in pbxs:
        for q in config.queue_names:
            view[q]["waiting"] += waiting(pbx.name, pbx.tracker.in_order(q), now_us)
            view[q]["agents"] += agents(pbx, q, now_us)
    return view


def agents(pbx: Followed, queue: str, now_us: int) -> list[dict[str, Any]]:
    """The members of `queue` on `pbx`: each one's state and how long it is in it
    (state_seconds, from the PBX's time of the change; None if not known)."""
    since = pbx.tracker.since
    return [{"pbx": pbx.name, "name": name, "state": m.state,
             "state_seconds": (round(max(now_us - since[(q, name)], 0) / 1e6, 3)
                               if (q, name) in since else None)}
            for (q, name), m in sorted(pbx.tracker.members.items()) if q == queue]


def waiting(pbx: str, journeys: Iterable[Journey], now_us: int) -> list[dict[str, Any]]:
    return [{"pbx": pbx, "uniqueid": j.uniqueid, "caller": j.caller,
             "account": j.account, "area": j.area,
             "wait_seconds": round(j.queue_wait_us(now_us) / 1e6, 3),
             "callback": bool(j.placeholder)}
            for j in journeys]


def call(pbx: Followed, j: Journey) -> dict[str, Any]:
    return {"pbx": pbx.name, "uniqueid": j.uniqueid, "caller": j.caller,
            "account": j.account, "area": j.area, "path": list(j.path),
            "answered": j.answered, "queue": j.queue}
