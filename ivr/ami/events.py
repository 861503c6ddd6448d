"""Typed AMI events: the few the journey tracker needs, parsed from Messages.

Times are integer microseconds on Asterisk's own clock (the `Timestamp:`
header that `timestampevents = yes` adds), so a 30.000 s judgement never
depends on when ivr happened to read the bytes.  Everything else is dropped
here, in one place, so the tracker sees only what it understands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ivr.ami.codec import Message

# Channel variables the tracker listens to (VarSet events).
QUEUESTATUS = "QUEUESTATUS"
IVR_MOVE = "IVR_MOVE"   # set by ivr right before it moves a caller
IVR_ACCOUNT = "IVR_ACCOUNT"   # set by the dialplan once the caller is identified
IVR_AREA = "IVR_AREA"
QUEUE_PRIO = "QUEUE_PRIO"   # the caller's place in a queue (routing/repeats.py), set before Queue()


@dataclass(frozen=True, slots=True)
class Place:
    """Where a channel is in the dialplan: its snapshot's Context, Exten, Priority."""

    context: str = ""
    exten: str = ""
    priority: str = ""

    @property
    def known(self) -> bool:
        return bool(self.context or self.exten or self.priority)


@dataclass(frozen=True, slots=True)
class CallerJoined:
    ts: int
    uniqueid: str
    channel: str
    caller: str
    queue: str
    linkedid: str = ""
    place: Place = Place()     # where Queue() ran


@dataclass(frozen=True, slots=True)
class CallerLeft:
    """QueueCallerLeave, or QueueCallerAbandon when `abandon` is set.

    Asterisk raises QueueCallerAbandon for timeouts and withdrawals too, so
    neither tells on its own why the caller left; the tracker decides.  The
    channel's Context and Exten say where it is now: still where it joined,
    or somewhere else (the queue's exit-key context, a Redirect's target).
    """

    ts: int
    uniqueid: str
    queue: str
    abandon: bool
    place: Place = Place()
    holdtime: int | None = None   # QueueCallerAbandon's, whole seconds


@dataclass(frozen=True, slots=True)
class AgentRinging:
    ts: int
    uniqueid: str
    queue: str
    member: str


@dataclass(frozen=True, slots=True)
class AgentAnswered:
    ts: int
    uniqueid: str
    queue: str
    member: str
    holdtime: int          # Asterisk's own figure, whole seconds


@dataclass(frozen=True, slots=True)
class VarSet:
    ts: int
    uniqueid: str
    variable: str
    value: str


@dataclass(frozen=True, slots=True)
class Hangup:
    ts: int
    uniqueid: str
    place: Place = Place()     # where the channel's dialplan was when it ended
    cause: int | None = None   # Q.850: 0 none given, 16 normal clearing, 19 no answer


@dataclass(frozen=True, slots=True)
class HangupAsked:
    """HangupRequest: the channel's far end hung up (its driver queued the hang-up: a
    BYE, a CANCEL).  Not SoftHangupRequest, which is the PBX or an AMI client ending it."""

    ts: int
    uniqueid: str


@dataclass(frozen=True, slots=True)
class PbxShutdown:
    """The PBX is shutting down and hangs up this channel (SoftHangupRequest, SHUTDOWN flag).

    It comes before the channel's QueueCallerAbandon and Hangup; the Shutdown
    event itself only comes after them.
    """

    ts: int
    uniqueid: str


@dataclass(frozen=True, slots=True)
class MemberState:
    ts: int
    queue: str
    member: str
    status: int            # Asterisk device state: 1 not in use, 2 in use, 6 ringing...
    paused: bool
    in_call: bool
    local: bool = False    # a Local/ channel member (FreePBX style): see journeys.Member


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    ts: int
    queue: str
    member: str


Event = (CallerJoined | CallerLeft | AgentRinging | AgentAnswered | VarSet
         | Hangup | HangupAsked | PbxShutdown | MemberState | MemberRemoved)

# Asterisk's soft-hangup flag for "the PBX is shutting down" (AST_SOFTHANGUP_SHUTDOWN).
SOFTHANGUP_SHUTDOWN = 0x04

_TIMESTAMP = re.compile(r"[0-9]{1,12}(\.[0-9]{0,9})?")
_TIMESTAMP_US = re.compile(r"[0-9]{1,12}\.[0-9]{6}")
MAX_WAIT_S = 86_400     # a QueueEntry Wait beyond a day is nonsense: clamp it
MAX_DEVICE_STATE = 99   # Asterisk's device states run 0 to 9
MAX_CAUSE = 127         # Q.850 causes run 1 to 127 (0: none given)
_NUMBER = re.compile(r"[0-9]{1,12}")    # ASCII digits only (str.isdigit takes others)

