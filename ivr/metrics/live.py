"""The live gauges: waiting callers, agents, AMI and ledger health, read from the
trackers, the AMI clients and the ledger at scrape time (a prometheus_client Collector),
never poked from elsewhere.  Registered in the app's one registry beside `Metrics`.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Protocol, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ivr.calls.tracker import Tracker


class Active(Protocol):
    def active(self) -> Sequence[object]: ...


class AmiHealth(Protocol):
    up: bool
    reconnects: int

    @property
    def events_received(self) -> int: ...

    @property
    def malformed_frames(self) -> int: ...


class LedgerHealth(Protocol):
    write_errors: int
    quarantined: int

    @property
    def dropped(self) -> int: ...

    @property
    def backlog(self) -> int: ...


class LivePbx(Protocol):
    """What the live gauges read of one PBX (pbx/session.Pbx)."""

    @property
    def name(self) -> str: ...
    @property
    def tracker(self) -> Tracker: ...
    @property
    def ami(self) -> AmiHealth: ...


class LiveCollector(Collector):
    """Gauges read from live state at scrape time, a series per PBX."""

    def __init__(self, pbxs: Sequence[LivePbx], queues: Sequence[str],
                 clock: Callable[[], float] = time.time, incidents: Active | None = None,
                 ledger: LedgerHealth | None = None) -> None:
        self.pbxs, self.queues, self.clock = pbxs, queues, clock
        self.incidents, self.ledger = incidents, ledger

    def collect(self) -> Iterable[Metric]:
        yield from self._queues()
        yield from self._agents()
        yield from self._ami()
        # Incidents (areas of the network) and the ledger are the whole service's, of no PBX.
        if self.incidents is not None:
            active = GaugeMetricFamily("ivr_incidents_active", "Known incidents in force now")
            active.add_metric([], len(self.incidents.active()))
            yield active
        if self.ledger is not None:
            yield from self._ledger(self.ledger)

    def _ledger(self, ledger: LedgerHealth) -> Iterable[Metric]:
        backlog = GaugeMetricFamily("ivr_ledger_backlog_records",
                                    "Call records not yet in the ledger database (memory and spool)")
        backlog.add_metric([], ledger.backlog)
        return (backlog,
                CounterMetricFamily("ivr_ledger_write_errors",
                                    "Failed attempts to write to the ledger database",
                                    value=ledger.write_errors),
                CounterMetricFamily("ivr_ledger_dropped_records",
                                    "Records lost: the database away and the spool full, or a "
                                    "torn or unreadable spool line",
                                    value=ledger.dropped),
                CounterMetricFamily("ivr_ledger_quarantined_records",
                                    "Records the database refused, kept in the quarantine file",
                                    value=ledger.quarantined))

    def _queues(self) -> Iterable[Metric]:
        labels = ["pbx", "queue"]
        waiting = GaugeMetricFamily("ivr_queue_waiting_calls", "Callers waiting now", labels=labels)
        oldest = GaugeMetricFamily("ivr_queue_oldest_wait_seconds",
                                   "How long the longest-waiting caller has waited", labels=labels)
        threshold = GaugeMetricFamily("ivr_queue_sla_threshold_seconds",
                                      "The queue's SLA answer threshold", labels=labels)
        now_us = round(self.clock() * 1_000_000)
        for pbx in self.pbxs:
            by_queue = pbx.tracker.waiting_by_queue()
            for q in self.queues:
                callers = by_queue.get(q, [])
                longest = max((j.queue_wait_us(now_us) for j in callers), default=0)
                waiting.add_metric([pbx.name, q], len(callers))
                oldest.add_metric([pbx.name, q], max(0, longest) / 1e6)
                threshold.add_metric([pbx.name, q], pbx.tracker.threshold_ms(q) / 1000)
        return (waiting, oldest, threshold)

    def _agents(self) -> Iterable[Metric]:
        agents = GaugeMetricFamily("ivr_queue_agents", "Queue members by state",
                                   labels=["pbx", "queue", "state"])
        for pbx in self.pbxs:
            by_queue = pbx.tracker.agent_counts_by_queue(self.queues)
            for q in self.queues:
                for state, count in by_queue[q].items():
                    agents.add_metric([pbx.name, q, state], count)
        return (agents,)

    def _ami(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("ivr_ami_up", "1 when logged in to AMI and resynced", labels=["pbx"])
        reconnects = CounterMetricFamily("ivr_ami_reconnects", "AMI logins after the first",
                                         labels=["pbx"])
        received = CounterMetricFamily("ivr_ami_events", "AMI events received", labels=["pbx"])
        malformed = CounterMetricFamily("ivr_ami_malformed_frames",
                                        "AMI frames that could not be parsed", labels=["pbx"])
        for pbx in self.pbxs:
            up.add_metric([pbx.name], 1.0 if pbx.ami.up else 0.0)
            reconnects.add_metric([pbx.name], pbx.ami.reconnects)
            received.add_metric([pbx.name], pbx.ami.events_received)
            malformed.add_metric([pbx.name], pbx.ami.malformed_frames)
        return (up, reconnects, received, malformed)
