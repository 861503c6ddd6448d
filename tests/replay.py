"""Replay an AMI transcript captured from the lab through the real pipeline.

Bytes -> Codec -> events.parse -> Tracker -> facts (and Metrics, if given),
exactly as the service does, but with the transcript's own clock.  List
replies to the capture's snapshot actions (ActionID snap-*) are collected
into a Snapshot instead, as AmiClient.action_list would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ivr.ami import events
from ivr.ami.codec import Codec, Message
from ivr.journeys import Fact, Tracker
from ivr.metrics import Metrics

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Replay:
    tracker: Tracker = field(default_factory=Tracker)
    metrics: Metrics | None = None
    facts: list[Fact] = field(default_factory=list)
    lists: dict[str, list[Message]] = field(default_factory=dict)
    events: int = 0
    malformed: int = 0

    def feed(self, data: bytes, chunks: Iterable[int] = (), keep: bool = True) -> "Replay":
        """As the service decodes: noise skipped undecoded (events.wanted) unless keep=False."""
        codec, sizes, pos = Codec(keep=events.wanted if keep else None), iter(chunks), 0
        while pos < len(data):
            size = next(sizes, len(data) - pos)
            codec.receive_data(data[pos:pos + size])
            pos += size
            self._drain(codec)
        codec.receive_data(b"")
        self._drain(codec)
        self.malformed = codec.malformed
        return self

    def _drain(self, codec: Codec) -> None:
        while (item := codec.next_event()) is not None:
            if isinstance(item, Message):
                self._message(item)

    def _message(self, msg: Message) -> None:
        if msg.action_id and msg.action_id.startswith("snap-"):
            if msg.event and msg.get("EventList") != "Complete":
                self.lists.setdefault(msg.action_id, []).append(msg)
            return
        event = events.parse(msg, now=0.0) if msg.event else None
        if event is None:
            return
        self.events += 1
        self.apply(self.tracker.handle(event))

    def apply(self, facts: list[Fact]) -> None:
        self.facts += facts
        if self.metrics is not None:
            for fact in facts:
                self.metrics.record(fact)

    def of(self, kind: type) -> list[Fact]:
        return [f for f in self.facts if isinstance(f, kind)]


def transcript(name: str) -> bytes:
    return (FIXTURES / f"{name}.ami").read_bytes()