IVR_PROBE = "IVR_PROBE"   # a global ivr sets after login: is the dialplan class read (pbx/classes.py)
WATCHED_VARIABLES = frozenset({QUEUESTATUS, IVR_MOVE, IVR_ACCOUNT, IVR_AREA, IVR_PROBE,
                               QUEUE_PRIO})


def timestamp_us(msg: Message, now: float) -> int:
    """Asterisk's event time in microseconds; `now` if the header is absent."""
    return _stamp_us(msg.get("Timestamp"), now)


def _stamp_us(raw: str | None, now: float) -> int:
    if raw is None:
        return round(now * 1_000_000)
    if _TIMESTAMP_US.fullmatch(raw):     # as Asterisk prints it: %ld.%06lu
        return int(raw.replace(".", ""))
    if not _TIMESTAMP.fullmatch(raw):
        raise ValueError(f"bad Timestamp {raw[:40]!r}")
    whole, _, frac = raw.partition(".")
    return int(whole) * 1_000_000 + int((frac + "000000")[:6])


def _place(m: Message) -> Place:
    return Place(m.get("Context") or "", m.get("Exten") or "", m.get("Priority") or "")


def _joined(m: Message, ts: int) -> Event:
    return CallerJoined(ts, m["Uniqueid"], m["Channel"], m.get("CallerIDNum") or "", m["Queue"],
                        m.get("Linkedid") or "", _place(m))


def _left(m: Message, ts: int) -> Event:
    abandon = m.event == "QueueCallerAbandon"
    held = m.get("HoldTime") if abandon else None
    return CallerLeft(ts, m["Uniqueid"], m["Queue"], abandon, _place(m),
                      _seconds(m, "HoldTime") if held and held.isdigit() else None)


def _seconds(m: Message, header: str) -> int:
    """A whole number of seconds (HoldTime, TalkTime) within a day, else ValueError naming
    the call: a number beyond any wait would overflow the ledger's columns."""
    return _bounded(m, header, MAX_WAIT_S)


def _bounded(m: Message, header: str, most: int) -> int:
    raw = m.get(header) or "0"
    if not _NUMBER.fullmatch(raw) or int(raw) > most:
        raise ValueError(f"{header} {raw[:24]!r} is not a number from 0 to {most}"
                         f" (call {m.get('Uniqueid') or '?'})")
    return int(raw)


def _ringing(m: Message, ts: int) -> Event:
    return AgentRinging(ts, m["Uniqueid"], m["Queue"], _member(m))


def _answered(m: Message, ts: int) -> Event:
    return AgentAnswered(ts, m["Uniqueid"], m["Queue"], _member(m), _seconds(m, "HoldTime"))


def _varset(m: Message, ts: int) -> Event | None:
    # Inherited variables (Set(__IVR_AREA=...)) are named with their underscores.
    name = (m.get("Variable") or "").lstrip("_")
    if name not in WATCHED_VARIABLES:
        return None
    return VarSet(ts, m["Uniqueid"], name, m.get("Value") or "")


def _hangup(m: Message, ts: int) -> Event:
    cause = m.get("Cause") or ""
    return Hangup(ts, m["Uniqueid"], _place(m),
                  int(cause) if _NUMBER.fullmatch(cause) and int(cause) <= MAX_CAUSE else None)


def _hangup_asked(m: Message, ts: int) -> Event:
    return HangupAsked(ts, m["Uniqueid"])


def _soft_hangup(m: Message, ts: int) -> Event | None:
    cause = m.get("Cause") or "0"
    if not cause.isdigit() or not int(cause) & SOFTHANGUP_SHUTDOWN:
        return None
    return PbxShutdown(ts, m["Uniqueid"])


def _member_state(m: Message, ts: int) -> Event:
    return MemberState(ts, m["Queue"], _member(m), _bounded(m, "Status", MAX_DEVICE_STATE),
                       paused=m.get("Paused") == "1", in_call=m.get("InCall") == "1",
                       local=_is_local(m))


def _is_local(m: Message) -> bool:
    interface = m.get("Interface") or m.get("Location") or ""
    return interface[:6].lower() == "local/"


def _member_removed(m: Message, ts: int) -> Event:
    return MemberRemoved(ts, m["Queue"], _member(m))


def _member(m: Message) -> str:
    return m.get("MemberName") or m.get("Name") or m["Interface"]


