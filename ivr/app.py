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
The dialplan asks for routes over HTTP (http/dialplan.py); people use the
control API (http/api/) and the console.  Their handlers only parse and call
the services wired here: routing/service.py (the entry question, repeats,
incidents), calls/service.py (the actions on a call, the dialplan's
escalation too), desk/service.py (tickets, complaints, claims, the registry);
these decide with routing/policy.py and act with pbx/actions.py.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from prometheus_client import CollectorRegistry

from ivr.pbx import actions
from ivr.routing import repeats
from ivr.config import tokens as roles
from ivr.ami import events, server_filter
from ivr.ami.client import AmiClient, AmiError, AmiSettings
from ivr.ami.recording import Recorder
from ivr.ami.codec import Message
from ivr.calls.service import Calls
from ivr.config import AmiConfig, Config, PbxConfig
from ivr.metrics.desk import DeskMetrics
from ivr.desk.service import Desk
from ivr.routing.directory import Directory
from ivr.routing.incidents import Incidents
from ivr.routing.service import Routing
from ivr.calls.journeys import FIRST_LINE, Fact, Tracker
from ivr.ledger.offloop import OffLoop
from ivr.ledger.store import Store
from ivr.ledger.writer import LedgerWriter, Spool
from ivr.metrics.families import LiveCollector, Metrics
from ivr.routing.policy import OverflowRule, Rules
from ivr.routing.router import Router

log = logging.getLogger(__name__)


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


@dataclass(frozen=True, eq=False)
class App:
    """The services container: what build() wired, and nothing it does itself but hand
    each PBX's facts to their consumers (apply).  The actions on calls are calls.service's,
    routing's and incidents' routing.service's, views calls.views'."""
    config: Config
    registry: CollectorRegistry
    metrics: Metrics
    directory: Directory
    incidents: Incidents
    store: OffLoop
    ledger: LedgerWriter
    desk: Desk
    tokens: roles.Tokens
    calls: Calls
    routing: Routing
    clock: Callable[[], float] = time.time
    pbxs: dict[str, Pbx] = field(default_factory=dict)     # by name, in the config's order
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

    def apply(self, facts: list[Fact], pbx: Pbx | None = None) -> None:
        if not facts:
            return
        pbx = pbx or self.first
        consumers = pbx.consumers + self.listeners
        for fact in facts:
            for listener in consumers:
                try:
                    listener(fact)
                except Exception:   # one broken consumer must not starve the others
                    log.exception("call %s: %s failed on %s", fact.uniqueid,
                                  getattr(listener, "__qualname__", listener), type(fact).__name__)


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
    rules = overflow_rules(config)
    metrics = Metrics(registry, names, [q.sla_seconds for q in config.queues],
                      [(r.from_queue, r.to_queue) for r in rules.values()],
                      [p.name for p in config.pbxs])
    store = OffLoop(Store(config.ledger_url(), FIRST_LINE))
    ledger = LedgerWriter(store, Spool(config.spool_path(), config.ledger.spool_max_records))
    desk = Desk(store, directory, incidents, config.desk, clock)
    pbxs: dict[str, Pbx] = {}
    routing = Routing(directory, incidents, repeats.Repeats(r.repeat_window_seconds, clock),
                      metrics, ledger, store,
                      lambda: [j for p in pbxs.values() for j in p.tracker.journeys.values()],
                      Path(r.prompts_dir) if r.prompts_dir else None, config.prompts.language,
                      clock)
    calls = Calls(pbxs, names, incidents, routing.prompt_for, metrics, ledger, store,
                  config.ledger.queue_log_decisions, clock)
    app = App(config, registry, metrics, directory, incidents, store, ledger, desk,
              roles.load(config.api.tokens_file or None, config.api.token), calls, routing,
              clock, pbxs)
    DeskMetrics(registry, desk)
    for i, p in enumerate(config.pbxs):
        pbxs[p.name] = _pbx(app, p, rules, recorder if i == 0 else None)
    registry.register(LiveCollector(list(pbxs.values()), names, clock, incidents, ledger))
    return app


def _pbx(app: App, p: PbxConfig, rules: Rules, recorder: Recorder | None) -> Pbx:
    """One PBX: its tracker, AMI session and router, and the consumers of its facts."""
    thresholds = {q.name: round(q.sla_seconds * 1000) for q in app.config.queues}
    pbx = Pbx(p.name, p.ami, Tracker(thresholds, pbx=p.name), app)
    a = p.ami
    pbx.ami = AmiClient(
        AmiSettings(a.host, a.port, a.username, a.secret, ping_interval=a.ping_interval,
                    ping_timeout=a.ping_timeout, trace=a.trace),
        on_event=pbx.on_event, on_login=pbx.resync, on_state=pbx.on_ami_state,
        keep=events.wanted, recorder=recorder)
    pbx.router = Router(pbx.tracker, rules, functools.partial(
        actions.move, pbx.ami, queue_log=app.config.ledger.queue_log_decisions), app.clock)
    pbx.consumers = [app.metrics.recorder(p.name), pbx.router.on_fact, app.ledger.on_fact,
                     app.routing.repeat_ended, app.calls.forgetting(p.name)]
    return pbx
