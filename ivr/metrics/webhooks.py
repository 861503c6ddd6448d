"""The webhooks' metrics (part of the public contract, README's table).

Attempts are counted as the sender ends them (a listener of the Sender); the pending
and dead messages are the outbox's as the sender's last pass counted them (every
second or so), read at scrape time: a scrape never waits for the database.  Every
configured endpoint's series exist from start at zero.
"""

from __future__ import annotations

from typing import Iterable

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ivr.ledger.outbox import DEAD, PENDING
from ivr.webhooks.sender import RESULTS, Sender


class WebhookMetrics:
    def __init__(self, reg: CollectorRegistry, sender: Sender) -> None:
        self.deliveries = Counter("ivr_webhook_deliveries",
                                  "Webhook delivery attempts, by how each ended",
                                  ["endpoint", "result"], registry=reg)
        for name in sender.endpoints:
            for result in RESULTS:
                self.deliveries.labels(endpoint=name, result=result)
        sender.listeners.append(self.on_result)
        reg.register(OutboxCollector(sender))

    def on_result(self, endpoint: str, result: str) -> None:
        self.deliveries.labels(endpoint=endpoint, result=result).inc()


class OutboxCollector(Collector):
    def __init__(self, sender: Sender) -> None:
        self.sender = sender

    def describe(self) -> Iterable[Metric]:
        return [self._family({})]

    def collect(self) -> Iterable[Metric]:
        return [self._family(self.sender.counts)]

    def _family(self, counts: dict[tuple[str, str], int]) -> Metric:
        family = GaugeMetricFamily("ivr_webhook_messages",
                                   "Webhook messages in the outbox not delivered: pending or dead",
                                   labels=["endpoint", "state"])
        names = list(self.sender.endpoints) + sorted({e for e, _ in counts} - set(self.sender.endpoints))
        for name in names:
            for state in (PENDING, DEAD):
                family.add_metric([name, state], counts.get((name, state), 0))
        return family
