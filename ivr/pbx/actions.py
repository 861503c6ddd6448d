"""Doing: turn routing decisions into AMI actions, one function per action.

The dialplan owns destinations: a move sends the caller to the named
extension `<queue>` in context ivr-queues.  IVR_MOVE is set first so the
reason is on the AMI stream before the caller leaves the queue (the tracker
reads it from there, in replays too).
"""

from __future__ import annotations

import logging
from typing import Mapping, Protocol

from ivr.ami.codec import Message
from ivr.ami.events import IVR_MOVE
from ivr.routing.policy import Move

log = logging.getLogger(__name__)

DESTINATIONS_CONTEXT = "ivr-queues"


class Actions(Protocol):
    async def action(self, name: str, fields: Mapping[str, str] | None = None,
                     timeout: float | None = None) -> Message: ...


async def move(ami: Actions, m: Move, queue_log: bool = False) -> None:
    log.info("call %s: moving from %s to %s (%s)", m.uniqueid, m.from_queue, m.to_queue, m.reason)
    await ami.action("Setvar", {"Channel": m.channel, "Variable": IVR_MOVE, "Value": m.reason})
    try:
        await ami.action("Redirect", {"Channel": m.channel, "Context": DESTINATIONS_CONTEXT,
                                      "Exten": m.to_queue, "Priority": "1"})
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


AGENTS_CONTEXT = "ivr-agents"
TRANSFERS = {"supervisor": "9001", "read_back": "9002"}   # the console's transfers


async def transfer(ami: Actions, channel: str, uniqueid: str, to: str) -> None:
    """What an operator's blind transfer does, done for them: the caller to 9001 (a
    supervisor) or 9002 (the call's numbers read back), in [ivr-agents]."""
    log.info("call %s: transferred to %s (%s)", uniqueid, TRANSFERS[to], to)
    await ami.action("Redirect", {"Channel": channel, "Context": AGENTS_CONTEXT,
                                  "Exten": TRANSFERS[to], "Priority": "1"})
