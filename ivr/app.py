"""Wiring: the whole object graph, in one function.

One AMI event, from the socket to a metric (each PBX of the config is a Pbx
with its own client, tracker and router; Asterisk sends only what ivr follows
when the session filter is on: ami/server_filter.py):
    AmiClient (bytes -> Codec, which skips noise undecoded: events.wanted -> Message)
    -> Pbx.on_event -> Session.on_message (pbx/session.py, the path `ivr replay` takes too)
    -> events.parse_timed (typed event, Asterisk timestamp, or none)
    -> Tracker.handle (journey state machine) -> facts
    -> Services.apply: Metrics.record with the PBX's name (counters, histograms),
       Router.on_fact (timers) and LedgerWriter.on_fact (JourneyEnded's
       CallRecord -> batched into the store)
Live gauges are read from the trackers at scrape time by LiveCollector.
The dialplan asks for routes over HTTP (http/dialplan.py); people use the
control API (http/api/) and the console.  Their handlers only parse and call
the services wired here: routing/service.py (the entry question, repeats,
incidents), calls/service.py (the actions on a call, the dialplan's
escalation too), desk/service.py (tickets, complaints, claims, the registry);
these decide with routing/policy.py and act with pbx/actions.py.  The desk's
and the incidents' events go into the ledger's outbox with their records
(ledger/outbox.py), and webhooks/sender.py sends them to the helpdesk.
"""

from __future__ import annotations

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
from ivr.ami import events
from ivr.ami.client import AmiClient, AmiSettings
from ivr.ami.recording import Recorder
from ivr.calls.service import Calls
from ivr.callbacks import model as cb_model
from ivr.callbacks.service import Callbacks
from ivr.metrics.callbacks import PendingCallbacks
from ivr.config import Config, PbxConfig
from ivr.metrics.desk import DeskMetrics
from ivr.metrics.webhooks import WebhookMetrics
from ivr.desk.events import DeskEvents
from ivr.desk.service import Desk
from ivr.routing.directory import Directory
from ivr.routing.incidents import Incidents
from ivr.routing.service import Routing
from ivr.calls.facts import Fact
from ivr.calls.tracker import Tracker
from ivr.ledger.offloop import OffLoop
from ivr.ledger.outbox import Outbox
from ivr.ledger.store import Store
from ivr.ledger.writer import LedgerWriter, Spool
from ivr.metrics.families import Metrics
from ivr.metrics.live import LiveCollector
from ivr.metrics import runtime
from ivr.pbx.session import Pbx
from ivr.routing.policy import OverflowRule, Rules
from ivr.routing.router import Router
from ivr.webhooks.sender import Sender

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Services:
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
    webhooks: Sender
    callbacks: Callbacks
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


def dialplan(config: Config) -> actions.Dialplan:
    """Where ivr's actions send callers on the PBXs, as [routing] names it."""
    r = config.routing
    return actions.Dialplan({queue: role for role, queue in r.role_queues().items()},
                            {"supervisor": r.supervisor, "read_back": r.readback})


def tokens(config: Config) -> roles.Tokens:
    """The API's tokens as the config gives them.  Raises TokensError."""
    return roles.load(config.api.tokens_file or None, config.api.token)


def directory(config: Config) -> Directory:
    """The subscriber directory as the config gives it.  Raises DirectoryError."""
    path = config.routing.directory
    return Directory.load(Path(path)) if path else Directory.empty()


