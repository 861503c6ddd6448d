"""SLA metrics: a public contract (dashboards and alerts depend on the names).

Counters and histograms are fed with tracker facts by `Metrics.record`;
live state (waiting callers, agents, AMI health) is read from the tracker
and the AMI client at scrape time by `metrics.live.LiveCollector`, never
poked from elsewhere.  Everything lives in one registry owned by the app.
"""

from __future__ import annotations

from typing import Callable, Iterable, Protocol, Sequence, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram

from ivr.calls.facts import (NOT_ADMITTED_REASONS, Entered, Exited, Fact, JourneyAnswered,
                             JourneyEnded, NotAdmitted, Overflowed, Unobserved)
from ivr.calls.judge import OUTCOMES
from ivr.calls.records import DEFAULT_PBX
from ivr.routing.repeats import KINDS as REPEAT_KINDS

WAIT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0)
DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
ROUTES = ("first-line", "ask-account", "incident", "engineers", "refused", "move", "concurrent")
ESCALATION_RESULTS = ("accepted", "refused_incident", "failed")
OPERATOR_ACTIONS = ("warn", "end", "disposition", "escalate", "move", "transfer")


class Route(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def announce(self) -> str: ...


def wait_buckets(thresholds_s: Iterable[float]) -> tuple[float, ...]:
    """The standard buckets plus an edge exactly at every SLA threshold."""
    return tuple(sorted(set(WAIT_BUCKETS) | set(thresholds_s)))


class Metrics:
    def __init__(self, registry: CollectorRegistry, queues: Sequence[str],
                 thresholds_s: Iterable[float],
                 overflows: Iterable[tuple[str, str]] = (),
                 pbxs: Sequence[str] = (DEFAULT_PBX,)) -> None:
        overflows = list(overflows)
        buckets = wait_buckets(thresholds_s)
        self.callbacks = Counter("ivr_callbacks", "Callbacks requested, and how they ended "
                                 "(connected, failed, cancelled)", ["pbx", "queue", "result"],
                                 registry=registry)
        self.entered = Counter("ivr_queue_entered", "Callers that entered a queue",
                               ["pbx", "queue"], registry=registry)
        self.exits = Counter("ivr_queue_exits", "Callers that left a queue, by why they left",
                             ["pbx", "queue", "outcome"], registry=registry)
        self.within_sla = Counter("ivr_queue_answered_within_sla",
                                  "Callers answered within the queue's SLA threshold",
                                  ["pbx", "queue"], registry=registry)
        self.answer_wait = Histogram("ivr_queue_answer_wait_seconds",
                                     "Wait from entering the queue to an agent answering",
                                     ["pbx", "queue"], buckets=buckets, registry=registry)
        self.abandon_wait = Histogram("ivr_queue_abandon_wait_seconds",
                                      "Wait from entering the queue to the caller hanging up",
                                      ["pbx", "queue"], buckets=buckets, registry=registry)
        self.overflow = Counter("ivr_queue_overflow", "Unanswered callers moved between queues",
                                ["pbx", "from_queue", "to_queue"], registry=registry)
        self.unobserved = Counter("ivr_queue_exits_unobserved",
                                  "Callers that left a queue while ivr was disconnected",
                                  ["pbx", "queue"], registry=registry)
        self.not_admitted = Counter("ivr_queue_not_admitted",
                                    "Callers a Queue() refused at the door (maxlen reached: "
                                    "full; no member: joinempty, joinunavail), by reason",
                                    ["pbx", "reason"], registry=registry)
        self.journeys = Counter("ivr_journeys", "Finished caller journeys, by outcome",
                                ["pbx", "outcome"], registry=registry)
        self.journey_wait = Histogram("ivr_journey_answer_wait_seconds",
                                      "Wait from first entering any queue to the first answer",
                                      ["pbx"], buckets=buckets, registry=registry)
        self.payable = Counter("ivr_payable_calls",
                               "Calls answered in first-line within its threshold of first entering it",
                               ["pbx"], registry=registry)
        self.escalations = Counter("ivr_escalations", "Escalations to the engineers, by result",
                                   ["pbx", "result"], registry=registry)
        self.announcements = Counter("ivr_incident_announcements",
                                     "Known-incident announcements decided for callers", ["pbx"],
                                     registry=registry)
        self.route_decisions = Counter("ivr_route_decisions", "Routing decisions, by route",
                                       ["pbx", "route"], registry=registry)
        self.untimestamped = Counter("ivr_ami_untimestamped_events",
                                     "Followed AMI events without a Timestamp header "
                                     "(manager.conf timestampevents = no): timed by ivr's clock",
                                     ["pbx"], registry=registry)
        self.operator_actions = Counter("ivr_operator_actions",
                                        "Actions on a call through the API: warn, end (for "
                                        "abuse), disposition, escalate, move, transfer", ["pbx", "action"], registry=registry)
        self.repeats = Counter("ivr_repeat_calls", "Calls from a caller who called within the "
                               "repeat window unanswered, or is waiting on another line",
                               ["pbx", "kind"], registry=registry)
        self.decision_seconds = Histogram("ivr_route_decision_seconds",
                                          "Time ivr took to decide a route for the dialplan",
                                          ["pbx"], buckets=DECISION_BUCKETS, registry=registry)
        # The per-fact series: labels() takes a lock and builds a key on every call.
        self._entered = _Children(self.entered)
        self._exits = _Children(self.exits)
        self._within_sla = _Children(self.within_sla)
        self._answer_wait = _Children(self.answer_wait)
        self._abandon_wait = _Children(self.abandon_wait)
        self._overflow = _Children(self.overflow)
        self._unobserved = _Children(self.unobserved)
        self._journeys = _Children(self.journeys)
        self._journey_wait = _Children(self.journey_wait)
        self._payable = _Children(self.payable)
        for pbx in pbxs:
            self._init_labels(pbx, queues, overflows)

    def _init_labels(self, pbx: str, queues: Sequence[str],
                     overflows: Iterable[tuple[str, str]]) -> None:
        """Series exist at zero from start-up, so dashboards show 0, not 'no data'."""
        for q in queues:
            for family in (self.entered, self.within_sla, self.answer_wait,
                           self.abandon_wait, self.unobserved):
                family.labels(pbx=pbx, queue=q)
            for outcome in OUTCOMES:
                self.exits.labels(pbx=pbx, queue=q, outcome=outcome)
        for from_queue, to_queue in overflows:
            self.overflow.labels(pbx=pbx, from_queue=from_queue, to_queue=to_queue)
        for outcome in ("answered", "abandoned", "unanswered", "callback"):
            self.journeys.labels(pbx=pbx, outcome=outcome)
        for reason in NOT_ADMITTED_REASONS:
            self.not_admitted.labels(pbx=pbx, reason=reason)
        for result in ESCALATION_RESULTS:
            self.escalations.labels(pbx=pbx, result=result)
        for route in ROUTES:
            self.route_decisions.labels(pbx=pbx, route=route)
        for action in OPERATOR_ACTIONS:
            self.operator_actions.labels(pbx=pbx, action=action)
        for kind in REPEAT_KINDS:
            self.repeats.labels(pbx=pbx, kind=kind)
        for family in (self.journey_wait, self.payable, self.announcements, self.untimestamped,
                       self.decision_seconds):
            family.labels(pbx=pbx)

    def recorder(self, pbx: str) -> Callable[[Fact], None]:
        """`record` for the facts of one PBX: a consumer of its tracker's facts."""
        def record(fact: Fact) -> None:
            self.record(fact, pbx)
        return record

    def record(self, fact: Fact, pbx: str = DEFAULT_PBX) -> None:
        if isinstance(fact, Entered):
            self._entered[pbx, fact.queue].inc()
        elif isinstance(fact, Exited):
            self._exited(fact, pbx)
        elif isinstance(fact, Overflowed):
            self._overflow[pbx, fact.from_queue, fact.to_queue].inc()
        elif isinstance(fact, JourneyAnswered):
            self._journey_wait[pbx].observe(fact.wait_ms / 1000)
            if fact.payable:
                self._payable[pbx].inc()
        elif isinstance(fact, JourneyEnded):
            self._journeys[pbx, fact.outcome].inc()
        elif isinstance(fact, Unobserved):
            self._unobserved[pbx, fact.queue].inc()
        elif isinstance(fact, NotAdmitted):
            self.not_admitted.labels(pbx=pbx, reason=fact.reason).inc()

    def decided(self, route: Route, seconds: float | None, pbx: str = DEFAULT_PBX) -> None:
        """A route decided; `seconds` the dialplan waited for it (None: nobody asked, as
        for a person's escalation or move, which the latency histogram does not count)."""
        self.route_decisions.labels(pbx=pbx, route=route.label).inc()
        if seconds is not None:
            self.decision_seconds.labels(pbx=pbx).observe(seconds)
        if route.announce:
            self.announcements.labels(pbx=pbx).inc()

    def escalated(self, result: str, pbx: str = DEFAULT_PBX) -> None:
        self.escalations.labels(pbx=pbx, result=result).inc()

    def _exited(self, fact: Exited, pbx: str) -> None:
        self._exits[pbx, fact.queue, fact.outcome].inc()
        if fact.outcome == "answered":
            self._answer_wait[pbx, fact.queue].observe(fact.wait_ms / 1000)
            if fact.within_sla:
                self._within_sla[pbx, fact.queue].inc()
        elif fact.outcome == "abandoned":
            self._abandon_wait[pbx, fact.queue].observe(fact.wait_ms / 1000)


Family = TypeVar("Family", Counter, Histogram)


class _Children(dict[str | tuple[str, ...], Family]):
    """A labelled family's series by label values (one value, or a tuple of them), kept."""

    def __init__(self, family: Family) -> None:
        super().__init__()
        self._family: Family = family

    def __missing__(self, key: str | tuple[str, ...]) -> Family:
        values = key if isinstance(key, tuple) else (key,)
        child: Family = self._family.labels(*values)
        self[key] = child
        return child
