"""After every login (Pbx.resync): the server-side event filter, then a fresh snapshot.

The snapshot is QueueStatus then CoreShowChannels, timed when ivr asked for it;
Session.on_snapshot turns it into facts, as `ivr replay` does with a
recording's list replies.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from ivr.ami import server_filter
from ivr.ami.client import AmiClient
from ivr.ami.errors import AmiError
from ivr.ami.codec import Message

log = logging.getLogger(__name__)


async def ask(ami: AmiClient, clock: Callable[[], float]
              ) -> tuple[list[Message], list[Message], float]:
    """QueueStatus's and CoreShowChannels's list items, and when they were asked for."""
    taken_at = clock()
    status = await ami.action_list("QueueStatus")
    channels = await ami.action_list("CoreShowChannels")
    return status, channels, taken_at


async def install_filter(ami: AmiClient, pbx: str, was: str) -> str:
    """Ask Asterisk to send only what ivr follows, for this session (server_filter.py);
    the session's filter now (advanced, regex, or why none), `was` the one before.
    Include filters drop everything else: a set only partly installed would lose
    events, so a failure after the first rule opens the session to all again."""
    try:
        version = (await ami.action("CoreSettings")).get("AsteriskVersion") or ""
    except AmiError:     # no permission for it: the regex filters work since Asterisk 10
        version = ""
    kind = server_filter.dialect(version)
    first, *rest = server_filter.rules(kind)
    try:
        await ami.action("Filter", first.fields())
    except AmiError as exc:
        return _no_filter(pbx, was, f"none: Filter refused ({exc})")
    try:
        await asyncio.gather(*(ami.action("Filter", r.fields()) for r in rest))
    except AmiError as exc:
        await ami.action("Filter", server_filter.Rule(None, ".").fields())   # all again
        return _no_filter(pbx, was, f"none: a Filter rule refused ({exc})")
    if was != kind:
        log.info("AMI (pbx %s): Asterisk %s filters events for ivr (%s filters, %d rules)",
                 pbx, version or "of unknown version", kind, 1 + len(rest))
    return kind


def _no_filter(pbx: str, was: str, why: str) -> str:
    if was != why:
        log.warning("AMI (pbx %s): no server-side event filter (%s): Asterisk sends every "
                    "event. Give the AMI user write = system, or its eventfilter lines "
                    "(manager_ivr.conf of `ivr kit`)", pbx, why.removeprefix("none: "))
    return why
