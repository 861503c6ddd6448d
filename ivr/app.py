"""Wiring: the whole object graph, in one function.

One AMI event, from the socket to a metric (each PBX of the config is a Pbx
with its own client, tracker and router; Asterisk sends only what ivr follows
when the session filter is on: ami/server_filter.py):
    AmiClient (bytes -> Codec, which skips noise undecoded: events.wanted -> Message)
    -> Pbx.on_event
    -> events.parse_timed (typed event, Asterisk timestamp, or none)
    -> Tracker.handle (journey state machine) -> facts
    -> App.apply: Metrics.record with the PBX's name (counters, histograms),
       Router.on_fact (timers) and LedgerWriter.on_fact (JourneyEnded's
       CallRecord -> batched into the store)
Live gauges are read from the trackers at scrape time by LiveCollector.
The dialplan asks for routes over HTTP (dialplan_http.py); people use the
control API (api.py); both decide with policy.py and act with actions.py.
A call's entry is also judged for repeats (repeats.py: its QUEUE_PRIO).
The service desk (desk/: tickets, complaints, claims, the registry) is
served by the same two: desk/api.py for people, dialplan_http.py for callers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from prometheus_client import CollectorRegistry

from ivr.pbx import actions
from ivr.routing import policy, prompts, repeats
from ivr.config import tokens as roles
from ivr.ami import events, server_filter
from ivr.ami.client import AmiClient, AmiSettings
from ivr.ami.errors import AmiError
from ivr.ami.recording import Recorder
from ivr.ami.codec import Message
from ivr.config import AmiConfig, Config
from ivr.metrics.desk import DeskMetrics
from ivr.desk.service import Desk
from ivr.routing.directory import Directory
from ivr.routing.incidents import Incident, Incidents
from ivr.calls.journeys import FIRST_LINE, Fact, Journey, JourneyEnded, Tracker
from ivr.ledger.offloop import OffLoop
from ivr.calls.records import CallRecord
from ivr.ledger.store import INCIDENT_CLOSES, LedgerError, Store, problem
from ivr.ledger.writer import History, LedgerWriter, Spool
from ivr.metrics.families import Metrics
from ivr.metrics.live import LiveCollector
from ivr.routing.policy import OverflowRule, Rules
from ivr.routing.router import Router

log = logging.getLogger(__name__)
# A call that ended within the repeat window may have entered this much before it.
REPEAT_LOOKBACK_US = 3600 * 1_000_000


@dataclass(eq=False)
class Pbx:
    """One PBX ivr follows: its AMI session, its callers (tracker) and timers (router).

    Each has its own connection, resync and state: a reconnect of one never
    touches another's callers.  Its facts go to the app's consumers with its
    name (metrics label them, records carry it as `pbx`)."""

    name: str
    config: AmiConfig
    tracker: Tracker
    app: App = field(repr=False)
    ami: AmiClient = field(init=False)
    router: Router = field(init=False)
    ready: bool = False
    timestamps: bool = True     # every event of this connection so far had Asterisk's Timestamp
    event_filter: str = "off"   # this connection's: advanced, regex, off, or why none
    # This PBX's own consumers of its facts (metrics with its name, its router, the ledger).
    consumers: list[Callable[[Fact], None]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def on_event(self, msg: Message) -> None:
        try:
            event, timed = events.parse_timed(msg, self.app.clock())
        except (KeyError, ValueError) as exc:
            log.warning("pbx %s: skipping %s event: %s", self.name, msg.event, exc)
            return
        if event is None:
            return
        if not timed:
            self._untimestamped(msg)
        self.app.apply(self.tracker.handle(event, timed), self)

    def _untimestamped(self, msg: Message) -> None:
        self.app.metrics.untimestamped.labels(pbx=self.name).inc()
        if self.timestamps:
            self.timestamps = False     # until the next login
            log.warning("AMI %s (pbx %s) sends events without Timestamp (%s, for one): "
                        "manager.conf has timestampevents = no, so waits are timed when ivr "
                        "reads them and kept within 1 s of Asterisk's HoldTime; set "
                        "timestampevents = yes", self.address, self.name, msg.event)

    async def resync(self, ami: AmiClient) -> None:
        """After every login: take a fresh snapshot instead of trusting memory."""
        self.ready = False
        self.timestamps = True
        await self.install_filter(ami)
        taken_at = self.app.clock()
        status = await ami.action_list("QueueStatus")
        channels = await ami.action_list("CoreShowChannels")
        self.app.apply(self.tracker.resync(events.snapshot(status, channels, taken_at)), self)
        self.ready = True
        log.info("pbx %s resynced: %d callers waiting, %d queue members", self.name,
                 sum(map(len, self.tracker.waiting_by_queue().values())),
                 len(self.tracker.members))

    async def install_filter(self, ami: AmiClient) -> None:
        """Ask Asterisk to send only what ivr follows, for this session (server_filter.py).
        Include filters drop everything else: a set only partly installed would lose
        events, so a failure after the first rule opens the session to all again."""
        if not self.config.server_filter:
            self.event_filter = "off"
            return
        try:
            version = (await ami.action("CoreSettings")).get("AsteriskVersion") or ""
        except AmiError:     # no permission for it: the regex filters work since Asterisk 10
            version = ""
        kind = server_filter.dialect(version)
        first, *rest = server_filter.rules(kind)
        try:
            await ami.action("Filter", first.fields())
        except AmiError as exc:
            self._no_filter(f"none: Filter refused ({exc})")
            return
        try:
            await asyncio.gather(*(ami.action("Filter", r.fields()) for r in rest))
        except AmiError as exc:
            await ami.action("Filter", server_filter.Rule(None, ".").fields())   # all again
            self._no_filter(f"none: a Filter rule refused ({exc})")
            return
        if self.event_filter != kind:
            log.info("AMI (pbx %s): Asterisk %s filters events for ivr (%s filters, %d rules)",
                     self.name, version or "of unknown version", kind, 1 + len(rest))
        self.event_filter = kind

    def _no_filter(self, why: str) -> None:
        if self.event_filter != why:
            log.warning("AMI (pbx %s): no server-side event filter (%s): Asterisk sends every "
                        "event. Give the AMI user write = system, or its eventfilter lines "
                        "(deploy/asterisk/manager_ivr.conf)", self.name, why.removeprefix("none: "))
        self.event_filter = why

    def on_ami_state(self, up: bool) -> None:
        if not up:
            self.ready = False


@dataclass
class App:
    config: Config
    registry: CollectorRegistry
    metrics: Metrics
    directory: Directory = field(default_factory=Directory.empty)
    incidents: Incidents = field(default_factory=Incidents)
    prompts_dir: Path | None = None
    clock: Callable[[], float] = time.time
    store: OffLoop = field(init=False)
    ledger: LedgerWriter = field(init=False)
    desk: Desk = field(init=False)
    tokens: roles.Tokens = field(default_factory=roles.Tokens)
    warned: set[tuple[str, str]] = field(default_factory=set)   # (pbx, uniqueid) warned for abuse
    repeats: repeats.Repeats = field(init=False)
    pbxs: dict[str, Pbx] = field(default_factory=dict)     # by name, in the config's order
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # Consumers of every PBX's facts that a test or a tool adds, after each PBX's own.
    listeners: list[Callable[[Fact], None]] = field(default_factory=list)

    # The first PBX's, for code and tests that follow one PBX.
    @property
    def first(self) -> Pbx:
        return next(iter(self.pbxs.values()))

    @property
    def tracker(self) -> Tracker:
        return self.first.tracker

    @property
    def ami(self) -> AmiClient:
        return self.first.ami

    @property
    def router(self) -> Router:
        return self.first.router

    @property
    def ready(self) -> bool:
        """Every PBX logged in and resynced."""
        return all(p.ready for p in self.pbxs.values())

    @property
    def timestamps(self) -> bool:
        return all(p.timestamps for p in self.pbxs.values())

    @property
    def event_filter(self) -> str:
        return self.first.event_filter

    def pbx(self, name: str | None) -> Pbx | None:
        """The PBX named so; None names the first (a dialplan that does not say)."""
        return self.first if name is None else self.pbxs.get(name)

    def find_call(self, uniqueid: str, pbx: str | None = None) -> list[tuple[Pbx, Journey]]:
        """Where a call in progress is: on the PBX named, or on any (Uniqueids of
        PBXs without a SystemName can collide: then there may be several)."""
        where = [self.pbxs[pbx]] if pbx in self.pbxs else [] if pbx else self.pbxs.values()
        return [(p, j) for p in where if (j := p.tracker.journeys.get(uniqueid)) is not None]

    def live_call(self, uniqueid: str) -> CallRecord | None:
        """A call in progress on exactly one PBX, as its record would be now."""
        found = self.find_call(uniqueid)
        if len(found) != 1:
            return None
        return found[0][0].tracker.record_of(uniqueid, int(self.clock() * 1e6))

    async def load_desk(self, retry: float = 5.0) -> None:
        """Read the registry into the desk; until the ledger answers, try again."""
        while True:
            try:
                await self.desk.load()
                return
            except LedgerError as exc:
                log.warning("service desk: cannot read the registry (%s); retrying in %.0f s",
                            exc, retry)
                await asyncio.sleep(retry)

    def apply(self, facts: list[Fact], pbx: Pbx | None = None) -> None:
        if not facts:
            return
        pbx = pbx or self.first
        consumers = pbx.consumers + self.listeners
        for fact in facts:
            if self.warned and isinstance(fact, JourneyEnded):
                self.warned.discard((pbx.name, fact.uniqueid))
            for listener in consumers:
                try:
                    listener(fact)
                except Exception:   # one broken consumer must not starve the others
                    log.exception("call %s: %s failed on %s", fact.uniqueid,
                                  getattr(listener, "__qualname__", listener), type(fact).__name__)

    # -- history for the ledger ----------------------------------------------

    def judge_repeat(self, pbx: Pbx, uniqueid: str, caller: str, route: policy.Route) -> policy.Route:
        """The route with the caller's place (QUEUE_PRIO by their first join); a caller
        already waiting on another line is told so instead.  Repeats are counted and kept."""
        waiting = [j for p in self.pbxs.values() for j in p.tracker.journeys.values()
                   if j.visit is not None]
        verdict = self.repeats.judge(uniqueid, caller, route.account, waiting)
        if verdict.kind is not None:
            self.metrics.repeats.labels(pbx=pbx.name, kind=verdict.kind).inc()
            self.ledger.submit(History("repeats", {
                "pbx": pbx.name, "uniqueid": uniqueid, "at_us": round(self.clock() * 1e6),
                "kind": verdict.kind, "repeat_of": verdict.repeat_of,
                "first_us": verdict.first_us}))
            log.info("call %s from %s: a repeat (%s) of %s", uniqueid, caller or "no number",
                     verdict.kind, verdict.repeat_of)
        if verdict.kind == repeats.CONCURRENT and route.route == "first-line":
            return replace(route, route="concurrent", announce="already-waiting")
        return replace(route, prio=verdict.prio)

    async def restore_repeats(self, timeout: float = 5.0) -> None:
        """At start: the calls that ended within the repeat window (and entered up to
        REPEAT_LOOKBACK before it) come back from the ledger, so a caller who hung up just
        before a restart is still a repeat when they call again."""
        now = round(self.clock() * 1e6)
        window_start = now - self.repeats.window_us
        since = window_start - REPEAT_LOOKBACK_US
        try:
            records, firsts = await asyncio.wait_for(asyncio.gather(
                self.store.ended_since(window_start, since),
                self.store.repeat_firsts(since, now + 1)), timeout)
        except Exception as exc:    # unreachable or slow: repeats start from nothing
            reason = str(exc) if isinstance(exc, LedgerError) else problem(exc) or "timed out"
            log.warning("repeat callers: the ledger cannot be read (%s); calls before this "
                        "start are not seen as repeated", reason)
            return
        held = self.repeats.restore(records, firsts)
        if held:
            log.info("repeat callers: %d unanswered call(s) of the last %.0f s restored from "
                     "the ledger", held, self.repeats.window_us / 1e6)

    def repeat_ended(self, fact: Fact) -> None:
        if isinstance(fact, JourneyEnded):
            self.repeats.ended(fact.record)

    def record_decision(self, uniqueid: str, route: str, account: str = "", area: str = "",
                        incident: str = "", pbx: str | None = None) -> None:
        self.ledger.submit(History("route_decisions", {
            "pbx": pbx or self.first.name, "uniqueid": uniqueid,
            "at_us": round(self.clock() * 1e6),
            "route": route, "account": account, "area": area, "incident": incident}))

    def incident_opened(self, incident: Incident, by: str = "api") -> None:
        self.ledger.submit(History("incidents", _incident_row(incident, by)))

    def incident_closed(self, incident: Incident, by: str = "api") -> None:
        self.ledger.submit(History(INCIDENT_CLOSES, {
            "id": incident.id, "closed_us": round(self.clock() * 1e6), "closed_by": by}))

    async def restore_incidents(self, timeout: float = 5.0) -> bool:
        """At start: incidents kept in the ledger come back into force, and those of
        routing.incidents_file go into the ledger (the file's migration).  Whether the
        ledger answered (its schema is then this code's)."""
        try:
            await asyncio.wait_for(self.store.migrate(), timeout)
            await asyncio.wait_for(self.store.history(
                "incidents", [_incident_row(i, "incidents_file") for i in self.incidents.active()]),
                timeout)
            rows = await asyncio.wait_for(self.store.open_incidents(round(self.clock() * 1e6)), timeout)
        except Exception as exc:    # unreachable, slow or broken: calls go on without it
            reason = str(exc) if isinstance(exc, LedgerError) else problem(exc) or "timed out"
            log.warning("incidents: the ledger cannot be read (%s); only those in memory or in "
                        "routing.incidents_file are in force", reason)
            return False
        restored = self.incidents.restore([Incident(r["id"], r["area"], r["message"],
                                                    r["opened_us"] / 1e6, r["expires_us"] / 1e6)
                                           for r in rows])
        if restored:
            log.info("incidents: %d in force again from the ledger", restored)
        return True

    def escalated(self, uniqueid: str, via: str, result: str, incident: str = "",
                  pbx: Pbx | None = None) -> None:
        """An escalation decided (via api or transfer): counted, kept, and told to queue_log."""
        pbx = pbx or self.first
        self.metrics.escalated(result, pbx.name)
        self.ledger.submit(History("escalations", {
            "pbx": pbx.name, "uniqueid": uniqueid, "at_us": round(self.clock() * 1e6),
            "via": via, "result": result, "incident": incident}))
        if self.config.ledger.queue_log_decisions:
            j = pbx.tracker.journeys.get(uniqueid)
            queue = j.last_exit[0] if j is not None and j.last_exit else "NONE"
            task = asyncio.get_running_loop().create_task(actions.log_decision(
                pbx.ami, queue, uniqueid, actions.QUEUE_LOG_ESCALATE, f"{result}|{via}"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def operator_action(self, pbx: Pbx, uniqueid: str, action: str, value: str,
                        actor: roles.Actor) -> None:
        """A warning, an end for abuse, or a disposition: counted and kept in the ledger."""
        if action == "warn":
            self.warned.add((pbx.name, uniqueid))
        self.metrics.operator_actions.labels(pbx=pbx.name, action=action).inc()
        self.ledger.submit(History("operator_actions", {
            "pbx": pbx.name, "uniqueid": uniqueid, "at_us": round(self.clock() * 1e6),
            "action": action, "value": value, "actor_role": actor.role, "actor": actor.name}))
        log.info("call %s: %s %s by %s %s", uniqueid, action, value, actor.role, actor.name)

    # -- routing helpers for the HTTP side -----------------------------------

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
                                    incident.message, self.config.prompts.language)
        except prompts.PromptError as exc:
            log.warning("incident %s: no prompt of its own (%s); callers hear the generic one",
                        incident.id, exc)

    def forget_incident_prompt(self, incident: Incident) -> None:
        if self.prompts_dir is not None:
            prompts.remove_incident_prompt(self.prompts_dir, incident.id)

    def queues_view(self) -> dict[str, Any]:
        """Each queue's threshold, waiting callers and agents, of every PBX (each entry
        names its pbx)."""
        now_us = round(self.clock() * 1_000_000)
        view: dict[str, Any] = {q.name: {"threshold_seconds": q.sla_seconds, "waiting": [],
                                         "agents": []} for q in self.config.queues}
        for pbx in self.pbxs.values():
            by_queue = pbx.tracker.waiting_by_queue()
            for q in self.config.queue_names:
                view[q]["waiting"] += [
                    {"pbx": pbx.name, "uniqueid": j.uniqueid, "caller": j.caller,
                     "account": j.account, "area": j.area,
                     "wait_seconds": round((now_us - j.visit.entered_us) / 1e6, 3)}
                    for j in by_queue.get(q, []) if j.visit is not None]
                view[q]["agents"] += [{"pbx": pbx.name, "name": name, "state": m.state}
                                      for (queue, name), m in sorted(pbx.tracker.members.items())
                                      if queue == q]
        return view

    def call_view(self, uniqueid: str, pbx: str | None = None) -> dict[str, Any] | None:
        found = self.find_call(uniqueid, pbx)
        if not found:
            return None
        where, j = found[0]
        return {"pbx": where.name, "uniqueid": j.uniqueid, "caller": j.caller,
                "account": j.account, "area": j.area, "path": list(j.path),
                "answered": j.answered, "queue": j.visit.queue if j.visit else None}


def _incident_row(incident: Incident, by: str) -> dict[str, Any]:
    return {"id": incident.id, "area": incident.area, "message": incident.message,
            "opened_us": round(incident.started_at * 1e6),
            "expires_us": round(incident.expires_at * 1e6), "closed_us": None,
            "opened_by": by, "closed_by": None}


def overflow_rules(config: Config) -> Rules:
    return {q.name: OverflowRule(q.name, q.overflow_to, round(q.overflow_after_seconds * 1000))
            for q in config.queues
            if q.overflow_to is not None and q.overflow_after_seconds is not None}


def build(config: Config, clock: Callable[[], float] = time.time,
          recorder: Recorder | None = None) -> App:
    """The whole object graph.  Raises DirectoryError/IncidentError/TokensError for bad files.
    `recorder` keeps the raw AMI stream (`ivr run --record-ami`) of the first PBX."""
    r = config.routing
    directory = Directory.load(Path(r.directory)) if r.directory else Directory.empty()
    incidents = Incidents(clock, Path(r.incidents_file) if r.incidents_file else None)
    registry = CollectorRegistry()
    names = config.queue_names
    thresholds = {q.name: round(q.sla_seconds * 1000) for q in config.queues}
    rules = overflow_rules(config)
    metrics = Metrics(registry, names, [q.sla_seconds for q in config.queues],
                      [(r.from_queue, r.to_queue) for r in rules.values()],
                      [p.name for p in config.pbxs])
    app = App(config, registry, metrics, directory, incidents,
              Path(r.prompts_dir) if r.prompts_dir else None, clock)
    app.store = OffLoop(Store(config.ledger_url(), FIRST_LINE))
    app.ledger = LedgerWriter(app.store, Spool(config.spool_path(), config.ledger.spool_max_records))
    app.tokens = roles.load(config.api.tokens_file or None, config.api.token)
    app.desk = Desk(app.store, directory, incidents, config.desk, clock)
    app.repeats = repeats.Repeats(config.routing.repeat_window_seconds, clock)
    DeskMetrics(registry, app.desk)
    decisions = config.ledger.queue_log_decisions
    for i, p in enumerate(config.pbxs):
        pbx = app.pbxs[p.name] = Pbx(p.name, p.ami, Tracker(thresholds, pbx=p.name), app)
        a = p.ami
        pbx.ami = AmiClient(
            AmiSettings(a.host, a.port, a.username, a.secret, ping_interval=a.ping_interval,
                        ping_timeout=a.ping_timeout, trace=a.trace),
            on_event=pbx.on_event, on_login=pbx.resync, on_state=pbx.on_ami_state,
            keep=events.wanted, recorder=recorder if i == 0 else None)
        pbx.router = Router(pbx.tracker, rules,
                            functools.partial(actions.move, pbx.ami, queue_log=decisions), clock)
        pbx.consumers = [metrics.recorder(p.name), pbx.router.on_fact, app.ledger.on_fact,
                         app.repeat_ended]
    registry.register(LiveCollector(list(app.pbxs.values()), names, clock, incidents, app.ledger))
    return app
