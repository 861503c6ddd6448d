"""ivr_callbacks_pending{pbx,queue}: requests not yet connected, failed or cancelled, read
from the callbacks service at scrape time (ivr_callbacks_total is a counter of Metrics)."""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class PendingCallbacks(Collector):
    def __init__(self, counts: Callable[[], Mapping[tuple[str, str], int]],
                 series: Iterable[tuple[str, str]]) -> None:
        self.counts, self.series = counts, tuple(series)

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily("ivr_callbacks_pending", "Callbacks requested and not yet "
                                  "connected, failed or cancelled", labels=["pbx", "queue"])
        counts = dict(self.counts())
        for key in sorted(set(self.series) | set(counts)):
            gauge.add_metric(list(key), counts.get(key, 0))
        yield gauge
