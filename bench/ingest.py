"""Ingest throughput: ivr's pipeline against panoramisk 1.4's parser, same bytes.

    .venv-bench/bin/python bench/ingest.py [--calls 2000] [--runs 7] [--profile]

The stream is the lab captures scaled up (bench/scaled.py): distinct,
overlapping calls with all their Newexten/VarSet noise, fed in 64 KiB reads
as AmiClient reads them.  Timed, each on fresh objects (time.perf_counter,
the read chunks prepared beforehand):

  ivr pipeline    Codec -> events.parse -> Tracker.handle -> Metrics.record
                  (fresh CollectorRegistry) and LedgerWriter.on_fact (each
                  ended call's record handed to the ledger): the headline
  ivr as wired    build(config): AmiClient._drain -> Pbx.on_event, so the
                  client's routing and the Router's timers too
  + INFO logging  the same, logging at INFO to /dev/null as `ivr run` would
  panoramisk      AMIProtocol.data_received -> Message.from_line, with
                  handle_message replaced by a counter: its parsing alone,
                  the most favourable way to run it
  panoramisk + handle_message   its real handle_message, dispatch a no-op

The last line is `ingest_ratio_vs_panoramisk=<ivr pipeline / panoramisk parse>`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import logging
import os
import pstats
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import scaled
from machine import describe, median
from panoramisk.ami_protocol import AMIProtocol
from prometheus_client import CollectorRegistry

from ivr.ami import events
from ivr.ami.codec import Codec, Message
from ivr.app import build, overflow_rules
from ivr.config import AmiConfig, Config, LedgerConfig
from ivr.calls.tracker import Tracker
from ivr.ledger.offloop import OffLoop
from ivr.calls.records import DEFAULT_PBX
from ivr.ledger.store import Store
from ivr.ledger.writer import LedgerWriter, Spool
from ivr.metrics.families import Metrics

IVR = "ivr pipeline (Codec -> parse -> Tracker -> Metrics, ledger)"
PANORAMISK = "panoramisk 1.4 parse (data_received -> from_line)"
_STATE = tempfile.mkdtemp(prefix="ivr-bench-ingest-")
CONFIG = Config(ami=AmiConfig(username="bench", secret="bench"),
                ledger=LedgerConfig(url=f"sqlite:///{_STATE}/ledger.db"))


def pipeline(config: Config = CONFIG) -> tuple[Tracker, Metrics, LedgerWriter]:
    """Tracker, Metrics and the ledger's writer as build() makes them, fresh.  The
    writer is handed every record; its writes (another thread, in ivr) are not timed."""
    tracker = Tracker({q.name: round(q.sla_seconds * 1000) for q in config.queues})
    rules = overflow_rules(config)
    metrics = Metrics(CollectorRegistry(), config.queue_names,
                      [q.sla_seconds for q in config.queues],
                      [(r.from_queue, r.to_queue) for r in rules.values()])
    writer = LedgerWriter(OffLoop(Store(config.ledger_url())),
                          Spool(config.spool_path(), config.ledger.spool_max_records))
    return tracker, metrics, writer


def run_ivr(chunks: list[bytes], facts: list[Any] | None = None) -> tuple[int, float]:
    # As the service wires it: noise is skipped undecoded (AmiClient(keep=events.wanted)).
    codec = Codec(keep=events.wanted)
    tracker, metrics, writer = pipeline()
    parse, handle, clock = events.parse, tracker.handle, time.time
    record = metrics.recorder(DEFAULT_PBX)     # as build() hands the PBX's facts to metrics
    keep = writer.on_fact
    n = 0
    start = time.perf_counter()
    for chunk in chunks:
        codec.receive_data(chunk)
        while (item := codec.next_event()) is not None:
            if isinstance(item, Message):
                n += 1
                event = parse(item, clock())
                if event is not None:
                    for fact in handle(event):
                        record(fact)
                        keep(fact)
                        if facts is not None:
                            facts.append(fact)
    return n + codec.skipped, time.perf_counter() - start    # every event received


def run_ivr_app(chunks: list[bytes], log_info: bool = False) -> tuple[int, float]:
    async def main() -> tuple[int, float]:
        app = build(CONFIG)
        codec = app.ami._codec = Codec(keep=app.ami._keep)   # as AmiClient._session makes it
        drain = app.ami._drain     # what AmiClient._read_loop runs on every read
        start = time.perf_counter()
        for chunk in chunks:
            codec.receive_data(chunk)
            drain(codec)
        elapsed = time.perf_counter() - start
        app.router.close()
        return app.ami.events_received, elapsed

    root = logging.getLogger()
    handler = logging.FileHandler(os.devnull)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if log_info:
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    try:
        return asyncio.run(main())
    finally:
        root.removeHandler(handler)
        root.setLevel(logging.WARNING)
        handler.close()


class _ParseOnly(AMIProtocol):
    """panoramisk's own framing and parsing; the message is only counted."""

    count = 0

    def handle_message(self, message: Any) -> None:
        self.count += 1


