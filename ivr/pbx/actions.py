"""Doing: turn routing decisions into AMI actions, one function per action.

The dialplan owns destinations: a move sends the caller to the named
extension of the queue's part (first-line, common, engineers, supervisors) in
context ivr-queues, or to one named as the queue if it plays none.  IVR_MOVE is set first so the
reason is on the AMI stream before the caller leaves the queue (the tracker
reads it from there, in replays too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping, Protocol

from ivr.ami.codec import Message
from ivr.ami.events import IVR_MOVE
from ivr.routing.policy import Move

log = logging.getLogger(__name__)

DESTINATIONS_CONTEXT = "ivr-queues"
AGENTS_CONTEXT = "ivr-agents"


@dataclass(frozen=True)
class Dialplan:
    """This PBX's names for where ivr sends a caller ([routing] in the config)."""
    # queue -> its [ivr-queues] extension, for the queues that play a part
    extensions: Mapping[str, str] = field(default_factory=dict)
    # the console's transfers -> the operators' numbers in [ivr-agents]
    transfers: Mapping[str, str] = field(
        default_factory=lambda: {"supervisor": "9001", "read_back": "9002"})

    def extension(self, queue: str) -> str:
        return self.extensions.get(queue, queue)


DEFAULT_DIALPLAN = Dialplan()
TRANSFERS = tuple(DEFAULT_DIALPLAN.transfers)    # what the console may transfer to


class Actions(Protocol):
    async def action(self, name: str, fields: Mapping[str, str] | None = None,
                     timeout: float | None = None) -> Message: ...


async def move(ami: Actions, m: Move, queue_log: bool = False,
               dialplan: Dialplan = DEFAULT_DIALPLAN) -> None:
    log.info("call %s: moving from %s to %s (%s)", m.uniqueid, m.from_queue, m.to_queue, m.reason)
    await ami.action("Setvar", {"Channel": m.channel, "Variable": IVR_MOVE, "Value": m.reason})
    try:
        await ami.action("Redirect", {"Channel": m.channel, "Context": DESTINATIONS_CONTEXT,
                                      "Exten": dialplan.extension(m.to_queue), "Priority": "1"})
    except Exception:
        await ami.action("Setvar", {"Channel": m.channel, "Variable": IVR_MOVE, "Value": ""})
        raise
    if queue_log:
        await log_decision(ami, m.from_queue, m.uniqueid, QUEUE_LOG_MOVE, f"{m.reason}|{m.to_queue}")


# ivr's own queue_log events, for QueueMetrics, Asternic and `ivr ledger reconcile`.
QUEUE_LOG_MOVE = "IVRMOVE"            # data1: reason (timeout, withdrawn), data2: the queue moved to
QUEUE_LOG_ESCALATE = "IVRESCALATE"    # data1: result, data2: via (api, transfer)


async def log_decision(ami: Actions, queue: str, uniqueid: str, event: str, message: str) -> None:
    """A row in Asterisk's queue_log saying why ivr acted; a failure is only logged."""
    try:
        await ami.action("QueueLog", {"Queue": queue, "Event": event, "Uniqueid": uniqueid,
                                      "Interface": "ivr", "Message": message})
    except Exception as exc:
        log.warning("call %s: %s not written to queue_log: %s", uniqueid, event, exc)


async def escalate(ami: Actions, channel: str, uniqueid: str) -> None:
    """Take the caller out of the operator's call into the engineers' queue."""
    log.info("call %s: escalating to engineers", uniqueid)
    await ami.action("Redirect", {"Channel": channel, "Context": DESTINATIONS_CONTEXT,
                                  "Exten": "engineers", "Priority": "1"})


ABUSE_CONTEXT = "ivr-abuse"


