"""Replay AMI bytes through the service's own pipeline, as it would have seen them.

    bytes -> Codec(keep=events.wanted) -> Session.on_message(msg, now) -> facts

Session (pbx/session.py) is the very code the service's Pbx runs for each
event; only the clock differs.  `now` is what Pbx.on_event would have read
from its clock: the arrival time of the chunk a message came in (a
recording, ivr/ami/recording.py), or, for a plain transcript that has none,
the wall clock as the message is decoded.  Never a constant: an event without
a Timestamp header is timed by `now`, and a constant would make every such
wait 0 (an answered or abandoned wait is then Asterisk's HoldTime, as it is
live).  Events with a Timestamp are timed by it whatever
`now` is.

List replies of a snapshot (QueueStatus, then CoreShowChannels: events that
carry an ActionID) are collected, not followed, as AmiClient does, and handed
to Session.on_snapshot when the CoreShowChannels list completes, as
Pbx.resync does after a login.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ivr.ami import events
from ivr.ami.codec import Codec, Message
from ivr.ami.recording import RECEIVED, read_records
from ivr.calls.facts import Fact, JourneyEnded
from ivr.calls.journeys import Journey
from ivr.calls.tracker import Tracker
from ivr.calls.records import CallRecord
from ivr.pbx.session import Session

log = logging.getLogger(__name__)

# Every connection begins with this banner, so in a recording the first chunk
# of a new connection starts with it: a fresh codec then, as AmiClient makes
# one per connection (a frame cut short by the drop must not swallow the next).
_BANNER = b"Asterisk Call Manager/"
_STATUS_DONE, _CHANNELS_DONE = "QueueStatusComplete", "CoreShowChannelsComplete"


@dataclass(frozen=True, slots=True)
class ReplayedVisit:
    queue: str
    outcome: str             # an exit outcome; `waiting` or `leaving` while the visit is open
    wait_ms: int | None      # None while open, or when the exit was unobserved
    member: str = ""


@dataclass(frozen=True, slots=True)
class ReplayedCall:
    uniqueid: str
    caller: str
    payable: bool
    in_progress: bool        # the recording ended before the call did
    visits: tuple[ReplayedVisit, ...]
    entered_us: int          # first entry into any queue: the listing's order

    @classmethod
    def of_record(cls, r: CallRecord) -> ReplayedCall:
        """A call that ended, as its ledger record has it."""
        visits = tuple(ReplayedVisit(v.queue, v.outcome, v.wait_ms, v.member) for v in r.visits)
        return cls(r.uniqueid, r.caller, r.payable, False, visits, r.entered_us)

    def to_json(self) -> dict[str, Any]:
        return {"uniqueid": self.uniqueid, "caller": self.caller, "payable": self.payable,
                "in_progress": self.in_progress,
                "visits": [{"queue": v.queue, "outcome": v.outcome, "wait_ms": v.wait_ms,
                            "member": v.member} for v in self.visits]}


@dataclass
class Replay:
    tracker: Tracker = field(default_factory=Tracker)
    # The clock for messages that came without an arrival time (the container's clock).
    clock: Callable[[], float] = time.time
    skip_noise: bool = True          # events.wanted, as the service decodes
    facts: list[Fact] = field(default_factory=list)
    lists: dict[str, list[Message]] = field(default_factory=dict)   # ActionID -> list items
    untimed: int = 0                 # followed events timed by the wall clock (no Timestamp, no arrival)
    malformed: int = 0
    frames: int = 0                  # AMI frames read: decoded, or skipped as noise unread
    recorded: int = 0                # chunks that came with an arrival time (a recording's)
    session: Session = field(init=False, repr=False)
    _at: float | None = field(default=None, init=False, repr=False)   # the message's arrival
    _codec: Codec | None = field(default=None, init=False, repr=False)
    _sent: Codec = field(default_factory=Codec, init=False, repr=False)
    # QueueStatus ActionID -> when it was sent, or when its reply began.
    _asked: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _opened: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _status: tuple[str, list[Message]] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.session = Session(self.tracker, self.apply, self._untimestamped, self.tracker.pbx)

    @property
    def events(self) -> int:
        """Followed events parsed."""
        return self.session.events

    # -- input ---------------------------------------------------------------

    def receive(self, data: bytes, at: float | None = None) -> None:
        """One chunk read from the PBX; `at` its arrival time, if known."""
        self.recorded += at is not None
        codec = self._codec
        if codec is not None and at is not None and data.startswith(_BANNER):
            self._end_connection()
            codec = None
        if codec is None:
            codec = self._codec = Codec(keep=events.wanted if self.skip_noise else None)
        codec.receive_data(data)
        self._drain(codec, at)

    def sent(self, data: bytes, at: float | None) -> None:
        """One frame ivr sent: when it asked for a snapshot is when the snapshot was taken."""
        if at is None or not data:
            return
        self._sent.receive_data(data)
        while (item := self._sent.next_event()) is not None:
            if (isinstance(item, Message) and (action_id := item.get("ActionID"))
                    and (item.get("Action") or "").lower() == "queuestatus"):
                self._asked[action_id] = at

    def close(self) -> Replay:
        """The end of the stream."""
        self._end_connection()
        return self

    def _end_connection(self) -> None:
        if self._codec is not None:
            self._codec.receive_data(b"")
            self._drain(self._codec, None)
            self.malformed += self._codec.malformed
            self.frames += self._codec.skipped
            self._codec = None
        self._status = None

    # -- the pipeline --------------------------------------------------------

    def _drain(self, codec: Codec, at: float | None) -> None:
        while (item := codec.next_event()) is not None:
            if isinstance(item, Message):
                self.frames += 1
                self._message(item, at)

    def _message(self, msg: Message, at: float | None) -> None:
        now = self.clock() if at is None else at
        action_id = msg.action_id
        if msg.response is not None:
            if action_id and (msg.get("EventList") or "").lower() == "start":
                self._opened[action_id] = now
                self.lists[action_id] = []
            return
        if action_id:          # an item of a list reply, never a live event
            if (msg.get("EventList") or "").lower() == "complete":
                self._list_complete(action_id, msg.event or "", now)
            elif msg.event is not None:
                self.lists.setdefault(action_id, []).append(msg)
            return
        self._at = at
        self.session.on_message(msg, now)     # what Pbx.on_event runs

    def _untimestamped(self, msg: Message) -> None:
        if self._at is None:
            self.untimed += 1

    def _list_complete(self, action_id: str, name: str, now: float) -> None:
        items = self.lists.get(action_id, [])
        if name == _STATUS_DONE:
            self._status = (action_id, items)
        elif name == _CHANNELS_DONE and self._status is not None:
            status_id, status = self._status
            self._status = None
            # Pbx.resync takes the snapshot's time just before it asks for QueueStatus.
            taken_at = self._asked.get(status_id, self._opened.get(status_id, now))
            try:
                self.session.on_snapshot(status, items, taken_at)
            except (KeyError, ValueError) as exc:
                log.warning("skipping the snapshot of %s: %s", status_id, exc)

    def apply(self, facts: list[Fact]) -> None:
        self.facts += facts

    def of(self, kind: type) -> list[Fact]:
        return [f for f in self.facts if isinstance(f, kind)]

    # -- output --------------------------------------------------------------

    def calls(self) -> list[ReplayedCall]:
        """Every call seen: those that ended, then still in progress, in order of entry."""
        ended = [ReplayedCall.of_record(f.record) for f in self.facts if isinstance(f, JourneyEnded)]
        open_ = [_in_progress(j) for j in self.tracker.journeys.values()]
        return sorted(ended + open_, key=lambda c: c.entered_us)


def _in_progress(j: Journey) -> ReplayedCall:
    visits = [ReplayedVisit(v.queue, v.outcome, v.wait_ms, v.member) for v in j.done]
    if j.queue is not None:
        visits.append(ReplayedVisit(j.queue, j.state.value, None))
    return ReplayedCall(j.uniqueid, j.caller, j.payable, True, tuple(visits), j.first_entered_us)


def replay_files(paths: Iterable[str | os.PathLike[str]], tracker: Tracker | None = None) -> Replay:
    """Replay files in order, as one stream (a recording's rotated parts, oldest first).

    Raises OSError for a file that cannot be read, ValueError for a damaged recording.
    """
    replay = Replay(tracker if tracker is not None else Tracker())
    for path in paths:
        for direction, at, data in read_records(path):
            if direction == RECEIVED:
                replay.receive(data, at)
            else:
                replay.sent(data, at)
    return replay.close()


def to_json(calls: Iterable[ReplayedCall]) -> dict[str, Any]:
    return {"calls": [c.to_json() for c in calls]}
