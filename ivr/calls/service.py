"""Actions on a call: escalate, move, warn, end, transfer, disposition.

The rules are written here once; the control API, the console (which calls the
API) and the dialplan's escalation by transfer all come through this module.
A handler parses its request, calls one method and maps a CallError to its
answer (http/errors.py).  Every action checks in the same order: the call
(NoSuchCall, on several PBXs), its state (NotInCall, NeverAnswered), who asks
(NotYours: calls/access.py), the action's own rule (WarnFirst, Incident), and
only then acts on the PBX (PbxFailed).  A refusal changes nothing: no AMI
action, no ledger row, no metric.  What was done is counted and kept once the
PBX did it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, Mapping, Protocol, TypeVar

from ivr.calls import access
from ivr.calls.facts import Fact, JourneyEnded
from ivr.calls.journeys import Journey
from ivr.calls.tracker import Tracker
from ivr.calls.records import CallRecord
from ivr.config import tokens as roles
from ivr.ledger.db import LedgerError
from ivr.ledger.store import Store
from ivr.ledger.rows import Escalation, OperatorAction
from ivr.pbx import actions
from ivr.routing import policy

if TYPE_CHECKING:
    from ivr.ledger.offloop import OffLoop
    from ivr.ledger.writer import LedgerWriter
    from ivr.metrics.families import Metrics
    from ivr.routing import incidents as known

log = logging.getLogger(__name__)
T = TypeVar("T")
# How an operator closes an answered call.
DISPOSITIONS = ("resolved", "ticket", "escalated", "incident_informed", "complaint", "claim",
                "abuse_ended")
TRANSFERS = actions.TRANSFERS


class CallError(Exception):
    """An action refused or failed, and nothing done; `code` is the stable word the
    API answers with ("" for none), `extra` what else the answer says."""
    code = ""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message, self.extra = message, extra


class NoSuchCall(CallError):
    """No call in progress has this uniqueid (on the PBX named)."""


class OnSeveralPbxs(CallError):
    """The uniqueid is in progress on several PBXs: the caller must name one."""


class UnknownQueue(CallError):
    """A move to a queue ivr does not follow."""


class CannotMove(CallError):
    """The caller is not waiting, or waits in that queue already."""


class NotYours(CallError):
    code = access.NOT_YOURS


class NotInCall(CallError):
    code = "not_in_call"


class NeverAnswered(CallError):
    code = "never_answered"


class WarnFirst(CallError):
    code = "warn_first"


class Incident(CallError):
    code = "incident"


class PbxFailed(CallError):
    """The PBX did not do what was asked."""


class LedgerDown(CallError):
    """The ledger did not answer (a disposition of an ended call)."""


class Pbx(Protocol):
    """What the service needs of one PBX ivr follows."""
    @property
    def name(self) -> str: ...
    @property
    def tracker(self) -> Tracker: ...
    @property
    def ami(self) -> actions.Actions: ...


@dataclass(eq=False)
class Calls:
    pbxs: Mapping[str, Pbx]          # by name, in the config's order
    queues: tuple[str, ...]
    incidents: known.Incidents
    prompt_for: Callable[[known.Incident], str]
    metrics: Metrics
    ledger: LedgerWriter
    store: OffLoop
    queue_log_decisions: bool = False
    clock: Callable[[], float] = time.time
    dialplan: actions.Dialplan = actions.DEFAULT_DIALPLAN
    warned: set[tuple[str, str]] = field(default_factory=set)   # (pbx, uniqueid) warned for abuse
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # -- where a call is --------------------------------------------------------

    def find(self, uniqueid: str, pbx: str | None = None) -> list[tuple[Pbx, Journey]]:
        """Where a call in progress is: on the PBX named, or on any (Uniqueids of
        PBXs without a SystemName can collide: then there may be several)."""
        where = self.pbxs.values() if not pbx else [p] if (p := self.pbxs.get(pbx)) else []
        return [(p, j) for p in where if (j := p.tracker.journeys.get(uniqueid)) is not None]

    def live_call(self, uniqueid: str) -> CallRecord | None:
        """A call in progress on exactly one PBX, as its record would be now."""
        found = self.find(uniqueid)
        if len(found) != 1:
            return None
        return found[0][0].tracker.record_of(uniqueid, int(self.clock() * 1e6))

    def one(self, uniqueid: str, pbx: str | None = None) -> tuple[Pbx, Journey]:
        """The call in progress, on `pbx` or the one PBX that has it."""
        found = self.find(uniqueid, pbx)
        if not found:
            raise NoSuchCall("unknown call")
        if len(found) > 1:
            raise OnSeveralPbxs("this uniqueid is on several PBXs: add ?pbx=NAME",
                                pbx=[p.name for p, _ in found])
        return found[0]

    def _answered(self, actor: roles.Actor, action: str, uniqueid: str, pbx: str | None,
                  what: str = "") -> tuple[Pbx, Journey]:
        """The call if an operator has it now and `actor` may act on it (what: what only
        such a call may have done to it)."""
        where, journey = self.one(uniqueid, pbx)
        if not journey.with_operator:
            raise NotInCall(f"only a call in progress with an operator{what}")
        _check(actor, action, access.of_journey(where.name, journey), uniqueid)
        return where, journey

    # -- the actions ------------------------------------------------------------

    async def escalate(self, actor: roles.Actor, uniqueid: str, pbx: str | None = None) -> str:
        """To the engineers' queue, unless a known incident covers the caller; the queue."""
        where, journey = self._answered(actor, "escalate", uniqueid, pbx, " can be escalated")
        route = self.escalation(journey.area or None)
        self.metrics.decided(route, None, where.name)
        if route.route != policy.ENGINEERS:
            self.escalated(where, uniqueid, "api", "refused_incident", route.incident)
            raise Incident("refused: a known incident covers this caller", incident=route.incident)
        try:
            await actions.escalate(where.ami, journey.channel, uniqueid)
        except Exception as exc:
            self.escalated(where, uniqueid, "api", "failed")
            raise PbxFailed(f"the PBX did not move the call: {exc}") from None
        self.escalated(where, uniqueid, "api", "accepted")
        self.operator_action(where, uniqueid, "escalate", policy.ENGINEERS, actor)
        return policy.ENGINEERS

    def escalation(self, area: str | None) -> policy.Route:
        return policy.escalation(area, self.incidents, self.prompt_for)

    def escalate_by_transfer(self, pbx: Pbx, uniqueid: str, started: float) -> policy.Route:
        """The dialplan asks (an operator transferred the caller to the engineers);
        `started`: perf_counter when its question came, for the decision's latency."""
        journey = pbx.tracker.journeys.get(uniqueid)
        route = self.escalation(journey.area if journey else None)
        self.metrics.decided(route, time.perf_counter() - started, pbx.name)
        result = "accepted" if route.route == policy.ENGINEERS else "refused_incident"
        self.escalated(pbx, uniqueid, "transfer", result, route.incident)
        log.info("call %s: escalation by transfer %s", uniqueid,
                 "accepted" if result == "accepted" else f"refused ({route.incident})")
        return route

    async def move(self, actor: roles.Actor, uniqueid: str, queue: str,
                   pbx: str | None = None) -> policy.Move:
        """A waiting caller to another queue (a supervisor's move)."""
        if queue not in self.queues:
            raise UnknownQueue(f"unknown queue {queue!r} (known: {', '.join(self.queues)})")
        where, journey = self.one(uniqueid, pbx)
        _check(actor, "move", access.of_journey(where.name, journey), uniqueid)
        decision = policy.move_by_hand(where.tracker, uniqueid, queue)
        if isinstance(decision, str):
            raise (NoSuchCall if decision == "unknown call" else CannotMove)(decision)
        await _on_pbx(actions.move(where.ami, decision, dialplan=self.dialplan), "move the call")
        self.metrics.decided(policy.Route("move"), None, where.name)
        self.operator_action(where, uniqueid, "move", queue, actor)
        return decision

    async def warn(self, actor: roles.Actor, uniqueid: str, pbx: str | None = None) -> None:
        where, journey = self._answered(actor, "warn", uniqueid, pbx)
        await _on_pbx(actions.warn(where.ami, journey.channel, uniqueid), "play the warning")
        self.warned.add((where.name, uniqueid))
        self.operator_action(where, uniqueid, "warn", "abuse", actor)

    async def end(self, actor: roles.Actor, uniqueid: str, pbx: str | None = None) -> None:
        """End the call for abuse: only after one warning."""
        where, journey = self._answered(actor, "end", uniqueid, pbx)
        if (where.name, uniqueid) not in self.warned:
            raise WarnFirst("warn the caller first (POST .../warn): a call is ended for abuse "
                            "only after one warning")
        await _on_pbx(actions.end_for_abuse(where.ami, journey.channel, uniqueid), "end the call")
        self.operator_action(where, uniqueid, "end", "abuse", actor)

    async def transfer(self, actor: roles.Actor, uniqueid: str, to: str,
                       pbx: str | None = None) -> str:
        """As the phone would (TRANSFERS); the extension."""
        where, journey = self._answered(actor, "transfer", uniqueid, pbx)
        number = await _on_pbx(actions.transfer(where.ami, journey.channel, uniqueid, to=to,
                                                dialplan=self.dialplan), "transfer the call")
        self.operator_action(where, uniqueid, "transfer", to, actor)
        return number

    async def disposition(self, actor: roles.Actor, uniqueid: str, code: str,
                          pbx: str | None = None) -> None:
        """How an operator closed an answered call, in progress or ended (the ledger's)."""
        name, answered, call = await self._closable(uniqueid, pbx)
        _check(actor, "disposition", call, uniqueid, closing=True)
        if not answered:
            raise NeverAnswered("the call was never answered: there is nothing to close")
        where = self.pbxs.get(name) or next(iter(self.pbxs.values()))
        self.operator_action(where, uniqueid, "disposition", code, actor)

    async def _closable(self, uniqueid: str, pbx: str | None) -> tuple[str, bool, access.Call]:
        """The call's PBX, whether it was answered, and whose it is."""
        try:
            where, journey = self.one(uniqueid, pbx)
            return where.name, journey.answered, access.of_journey(where.name, journey)
        except NoSuchCall:
            pass
        try:
            await self.ledger.flush()     # a call that just ended may be in the writer's batch
            kept = await self.store.run(Store.call, uniqueid)
        except LedgerError as exc:
            raise LedgerDown(str(exc)) from None
        if not kept:
            raise NoSuchCall("unknown call")
        return kept[-1].pbx, kept[-1].answered_member != "", access.of_record(kept[-1])

    # -- what is kept of them ---------------------------------------------------

    def escalated(self, pbx: Pbx, uniqueid: str, via: str, result: str,
                  incident: str = "") -> None:
        """An escalation decided (via api or transfer): counted, kept, and told to queue_log."""
        self.metrics.escalated(result, pbx.name)
        self.ledger.keep(Escalation(pbx.name, uniqueid, round(self.clock() * 1e6), via, result,
                                    incident))
        if self.queue_log_decisions:
            j = pbx.tracker.journeys.get(uniqueid)
            queue = j.last_exit[0] if j is not None and j.last_exit else "NONE"
            self._background(actions.log_decision(
                pbx.ami, queue, uniqueid, actions.QUEUE_LOG_ESCALATE, f"{result}|{via}"))

    def operator_action(self, pbx: Pbx, uniqueid: str, action: str, value: str,
                        actor: roles.Actor) -> None:
        """An action done by hand: counted and kept in the ledger."""
        self.metrics.operator_actions.labels(pbx=pbx.name, action=action).inc()
        self.ledger.keep(OperatorAction(pbx.name, uniqueid, round(self.clock() * 1e6), action,
                                        value, actor.role, actor.name))
        log.info("call %s: %s %s by %s %s", uniqueid, action, value, actor.role, actor.name)

    def forgetting(self, pbx: str) -> Callable[[Fact], None]:
        """A consumer of `pbx`'s facts: a call that ended is warned no more."""
        def forget(fact: Fact) -> None:
            if self.warned and isinstance(fact, JourneyEnded):
                self.warned.discard((pbx, fact.uniqueid))
        return forget

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _check(actor: roles.Actor, action: str, call: access.Call, uniqueid: str,
           closing: bool = False) -> None:
    """The call-action decision (calls/access.py), before anything is done."""
    refusal = access.decide(actor, call, closing)
    if refusal is not None:
        log.warning("call %s: %s %s refused (%s): %s", uniqueid, actor.role, actor.name,
                    action, refusal.message)
        error = NotYours(refusal.message)
        error.code = refusal.code
        raise error


async def _on_pbx(work: Awaitable[T], what: str) -> T:
    try:
        return await work
    except Exception as exc:
        raise PbxFailed(f"the PBX did not {what}: {exc}") from None
