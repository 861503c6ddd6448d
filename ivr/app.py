"""Wiring: the whole object graph, in one function.

One AMI event, from the socket to a metric:
    AmiClient (bytes -> Codec, which skips noise undecoded: events.wanted -> Message)
    -> App.on_event
    -> events.parse (typed event, Asterisk timestamp)
    -> Tracker.handle (journey state machine) -> facts
    -> Metrics.record (counters, histograms), Router.on_fact (timers) and
       LedgerWriter.on_fact (JourneyEnded's CallRecord -> batched into the store)
Live gauges are read from the Tracker at scrape time by LiveCollector.
The dialplan asks for routes over HTTP (dialplan_http.py); people use the
control API (api.py); both decide with policy.py and act with actions.py.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from prometheus_client import CollectorRegistry

from ivr import actions, prompts
from ivr.ami import events, server_filter
from ivr.ami.client import AmiClient, AmiError, AmiSettings
from ivr.ami.recording import Recorder
from ivr.ami.codec import Message
from ivr.config import Config
from ivr.directory import Directory
from ivr.incidents import Incident, Incidents
from ivr.journeys import Fact, Tracker
from ivr.ledger.offloop import OffLoop
from ivr.ledger.store import INCIDENT_CLOSES, LedgerError, Store, problem
from ivr.ledger.writer import History, LedgerWriter, Spool
from ivr.metrics import LiveCollector, Metrics
from ivr.policy import OverflowRule, Rules
from ivr.router import Router

log = logging.getLogger(__name__)


@dataclass
class App:
    config: Config
    registry: CollectorRegistry
    tracker: Tracker
    metrics: Metrics
    directory: Directory = field(default_factory=Directory.empty)
    incidents: Incidents = field(default_factory=Incidents)
    prompts_dir: Path | None = None
    clock: Callable[[], float] = time.time
    router: Router = field(init=False)
    ami: AmiClient = field(init=False)
    store: OffLoop = field(init=False)
    ledger: LedgerWriter = field(init=False)
    ready: bool = False
    timestamps: bool = True     # every event of this connection so far had Asterisk's Timestamp
    event_filter: str = "off"   # this connection's: advanced, regex, off, or why none
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # Every consumer of facts (metrics, router, ledger, then any a test adds), each isolated.
    listeners: list[Callable[[Fact], None]] = field(default_factory=list)

    def on_event(self, msg: Message) -> None:
        try:
            event, timed = events.parse_timed(msg, self.clock())
        except (KeyError, ValueError) as exc:
            log.warning("skipping %s event: %s", msg.event, exc)
            return
        if event is None:
            return
        if not timed:
            self._untimestamped(msg)
        self.apply(self.tracker.handle(event, timed))

    def _untimestamped(self, msg: Message) -> None:
        self.metrics.untimestamped.inc()
        if self.timestamps:
            self.timestamps = False     # until the next login
            log.warning("AMI %s sends events without Timestamp (%s, for one): manager.conf "
                        "has timestampevents = no, so waits are timed when ivr reads them and "
                        "kept within 1 s of Asterisk's HoldTime; set timestampevents = yes",
                        f"{self.config.ami.host}:{self.config.ami.port}", msg.event)

    def apply(self, facts: list[Fact]) -> None:
        for fact in facts:
            for listener in self.listeners:
                try:
                    listener(fact)
                except Exception:   # one broken consumer must not starve the others
                    log.exception("call %s: %s failed on %s", fact.uniqueid,
                                  getattr(listener, "__qualname__", listener), type(fact).__name__)

    # -- history for the ledger ----------------------------------------------

    def record_decision(self, uniqueid: str, route: str, account: str = "", area: str = "",
                        incident: str = "") -> None:
        self.ledger.submit(History("route_decisions", {
            "pbx": self.tracker.pbx, "uniqueid": uniqueid, "at_us": round(self.clock() * 1e6),
            "route": route, "account": account, "area": area, "incident": incident}))

    def incident_opened(self, incident: Incident, by: str = "api") -> None:
        self.ledger.submit(History("incidents", _incident_row(incident, by)))

    def incident_closed(self, incident: Incident, by: str = "api") -> None:
        self.ledger.submit(History(INCIDENT_CLOSES, {
            "id": incident.id, "closed_us": round(self.clock() * 1e6), "closed_by": by}))

    async def restore_incidents(self, timeout: float = 5.0) -> None:
        """At start: incidents kept in the ledger come back into force, and those of
        routing.incidents_file go into the ledger (the file's migration)."""
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
            return
        restored = self.incidents.restore([Incident(r["id"], r["area"], r["message"],
                                                    r["opened_us"] / 1e6, r["expires_us"] / 1e6)
                                           for r in rows])
        if restored:
            log.info("incidents: %d in force again from the ledger", restored)

    def escalated(self, uniqueid: str, via: str, result: str, incident: str = "") -> None:
        """An escalation decided (via api or transfer): counted, kept, and told to queue_log."""
        self.metrics.escalated(result)
        self.ledger.submit(History("escalations", {
            "pbx": self.tracker.pbx, "uniqueid": uniqueid, "at_us": round(self.clock() * 1e6),
            "via": via, "result": result, "incident": incident}))
        if self.config.ledger.queue_log_decisions:
            j = self.tracker.journeys.get(uniqueid)
            queue = j.last_exit[0] if j is not None and j.last_exit else "NONE"
            task = asyncio.get_running_loop().create_task(actions.log_decision(
                self.ami, queue, uniqueid, actions.QUEUE_LOG_ESCALATE, f"{result}|{via}"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def resync(self, ami: AmiClient) -> None:
        """After every login: take a fresh snapshot instead of trusting memory."""
        self.ready = False
        self.timestamps = True
        await self.install_filter(ami)
        taken_at = self.clock()
        status = await ami.action_list("QueueStatus")
        channels = await ami.action_list("CoreShowChannels")
        self.apply(self.tracker.resync(events.snapshot(status, channels, taken_at)))
        self.ready = True
        log.info("resynced: %d callers waiting, %d queue members",
                 sum(map(len, self.tracker.waiting_by_queue().values())),
                 len(self.tracker.members))

    async def install_filter(self, ami: AmiClient) -> None:
        """Ask Asterisk to send only what ivr follows, for this session (server_filter.py).
        Include filters drop everything else: a set only partly installed would lose
        events, so a failure after the first rule opens the session to all again."""
        if not self.config.ami.server_filter:
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
            log.info("AMI: Asterisk %s filters events for ivr (%s filters, %d rules)",
                     version or "of unknown version", kind, 1 + len(rest))
        self.event_filter = kind

    def _no_filter(self, why: str) -> None:
        if self.event_filter != why:
            log.warning("AMI: no server-side event filter (%s): Asterisk sends every event. "
                        "Give the AMI user write = system, or its eventfilter lines "
                        "(deploy/asterisk/manager_ivr.conf)", why.removeprefix("none: "))
        self.event_filter = why

    def on_ami_state(self, up: bool) -> None:
        if not up:
            self.ready = False

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
                                    incident.message)
        except prompts.PromptError as exc:
            log.warning("incident %s: no prompt of its own (%s); callers hear the generic one",
                        incident.id, exc)

    def forget_incident_prompt(self, incident: Incident) -> None:
        if self.prompts_dir is not None:
            prompts.remove_incident_prompt(self.prompts_dir, incident.id)

    def queues_view(self) -> dict[str, Any]:
        now_us = round(self.clock() * 1_000_000)
        view: dict[str, Any] = {}
        by_queue = self.tracker.waiting_by_queue()
        for q in self.config.queue_names:
            waiting = [{"uniqueid": j.uniqueid, "caller": j.caller, "account": j.account,
                        "area": j.area, "wait_seconds": round((now_us - j.visit.entered_us) / 1e6, 3)}
                       for j in by_queue.get(q, []) if j.visit is not None]
            agents = [{"name": name, "state": m.state}
                      for (queue, name), m in sorted(self.tracker.members.items()) if queue == q]
            view[q] = {"waiting": waiting, "agents": agents}
        return view

    def call_view(self, uniqueid: str) -> dict[str, Any] | None:
        j = self.tracker.journeys.get(uniqueid)
        if j is None:
            return None
        return {"uniqueid": j.uniqueid, "caller": j.caller, "account": j.account, "area": j.area,
                "path": list(j.path), "answered": j.answered,
                "queue": j.visit.queue if j.visit else None}


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
    """The whole object graph.  Raises DirectoryError/IncidentError for bad files.
    `recorder` keeps the raw AMI stream (`ivr run --record-ami`)."""
    r = config.routing
    directory = Directory.load(Path(r.directory)) if r.directory else Directory.empty()
    incidents = Incidents(clock, Path(r.incidents_file) if r.incidents_file else None)
    registry = CollectorRegistry()
    names = config.queue_names
    thresholds = {q.name: round(q.sla_seconds * 1000) for q in config.queues}
    tracker = Tracker(thresholds)
    rules = overflow_rules(config)
    metrics = Metrics(registry, names, [q.sla_seconds for q in config.queues],
                      [(r.from_queue, r.to_queue) for r in rules.values()])
    app = App(config, registry, tracker, metrics, directory, incidents,
              Path(r.prompts_dir) if r.prompts_dir else None, clock)
    a = config.ami
    app.ami = AmiClient(
        AmiSettings(a.host, a.port, a.username, a.secret,
                    ping_interval=a.ping_interval, ping_timeout=a.ping_timeout, trace=a.trace),
        on_event=app.on_event, on_login=app.resync, on_state=app.on_ami_state,
        keep=events.wanted, recorder=recorder)
    decisions = config.ledger.queue_log_decisions
    app.router = Router(tracker, rules,
                        functools.partial(actions.move, app.ami, queue_log=decisions), clock)
    app.store = OffLoop(Store(config.ledger_url(), tracker.first_line))
    app.ledger = LedgerWriter(app.store, Spool(config.spool_path(), config.ledger.spool_max_records))
    app.listeners[:0] = [metrics.record, app.router.on_fact, app.ledger.on_fact]
    registry.register(LiveCollector(tracker, app.ami, names, clock, incidents, app.ledger))
    return app