async def warn(ami: Actions, channel: str, uniqueid: str) -> None:
    """Play the abuse warning to the caller, then bridge them with the operator again.

    Both leave their bridge at once (a Redirect with ExtraChannel): the caller to
    [ivr-abuse] warn, which plays the warning and bridges back to IVR_PEER; the
    operator to [ivr-abuse] hold, where they wait for it.
    """
    reply = await ami.action("Getvar", {"Channel": channel, "Variable": "BRIDGEPEER"})
    peer = reply.get("Value") or ""
    if not peer:
        raise RuntimeError("the caller is not in a call with an operator")
    log.info("call %s: abuse warning played (operator's channel %s)", uniqueid, peer)
    await ami.action("Setvar", {"Channel": channel, "Variable": "IVR_PEER", "Value": peer})
    await ami.action("Redirect", {"Channel": channel, "Context": ABUSE_CONTEXT, "Exten": "warn",
                                  "Priority": "1", "ExtraChannel": peer,
                                  "ExtraContext": ABUSE_CONTEXT, "ExtraExten": "hold",
                                  "ExtraPriority": "1"})


async def end_for_abuse(ami: Actions, channel: str, uniqueid: str) -> None:
    """The caller hears that the call is ended, then is hung up; the operator is free."""
    log.info("call %s: ended by the operator for abuse", uniqueid)
    await ami.action("Redirect", {"Channel": channel, "Context": ABUSE_CONTEXT, "Exten": "end",
                                  "Priority": "1"})


async def transfer(ami: Actions, channel: str, uniqueid: str, to: str,
                   dialplan: Dialplan = DEFAULT_DIALPLAN) -> str:
    """What an operator's blind transfer does, done for them: the caller to the
    supervisor number (9001) or the read-back one (9002), in [ivr-agents]; the number."""
    number = dialplan.transfers[to]
    log.info("call %s: transferred to %s (%s)", uniqueid, number, to)
    await ami.action("Redirect", {"Channel": channel, "Context": AGENTS_CONTEXT,
                                  "Exten": number, "Priority": "1"})
    return number


CALLBACK_PLACE_CONTEXT = "ivr-callback-place"   # judge.CALLBACK_PLACE_CONTEXT
CALLBACK_DIAL_CONTEXT = "ivr-callback"
# A placeholder waits as long as a caller could: a day, then Asterisk gives up on it.
PLACEHOLDER_TIMEOUT_MS = 86_400_000


async def place_callback(ami: Actions, exten: str, callback: str, number: str, queue: str,
                         prio: int, placement: int, account: str = "", area: str = "") -> None:
    """A placeholder for a callback: Local/EXTEN@ivr-callback-place;2 joins `queue` with
    QUEUE_PRIO `prio` (the caller's place) and the customer's number as caller ID, and
    rings there unanswered; with the customer's account and area, for the agent's card.
    When an agent takes it, app_queue answers it, so its ;1 half starts at
    [ivr-callback] dial, which asks ivr whether to dial the customer."""
    log.info("callback %s: placeholder %d for %s joins %s", callback, placement, number, queue)
    await ami.action("Originate", {
        "Channel": f"Local/{exten}@{CALLBACK_PLACE_CONTEXT}/n", "Context": CALLBACK_DIAL_CONTEXT,
        "Exten": "dial", "Priority": "1", "Timeout": str(PLACEHOLDER_TIMEOUT_MS), "Async": "true",
        "CallerID": f'"{number}" <{number}>',
        "Variable": f"_IVR_CALLBACK={callback},_IVR_CB_N={placement},_IVR_CB_PRIO={prio},"
                    f"_IVR_CB_QUEUE={queue},_IVR_CB_ACCOUNT={account},_IVR_CB_AREA={area}"})


async def drop_placeholder(ami: Actions, channel: str, callback: str, queue: str = "",
                           uniqueid: str = "", queue_log: bool = False) -> None:
    """Take a cancelled callback's placeholder out of its queue: withdrawn, not abandoned
    (with `queue_log`, queue_log says so too, as for ivr's moves)."""
    log.info("callback %s: its placeholder %s leaves the queue", callback, channel)
    await ami.action("Setvar", {"Channel": channel, "Variable": IVR_MOVE, "Value": "withdrawn"})
    await ami.action("Hangup", {"Channel": channel})
    if queue_log and queue and uniqueid:
        await log_decision(ami, queue, uniqueid, QUEUE_LOG_MOVE, "withdrawn|")
