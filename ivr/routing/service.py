"""Routing's service: the dialplan's entry question, known incidents with their
prompts, and repeat callers, each counted and kept in the ledger.

The HTTP handlers (http/dialplan.py, http/api/incidents.py) parse and call
these; what ivr remembers across a restart (incidents, repeat callers) comes
back from the ledger through `restore_incidents` and `restore_repeats`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Protocol

from ivr.calls.facts import Fact, JourneyEnded
from ivr.calls.journeys import Journey
from ivr.ledger.db import LedgerError, problem
from ivr.ledger.outbox import Outbox
from ivr.ledger.rows import IncidentClose, IncidentRow, RepeatCall, RouteDecision, history
from ivr.ledger.store import Store
from ivr.routing import policy, prompts, repeats
from ivr.routing.directory import Directory
from ivr.routing.incidents import Incident, Incidents

if TYPE_CHECKING:
    from ivr.ledger.offloop import OffLoop
    from ivr.ledger.writer import LedgerWriter
    from ivr.metrics.families import Metrics

log = logging.getLogger(__name__)
# A call that ended within the repeat window may have entered this much before it.
REPEAT_LOOKBACK_US = 3600 * 1_000_000


class Held(Protocol):
    """Pending callbacks, as the entry question needs them."""

    def claim(self, pbx: str, number: str, account: str = "") -> int | None: ...
    def offered(self, number: str) -> bool: ...


@dataclass(eq=False)
class Routing:
    directory: Directory
    incidents: Incidents
    repeats: repeats.Repeats
    metrics: Metrics
    ledger: LedgerWriter
    store: OffLoop
    journeys: Callable[[], Iterable[Journey]]     # every PBX's calls in progress
    prompts_dir: Path | None = None
    language: str = "en"
    clock: Callable[[], float] = time.time
    outbox: Outbox = field(default_factory=Outbox)   # the webhooks that want incident events
    callbacks: Held | None = None   # pending callbacks (callbacks/service.py), set by app.build

    # -- the dialplan's entry question ----------------------------------------

    def entry(self, pbx: str, uniqueid: str, caller: str, typed: str, asked: bool,
              started: float) -> policy.Route:
        """A new caller's route (`started`: perf_counter when the dialplan's question came).

        Each call is judged a repeat or not once, here, on its last question: the answer
        with no ask_account.  After an ask_account the dialplan always asks again
        (asked=1, `typed` empty when the caller typed nothing), so every path has one."""
        route = policy.entry(caller, typed, asked, self.directory, self.incidents,
                             self.prompt_for)
        if not route.ask_account:
            route = self.judge_repeat(pbx, uniqueid, caller, route)
            route = self.callback_place(pbx, caller, route)
        self.metrics.decided(route, time.perf_counter() - started, pbx)
        self.record_decision(pbx, uniqueid, route)
        return route

    def judge_repeat(self, pbx: str, uniqueid: str, caller: str,
                     route: policy.Route) -> policy.Route:
        """The route with the caller's place (QUEUE_PRIO by their first join); a caller
        already waiting on another line is told so instead.  Repeats are counted and kept."""
        # A callback's placeholder is no other line of the caller's: claim() below takes it.
        waiting = [j for j in self.journeys() if j.in_queue and not j.placeholder]
        verdict = self.repeats.judge(uniqueid, caller, route.account, waiting)
        if verdict.kind is not None:
            self.metrics.repeats.labels(pbx=pbx, kind=verdict.kind).inc()
            self.ledger.keep(RepeatCall(pbx, uniqueid, self._now_us(), verdict.kind,
                                        verdict.repeat_of, verdict.first_us))
            log.info("call %s from %s: a repeat (%s) of %s", uniqueid, caller or "no number",
                     verdict.kind, verdict.repeat_of)
        if verdict.kind == repeats.CONCURRENT and route.route == "first-line":
            return replace(route, route="concurrent", announce="already-waiting")
        return replace(route, prio=verdict.prio)

    def callback_place(self, pbx: str, caller: str, route: policy.Route) -> policy.Route:
        """A caller with a callback pending takes its place (the callback is cancelled:
        one of the two, never both); and whether this caller may press 1 for one."""
        if self.callbacks is None:
            return route
        held = self.callbacks.claim(pbx, caller, route.account) if caller or route.account \
            else None
        if held is not None and held > route.prio:
            route = replace(route, prio=held)    # a higher QUEUE_PRIO: the earlier place
        return replace(route, callback=self.callbacks.offered(caller))

    def record_decision(self, pbx: str, uniqueid: str, route: policy.Route) -> None:
        self.ledger.keep(RouteDecision(pbx, uniqueid, self._now_us(), route.label,
                                       route.account, route.area, route.incident))

    def repeat_ended(self, fact: Fact) -> None:
        if isinstance(fact, JourneyEnded):
            self.repeats.ended(fact.record)

    async def restore_repeats(self, timeout: float = 5.0) -> None:
        """At start: the calls that ended within the repeat window (and entered up to
        REPEAT_LOOKBACK before it) come back from the ledger, so a caller who hung up just
        before a restart is still a repeat when they call again."""
        now = self._now_us()
        window_start = now - self.repeats.window_us
        since = window_start - REPEAT_LOOKBACK_US
        try:
            records, firsts = await asyncio.wait_for(asyncio.gather(
                self.store.run(Store.ended_since, window_start, since),
                self.store.run(Store.repeat_firsts, since, now + 1)), timeout)
        except Exception as exc:    # unreachable or slow: repeats start from nothing
            log.warning("repeat callers: the ledger cannot be read (%s); calls before this "
                        "start are not seen as repeated", _why(exc))
            return
        held = self.repeats.restore(records, firsts)
        if held:
            log.info("repeat callers: %d unanswered call(s) of the last %.0f s restored from "
                     "the ledger", held, self.repeats.window_us / 1e6)

    # -- known incidents --------------------------------------------------------

    async def open_incident(self, area: object, message: object, expires_in: object,
                            by: str = "api") -> Incident:
        """Raises IncidentError (bad input) before anything is kept."""
        incident = self.incidents.open(area, message, expires_in)
        self.ledger.keep(_incident_row(incident, by))
        self._tell("incident.opened", incident, by, round(incident.started_at * 1e6))
        await self.make_incident_prompt(incident)
        log.info("incident %s opened for area %s: %s", incident.id, incident.area,
                 incident.message)
        return incident

    def close_incident(self, incident_id: str, by: str = "api") -> Incident | None:
        """The incident closed, or None if none by that id is in force."""
        incident = self.incidents.close(incident_id)
        if incident is None:
            return None
        self.forget_incident_prompt(incident)
        now = self._now_us()
        self.ledger.keep(IncidentClose(incident.id, now, by))
        self._tell("incident.closed", incident, by, now)
        log.info("incident %s closed", incident.id)
        return incident

    async def restore_incidents(self, timeout: float = 5.0) -> bool:
        """At start: incidents kept in the ledger come back into force, and those of
        routing.incidents_file go into the ledger (the file's migration).  Whether the
        ledger answered (its schema is then this code's)."""
        try:
            await asyncio.wait_for(self.store.run(Store.migrate), timeout)
            kept = [history(_incident_row(i, "incidents_file")) for i in self.incidents.active()]
            await asyncio.wait_for(self.store.run(Store.history, IncidentRow.table,
                                                  [h.row for h in kept]), timeout)
            rows = await asyncio.wait_for(self.store.run(Store.open_incidents, self._now_us()), timeout)
        except Exception as exc:    # unreachable, slow or broken: calls go on without it
            log.warning("incidents: the ledger cannot be read (%s); only those in memory or in "
                        "routing.incidents_file are in force", _why(exc))
            return False
        restored = self.incidents.restore([Incident(r.id, r.area, r.message, r.opened_us / 1e6,
                                                    r.expires_us / 1e6) for r in rows])
        if restored:
            log.info("incidents: %d in force again from the ledger", restored)
        return True

    def _tell(self, event: str, incident: Incident, by: str, at_us: int) -> None:
        """The event's webhook messages, kept by the writer in the incident's batch (and
        its spool while the database is away): a kept incident is never untold."""
        data = {k: v for k, v in incident.to_json(at_us / 1e6).items() if k != "expires_in"}
        for message in self.outbox.messages(event, {**data, "by": by}, at_us):
            self.ledger.keep(message)

    # -- their prompts ----------------------------------------------------------

    def prompt_for(self, incident: Incident) -> str:
        """The prompt the dialplan plays for `incident`: its own, or the generic one."""
        name = f"incident-{incident.id}"
        if self.prompts_dir is not None and (self.prompts_dir / f"{name}.wav").exists():
            return name
        return "known-incident"

    async def make_incident_prompt(self, incident: Incident) -> None:
        if self.prompts_dir is None:
            return
        try:
            await asyncio.to_thread(prompts.incident_prompt, self.prompts_dir, incident.id,
                                    incident.message, self.language)
        except prompts.PromptError as exc:
            log.warning("incident %s: no prompt of its own (%s); callers hear the generic one",
                        incident.id, exc)

    def forget_incident_prompt(self, incident: Incident) -> None:
        if self.prompts_dir is not None:
            prompts.remove_incident_prompt(self.prompts_dir, incident.id)

    def _now_us(self) -> int:
        return round(self.clock() * 1e6)


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, LedgerError) else problem(exc) or "timed out"


def _incident_row(incident: Incident, by: str) -> IncidentRow:
    return IncidentRow(incident.id, incident.area, incident.message,
                       round(incident.started_at * 1e6), round(incident.expires_at * 1e6), by)