class _Factory:
    """Stands for panoramisk's Manager: dispatch() does nothing but count."""

    save_stream = None
    count = 0

    def dispatch(self, message: Any) -> None:
        self.count += 1


def run_panoramisk(chunks: list[bytes], handle: bool = False) -> tuple[int, float]:
    proto = AMIProtocol() if handle else _ParseOnly()
    proto.connection_made(None)
    factory = proto.factory = _Factory()
    received = proto.data_received
    start = time.perf_counter()
    for chunk in chunks:
        received(chunk)
    elapsed = time.perf_counter() - start
    return (factory.count if handle else proto.count), elapsed


def outcome_counts(facts: list[Any]) -> Counter[tuple[str, str, str]]:
    return Counter((type(f).__name__, getattr(f, "queue", ""), getattr(f, "outcome", ""))
                   for f in facts)


def check(chunks: list[bytes], used: dict[str, int]) -> int:
    """One untimed run: every copy of a capture must come out as the capture
    alone does (so the copies really are distinct calls)."""
    facts: list[Any] = []
    n, _ = run_ivr(chunks, facts)
    expected: Counter[tuple[str, str, str]] = Counter()
    for t in scaled.load_templates():
        alone: list[Any] = []
        data = scaled.build_from([t], t.calls)[0]
        run_ivr([data], alone)
        for key, count in outcome_counts(alone).items():
            expected[key] += count * used[t.name]
    got = outcome_counts(facts)
    if got != expected:
        sys.exit(f"ingest: the scaled stream does not replay as its captures do:\n"
                 f"  got      {sorted(got.items())}\n  expected {sorted(expected.items())}")
    return n


def profile(chunks: list[bytes]) -> None:
    prof = cProfile.Profile()
    prof.runcall(run_ivr, chunks)
    print("\ncProfile of the ivr pipeline (tottime, top 25):")
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=2000, help="callers in the stream (2000)")
    ap.add_argument("--runs", type=int, default=7, help="timed runs of each (7, at least 5)")
    ap.add_argument("--chunk", type=int, default=65536, help="read size in bytes (65536)")
    ap.add_argument("--profile", action="store_true", help="also cProfile the ivr pipeline")
    args = ap.parse_args()

    data, used = scaled.build(args.calls)
    chunks = [data[i:i + args.chunk] for i in range(0, len(data), args.chunk)]
    total = check(chunks, used)
    runners: dict[str, Callable[[], tuple[int, float]]] = {
        IVR: lambda: run_ivr(chunks),
        "ivr as wired (AmiClient._drain -> Pbx.on_event)": lambda: run_ivr_app(chunks),
        "ivr as wired, INFO logging to /dev/null": lambda: run_ivr_app(chunks, log_info=True),
        PANORAMISK: lambda: run_panoramisk(chunks),
        "panoramisk 1.4 data_received + handle_message": lambda: run_panoramisk(chunks, True),
    }
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for name, run in runners.items():      # warm-up, and every runner must see every event
        count, _ = run()
        if count != total:
            sys.exit(f"ingest: {name} saw {count} events, not {total}")
    for _ in range(max(5, args.runs)):     # interleaved, so noise hits all alike
        for name, run in runners.items():
            gc.collect()
            _, seconds = run()
            rates[name].append(total / seconds)

    print(f"ingest: {args.calls:,} callers, {total:,} events ({len(data) / 1e6:.1f} MB), "
          f"read {args.chunk:,} bytes at a time; median of {len(rates[next(iter(rates))])} runs "
          f"(min-max)")
    for name, values in rates.items():
        print(f"  {name:<52} {median(values):>10,.0f} events/s  "
              f"({min(values):,.0f}-{max(values):,.0f}; {1e6 / median(values):.2f} µs/event)")
    if args.profile:
        profile(chunks)
    print(describe())
    print(f"ingest_ratio_vs_panoramisk={median(rates[IVR]) / median(rates[PANORAMISK]):.2f}")


if __name__ == "__main__":
    main()
