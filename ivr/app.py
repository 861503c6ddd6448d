"""Wiring: the whole object graph, in one function.

One AMI event, from the socket to a metric:
    AmiClient (bytes -> Codec -> Message) -> App.on_event
    -> events.parse (typed event, Asterisk timestamp)
    -> Tracker.handle (journey state machine) -> facts
    -> Metrics.record (counters, histograms) and Router.on_fact (timers)
Live gauges are read from the Tracker at scrape time by LiveCollector.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from prometheus_client import CollectorRegistry

from ivr import actions
from ivr.ami import events
from ivr.ami.client import AmiClient, AmiSettings
from ivr.ami.codec import Message
from ivr.config import Config
from ivr.journeys import Fact, Tracker
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
    clock: Callable[[], float] = time.time
    router: Router = field(init=False)
    ami: AmiClient = field(init=False)
    ready: bool = False
    listeners: list[Callable[[Fact], None]] = field(default_factory=list)

    def on_event(self, msg: Message) -> None:
        try:
            event = events.parse(msg, self.clock())
        except (KeyError, ValueError) as exc:
            log.warning("skipping %s event: %s", msg.event, exc)
            return
        if event is not None:
            self.apply(self.tracker.handle(event))

    def apply(self, facts: list[Fact]) -> None:
        for fact in facts:
            self.metrics.record(fact)
            self.router.on_fact(fact)
            for listener in self.listeners:
                listener(fact)

    async def resync(self, ami: AmiClient) -> None:
        """After every login: take a fresh snapshot instead of trusting memory."""
        self.ready = False
        taken_at = self.clock()
        status = await ami.action_list("QueueStatus")
        channels = await ami.action_list("CoreShowChannels")
        self.apply(self.tracker.resync(events.snapshot(status, channels, taken_at)))
        self.ready = True
        log.info("resynced: %d callers waiting, %d queue members",
                 sum(len(self.tracker.waiting(q)) for q in self.config.queue_names),
                 len(self.tracker.members))

    def on_ami_state(self, up: bool) -> None:
        if not up:
            self.ready = False


def overflow_rules(config: Config) -> Rules:
    return {q.name: OverflowRule(q.name, q.overflow_to, round(q.overflow_after_seconds * 1000))
            for q in config.queues
            if q.overflow_to is not None and q.overflow_after_seconds is not None}


def build(config: Config, clock: Callable[[], float] = time.time) -> App:
    registry = CollectorRegistry()
    names = config.queue_names
    thresholds = {q.name: round(q.sla_seconds * 1000) for q in config.queues}
    tracker = Tracker(thresholds)
    metrics = Metrics(registry, names, [q.sla_seconds for q in config.queues])
    app = App(config, registry, tracker, metrics, clock)
    a = config.ami
    app.ami = AmiClient(
        AmiSettings(a.host, a.port, a.username, a.secret,
                    ping_interval=a.ping_interval, ping_timeout=a.ping_timeout, trace=a.trace),
        on_event=app.on_event, on_login=app.resync, on_state=app.on_ami_state)
    app.router = Router(tracker, overflow_rules(config),
                        functools.partial(actions.move, app.ami), clock)
    registry.register(LiveCollector(tracker, app.ami, names, clock))
    return app
