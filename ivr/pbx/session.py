"""One PBX as ivr follows it: each AMI message, with the time it was read, becomes facts.

    Message -> events.parse_timed(msg, now) (typed event, Asterisk's Timestamp or `now`)
    -> Tracker.handle (the journey state machine) -> facts -> emit

Session is that path, the only copy of it: the service's Pbx feeds it the
events AmiClient dispatches, with its clock's `now`; `ivr replay`
(pbx/replay.py) feeds it a recording's messages, with their arrival times.
A snapshot (QueueStatus and CoreShowChannels after a login) takes the same
way to Tracker.resync.

Pbx is the live side: its AMI client, its router, its resync after every
login (pbx/snapshot.py: the server-side event filter, then the snapshot) and
whether it is ready.  Its facts go to the app's consumers with its name.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Callable

from ivr.ami import events
from ivr.ami.client import AmiClient
from ivr.ami.codec import Message
from ivr.calls.facts import Fact
from ivr.calls.tracker import Tracker
from ivr.config import AmiConfig
from ivr.ami.errors import AmiError
from ivr.pbx import snapshot
from ivr.pbx.actions import Actions
from ivr.pbx.classes import PROBE, PROBE_WAIT_S, Classes, advice
from ivr.routing.router import Router

log = logging.getLogger(__name__)


def _ignore(msg: Message) -> None:
    return None


@dataclass(eq=False)
class Session:
    """Messages of one PBX's AMI session -> facts, handed to `emit`.

    `untimestamped` hears of each followed event that came without Asterisk's
    Timestamp (timed by `now`: when ivr read it)."""

    tracker: Tracker
    emit: Callable[[list[Fact]], None]
    untimestamped: Callable[[Message], None] = _ignore
    name: str = "default"
    events: int = 0         # followed events parsed

    def on_message(self, msg: Message, now: float) -> None:
        try:
            event, timed = events.parse_timed(msg, now)
        except (KeyError, ValueError) as exc:
            log.warning("pbx %s: skipping %s event: %s", self.name, msg.event, exc)
            return
        if event is None:
            return
        self.events += 1
        if not timed:
            self.untimestamped(msg)
        self.emit(self.tracker.handle(event, timed))

    def on_snapshot(self, status: list[Message], channels: list[Message], taken_at: float) -> None:
        """QueueStatus's and CoreShowChannels's list items, asked for at `taken_at`.
        Raises KeyError/ValueError for a snapshot that cannot be read."""
        self.emit(self.tracker.resync(events.snapshot(status, channels, taken_at)))


@dataclass(eq=False)
class Pbx:
    """One PBX ivr follows: its AMI session, its callers (tracker) and timers (router).

    Each has its own connection, resync and state: a reconnect of one never
    touches another's callers.  Its facts go to the app's consumers with its
    name (`deliver`, Services.apply: metrics label them, records carry it as `pbx`)."""

    name: str
    config: AmiConfig
    tracker: Tracker
    clock: Callable[[], float] = field(repr=False)
    deliver: Callable[[list[Fact], Pbx], None] = field(repr=False)
    count_untimestamped: Callable[[], None] = field(repr=False)
    ami: AmiClient = field(init=False)
    router: Router = field(init=False)
    session: Session = field(init=False, repr=False)
    ready: bool = False
    timestamps: bool = True     # every event of this connection so far had Asterisk's Timestamp
    event_filter: str = "off"   # this connection's: advanced, regex, off, or why none
    classes: Classes = field(default_factory=Classes)   # what its AMI user may read
    # This PBX's own consumers of its facts (metrics with its name, its router, the ledger).
    consumers: list[Callable[[Fact], None]] = field(default_factory=list)
    # Told after every resync, once the tracker holds the snapshot (callbacks/service.py).
    resynced: list[Callable[[Pbx], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session = Session(self.tracker, self._emit, self._untimestamped, self.name)

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def on_event(self, msg: Message) -> None:
        if self.classes.saw(msg):
            return                      # the class probe's echo: nothing of a call
        self.session.on_message(msg, self.clock())

    def _emit(self, facts: list[Fact]) -> None:
        self.deliver(facts, self)

    def emit(self, facts: list[Fact]) -> None:
        """Facts a service learnt of this PBX's calls outside AMI (a callback taken)."""
        self.deliver(facts, self)

    def _untimestamped(self, msg: Message) -> None:
        self.count_untimestamped()
        if self.timestamps:
            self.timestamps = False     # until the next login
            log.warning("AMI %s (pbx %s) sends events without Timestamp (%s, for one): "
                        "manager.conf has timestampevents = no, so waits are timed when ivr "
                        "reads them and waits are judged by Asterisk's HoldTime, in whole seconds; set "
                        "timestampevents = yes", self.address, self.name, msg.event)

    async def resync(self, ami: AmiClient) -> None:
        """After every login: take a fresh snapshot instead of trusting memory."""
        self.ready = False
        self.timestamps = True
        await self.install_filter(ami)
        self.session.on_snapshot(*await snapshot.ask(ami, self.clock))
        self.ready = True
        for told in self.resynced:
            told(self)
        log.info("pbx %s resynced: %d callers waiting, %d queue members", self.name,
                 sum(map(len, self.tracker.waiting_by_queue().values())),
                 len(self.tracker.members))
        await self.probe_classes(ami)

    async def probe_classes(self, ami: Actions) -> None:
        """Set the global PROBE: its VarSet comes back only if the user reads `dialplan`
        (pbx/classes.py).  A refused Setvar leaves the class unknown."""
        token = f"{self.name}-{self.clock():.6f}"
        self.classes.start(token)
        try:
            await ami.action("Setvar", {"Variable": PROBE, "Value": token})
        except (AmiError, TimeoutError) as exc:
            self.classes.probe = None
            log.warning("AMI %s (pbx %s): cannot probe its read classes (Setvar: %s)",
                        self.address, self.name, exc)
            return
        asyncio.get_running_loop().call_later(PROBE_WAIT_S, self._probe_expired, token)

    def _probe_expired(self, token: str) -> None:
        if self.classes.expire(token):
            log.warning("AMI user %s on %s (pbx %s) does not read the dialplan class: no "
                        "QUEUESTATUS, IVR_MOVE or caller's area reaches ivr, so queue exits "
                        "are told by the caller's channel and some say unknown_exit; in "
                        "manager.conf set  %s  and run `manager reload`", self.config.username,
                        self.address, self.name, advice(self.config.username))

    async def install_filter(self, ami: AmiClient) -> None:
        """Ask Asterisk to send only what ivr follows, for this session (snapshot.py)."""
        if not self.config.server_filter:
            self.event_filter = "off"
            return
        self.event_filter = await snapshot.install_filter(ami, self.name, self.event_filter)

    def on_ami_state(self, up: bool) -> None:
        if not up:
            self.ready = False
