"""The service desk's metrics (part of the public contract, README's table).

Counters move as entries are appended (a listener of the Desk); the open and
overdue gauges are read from the desk at scrape time.  No pbx label: the
desk is the service's, not a PBX's.
"""

from __future__ import annotations

from typing import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ivr.desk import registry
from ivr.desk.service import CLAIM, COMPLAINT, TICKET, Desk, Item

RESOLVE_BUCKETS = tuple(h * 3600.0 for h in (1, 2, 4, 8, 12, 24, 48, 72, 168))


class DeskMetrics:
    def __init__(self, reg: CollectorRegistry, desk: Desk) -> None:
        self.tickets_opened = Counter("ivr_tickets_opened", "Tickets filed for the engineers",
                                      registry=reg)
        self.tickets_refused = Counter("ivr_tickets_refused",
                                       "Tickets refused: a known incident covered the caller",
                                       registry=reg)
        self.tickets_resolved = Counter("ivr_tickets_resolved", "Tickets the engineers resolved",
                                        registry=reg)
        self.resolve_seconds = Histogram("ivr_ticket_resolve_seconds",
                                         "From a ticket's filing to its resolution",
                                         buckets=RESOLVE_BUCKETS, registry=reg)
        self.complaints = Counter("ivr_complaints_filed", "Complaints against an operator",
                                  registry=reg)
        self.claims = Counter("ivr_claims_filed", "Claims for a recalculation of the bill",
                              registry=reg)
        reg.register(DeskCollector(desk))
        desk.listeners.append(self.on_entry)

    def on_entry(self, entry: registry.Entry, item: Item | None) -> None:
        if entry.event == "refused":
            self.tickets_refused.inc()
        elif entry.event == "filed":
            {TICKET: self.tickets_opened, COMPLAINT: self.complaints,
             CLAIM: self.claims}[entry.kind].inc()
        elif entry.event == "state" and item is not None and item.kind == TICKET \
                and item.state == "resolved":
            self.tickets_resolved.inc()
            self.resolve_seconds.observe(max(0.0, (entry.at_us - item.filed_us) / 1e6))


class DeskCollector(Collector):
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        return self._families(live=True)

    def _families(self, live: bool = False) -> list[Metric]:
        out: list[Metric] = []
        for kind, plural in ((TICKET, "tickets"), (COMPLAINT, "complaints")):
            is_open, overdue = self.desk.open_and_overdue(kind) if live else (0, 0)
            out.append(GaugeMetricFamily(f"ivr_{plural}_open", f"Open {plural}", value=is_open))
            out.append(GaugeMetricFamily(f"ivr_{plural}_overdue",
                                         f"Open {plural} past their due time", value=overdue))
        out.append(GaugeMetricFamily("ivr_registry_entries", "Entries in the registry",
                                     value=self.desk.head[0] if live else 0))
        return out