_PARSERS: dict[str, Callable[[Message, int], Event | None]] = {
    "QueueCallerJoin": _joined,
    "QueueCallerLeave": _left,
    "QueueCallerAbandon": _left,
    "AgentCalled": _ringing,
    "AgentConnect": _answered,
    "VarSet": _varset,
    "Hangup": _hangup,
    "HangupRequest": _hangup_asked,
    "SoftHangupRequest": _soft_hangup,
    "QueueMemberStatus": _member_state,
    "QueueMemberAdded": _member_state,
    "QueueMemberPause": _member_state,
    "QueueMemberRemoved": _member_removed,
}


def followed_events() -> tuple[str, ...]:
    """The names of the events parse() turns into typed events."""
    return tuple(_PARSERS)


def parse(msg: Message, now: float) -> Event | None:
    """The typed event for `msg`, or None for the events we do not follow.

    Raises KeyError if a followed event lacks a header it must have.
    """
    return parse_timed(msg, now)[0]


def parse_timed(msg: Message, now: float) -> tuple[Event | None, bool]:
    """parse(), and whether Asterisk stamped the event (False: it is timed by `now`,
    when ivr read it, which a backlog in Asterisk's manager queue makes late)."""
    name = msg.event
    parser = _PARSERS.get(name) if name is not None else None
    if parser is None:
        return None, True
    raw = msg.get("Timestamp")
    return parser(msg, _stamp_us(raw, now)), raw is not None


@dataclass(frozen=True, slots=True)
class WaitingCaller:
    uniqueid: str
    channel: str
    caller: str
    queue: str
    wait_s: int            # QueueEntry's Wait: whole seconds, all Asterisk tells


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What Asterisk says is true right now, taken after every login."""

    taken_at: int
    waiting: tuple[WaitingCaller, ...]
    members: tuple[MemberState, ...]
    live_channels: frozenset[str]


def snapshot(queue_status: list[Message], channels: list[Message], now: float) -> Snapshot:
    """Build a Snapshot from QueueStatus and CoreShowChannels list events."""
    taken_at = round(now * 1_000_000)
    waiting = tuple(
        WaitingCaller(m["Uniqueid"], m["Channel"], m.get("CallerIDNum") or "",
                      m["Queue"], _wait_seconds(m.get("Wait")))
        for m in queue_status if m.event == "QueueEntry")
    members = tuple(
        MemberState(taken_at, m["Queue"], _member(m), int(m.get("Status") or 0),
                    paused=m.get("Paused") == "1", in_call=m.get("InCall") == "1",
                    local=_is_local(m))
        for m in queue_status if m.event == "QueueMember")
    live = frozenset(m["Uniqueid"] for m in channels if m.event == "CoreShowChannel")
    return Snapshot(taken_at, waiting, members, live)


def _wait_seconds(raw: str | None) -> int:
    """QueueEntry's Wait, clamped: a snapshot must never fail over one odd row."""
    digits = raw if raw is not None and raw.isascii() and raw.isdigit() and len(raw) < 7 else "0"
    return min(int(digits), MAX_WAIT_S)


# The list replies of the snapshot ivr asks for after every login, and the
# event the client waits for before it asks (the PBX has loaded its modules).
SNAPSHOT_EVENTS = ("QueueParams", "QueueMember", "QueueEntry", "QueueStatusComplete",
                   "CoreShowChannel", "CoreShowChannelsComplete", "FullyBooted")
# One pattern, matched in C: anything that is not an event (responses), a
# followed event, a snapshot list reply, or a VarSet of a watched variable.
_WANTED = re.compile(rb"(?!Event: )|Event: (?:(?:%s)\r?(?:\n|$)|VarSet\r?\n.*\nVariable: _*(?:%s)\r?(?:\n|$))" % (
    b"|".join(re.escape(name.encode()) for name in (*_PARSERS, *SNAPSHOT_EVENTS) if name != "VarSet"),
    b"|".join(re.escape(name.encode()) for name in WATCHED_VARIABLES)), re.S)


# Whether a raw AMI frame may matter to ivr, decided on bytes before decoding
# (a match is truthy).  Responses always matter; events only if parse() follows
# them or the snapshot reads them, and VarSet only for the variables it
# watches.  Most of a busy PBX's traffic (Newexten, VarSet of other variables,
# DeviceStateChange...) is never decoded at all.  A pattern's bound .match, so
# the Codec filters all frames of a read without a Python call per frame.
wanted: Callable[[bytes], re.Match[bytes] | None] = _WANTED.match
