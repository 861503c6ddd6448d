"""Replay an AMI transcript captured from the lab through the real pipeline.

The pipeline is ivr's own (ivr/pbx/replay.py, what `ivr replay` runs): bytes ->
Codec -> pbx/session.Session, the service's own path (events.parse_timed ->
Tracker -> facts), with the snapshot's list replies handed to Tracker.resync.  This adds what the tests want on top: any
chunking of the bytes, the filter switched off, and Metrics fed the facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, TypeVar, overload

from ivr.calls.facts import Fact
from ivr.metrics.families import Metrics
from ivr.pbx.replay import Replay as _Replay

FIXTURES = Path(__file__).parent / "fixtures"
F = TypeVar("F", bound=Fact)


@dataclass
class Replay(_Replay):
    metrics: Metrics | None = None

    def feed(self, data: bytes, chunks: Iterable[int] = (), keep: bool = True) -> "Replay":
        """As the service decodes: noise skipped undecoded (events.wanted) unless keep=False."""
        self.skip_noise = keep
        sizes, pos = iter(chunks), 0
        while pos < len(data):
            size = next(sizes, len(data) - pos)
            self.receive(data[pos:pos + size])
            pos += size
        self.close()
        return self

    def apply(self, facts: list[Fact]) -> None:
        super().apply(facts)
        if self.metrics is not None:
            for fact in facts:
                self.metrics.record(fact)

    @overload
    def of(self, kind: type[F]) -> list[F]: ...
    @overload
    def of(self, kind: type) -> list[Fact]: ...

    def of(self, kind: type[Any]) -> list[Any]:
        """The facts of one kind, typed as that kind when it is one: `r.of(Exited)[0].outcome`."""
        return super().of(kind)


def transcript(name: str) -> bytes:
    return (FIXTURES / f"{name}.ami").read_bytes()