def build(config: Config, clock: Callable[[], float] = time.time,
          recorder: Recorder | None = None) -> Services:
    """The whole object graph.  Raises DirectoryError/IncidentError/TokensError for bad files.
    `recorder` keeps the raw AMI stream (`ivr run --record-ami`) of the first PBX."""
    r = config.routing
    subscribers = directory(config)
    incidents = Incidents(clock, Path(r.incidents_file) if r.incidents_file else None)
    registry = CollectorRegistry()
    runtime.install(registry)      # process_*, python_*, ivr_build_info; no _created series
    names = config.queue_names
    rules = overflow_rules(config)
    metrics = Metrics(registry, names, [q.sla_seconds for q in config.queues],
                      [(rule.from_queue, rule.to_queue) for rule in rules.values()],
                      [p.name for p in config.pbxs])
    store = OffLoop(Store(config.ledger_url(), r.first_line))
    ledger = LedgerWriter(store, Spool(config.spool_path(), config.ledger.spool_max_records))
    outbox = Outbox(config.webhooks)    # desk and incident events, kept with their records
    desk = Desk(store, subscribers, incidents, config.desk, clock, DeskEvents(outbox))
    webhooks = Sender(store, config.webhooks, clock)
    desk.listeners.append(lambda entry, item: webhooks.wake())
    pbxs: dict[str, Pbx] = {}
    routing = Routing(subscribers, incidents, repeats.Repeats(r.repeat_window_seconds, clock),
                      metrics, ledger, store,
                      lambda: [j for p in pbxs.values() for j in p.tracker.journeys.values()],
                      Path(r.prompts_dir) if r.prompts_dir else None, config.prompts.language,
                      clock, outbox)
    calls = Calls(pbxs, names, incidents, routing.prompt_for, metrics, ledger, store,
                  config.ledger.queue_log_decisions, clock, dialplan(config))
    callbacks = Callbacks(config.callback, config.callback_queues, pbxs, ledger, store, metrics,
                          clock, queue_log=config.ledger.queue_log_decisions)
    routing.callbacks = callbacks
    app = Services(config, registry, metrics, subscribers, incidents, store, ledger, desk,
                   tokens(config), calls, routing, webhooks, callbacks, clock, pbxs)
    DeskMetrics(registry, desk)
    WebhookMetrics(registry, webhooks)
    for i, p in enumerate(config.pbxs):
        pbxs[p.name] = _pbx(app, p, rules, recorder if i == 0 else None)
    registry.register(LiveCollector(list(pbxs.values()), names, clock, incidents, ledger))
    series = [(p, q) for p in pbxs for q in config.callback_queues]
    registry.register(PendingCallbacks(callbacks.counts, series))
    for (p_name, queue) in series:
        for result in cb_model.RESULTS:
            metrics.callbacks.labels(pbx=p_name, queue=queue, result=result)
    return app


def _pbx(app: Services, p: PbxConfig, rules: Rules, recorder: Recorder | None) -> Pbx:
    """One PBX: its tracker, AMI session and router, and the consumers of its facts."""
    thresholds = {q.name: round(q.sla_seconds * 1000) for q in app.config.queues}
    overflow = {q.name: round(q.overflow_after_seconds * 1000) for q in app.config.queues
                if q.overflow_after_seconds is not None}
    tracker = Tracker(thresholds, app.config.routing.first_line, p.name, overflow)
    pbx = Pbx(p.name, p.ami, tracker, app.clock,
              app.apply,
              app.metrics.untimestamped.labels(pbx=p.name).inc)
    a = p.ami
    pbx.ami = AmiClient(
        AmiSettings(a.host, a.port, a.username, a.secret, ping_interval=a.ping_interval,
                    ping_timeout=a.ping_timeout, trace=a.trace),
        on_event=pbx.on_event, on_login=pbx.resync, on_state=pbx.on_ami_state,
        keep=events.wanted, recorder=recorder)
    pbx.router = Router(pbx.tracker, rules, functools.partial(
        actions.move, pbx.ami, queue_log=app.config.ledger.queue_log_decisions,
        dialplan=app.calls.dialplan), app.clock)
    pbx.consumers = [app.metrics.recorder(p.name), pbx.router.on_fact, app.ledger.on_fact,
                     app.routing.repeat_ended, app.calls.forgetting(p.name),
                     functools.partial(app.callbacks.on_fact, pbx)]
    pbx.resynced.append(app.callbacks.resynced)
    return pbx
