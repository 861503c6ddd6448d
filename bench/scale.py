"""Scale: 10,000 callers waiting at once, memory and one /metrics scrape.

    .venv-bench/bin/python bench/scale.py [--callers 10000]

10,000 QueueCallerJoin events, each the lab capture's own join frame
(tests/fixtures/answered.ami) with its own Uniqueid, Linkedid, channel name,
Position/Count, and a Timestamp spread over the last 25 s (so no 30 s move is
due yet), are fed as bytes, ~64 KiB at a time, through the real app as
build(config) wires it: AmiClient._drain -> Pbx.on_event -> events.parse ->
Tracker.handle -> Metrics.record and the Router (which arms one 30 s timer per
caller, as in production).  Then the metrics are rendered with
generate_latest, as /metrics does.  RSS is the whole process, absolute:
before anything (after imports), after build(), after feeding, after the
scrape; plus the peak (getrusage ru_maxrss).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import statistics
import time
from collections.abc import Iterator

import scaled
from machine import describe, vm_rss_kib
from prometheus_client import generate_latest

from ivr.ami.codec import Codec
from ivr.app import Services, build
from ivr.config import AmiConfig, Config

SPREAD_S = 25.0
CHUNK = 65536


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def join_frames(callers: int, now_us: int) -> Iterator[str]:
    template = scaled.load_template("answered")
    join = next(f for f in template.frames if f.event == "QueueCallerJoin")
    ids = scaled.Ids()
    for i in range(callers):
        inst = ids.instance(template, 0, now_us)
        at = now_us - round(SPREAD_S * 1e6 * (callers - i) / callers)
        text = scaled.render(join, inst, scaled.format_ts(at))
        yield (text.replace("\r\nPosition: 1\r\n", f"\r\nPosition: {i + 1}\r\n")
                   .replace("\r\nCount: 1\r\n", f"\r\nCount: {i + 1}\r\n"))


def chunks(frames: Iterator[str]) -> Iterator[bytes]:
    batch: list[str] = []
    size = 0
    for text in frames:
        batch.append(text)
        size += len(text)
        if size >= CHUNK:
            yield "".join(batch).encode("utf-8")
            batch, size = [], 0
    if batch:
        yield "".join(batch).encode("utf-8")


def waiting_in_exposition(text: bytes, queue: str) -> float:
    prefix = f'ivr_queue_waiting_calls{{queue="{queue}"}} '.encode()
    line = next(ln for ln in text.splitlines() if ln.startswith(prefix))
    return float(line[len(prefix):])


def scrape_times(app: Services, scrapes: int) -> tuple[list[float], bytes]:
    timings, text = [], b""
    for _ in range(scrapes):
        t = time.perf_counter()
        text = generate_latest(app.registry)
        timings.append(time.perf_counter() - t)
    return timings, text


async def run(callers: int, scrapes: int) -> None:
    rss = {"after imports": vm_rss_kib()}
    app = build(Config(ami=AmiConfig(username="bench", secret="bench")))
    gc.collect()
    rss["after build()"] = vm_rss_kib()
    empty = scrape_times(app, scrapes)[0]
    codec = app.ami._codec = Codec(keep=app.ami._keep)   # as AmiClient._session makes it
    start = time.perf_counter()
    for data in chunks(join_frames(callers, time.time_ns() // 1000)):
        codec.receive_data(data)
        app.ami._drain(codec)
    feed_s = time.perf_counter() - start
    rss[f"{callers:,} waiting"] = vm_rss_kib()
    waiting = len(app.tracker.waiting("first-line"))
    if waiting != callers:
        raise SystemExit(f"scale: {waiting} callers waiting, not {callers}")

    timings, text = scrape_times(app, scrapes)
    exposed = waiting_in_exposition(text, "first-line")
    rss["after the scrapes"] = vm_rss_kib()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    app.router.close()

    print(f"scale: {callers:,} callers waiting in first-line at once (real app, one 30 s timer each)")
    print(f"  fed {callers:,} QueueCallerJoin in {feed_s * 1e3:.0f} ms "
          f"({callers / feed_s:,.0f} joins/s); exposition says ivr_queue_waiting_calls "
          f"{exposed:,.0f}; {len(text):,} bytes of /metrics")
    for what, kib in rss.items():
        print(f"  VmRSS {what:<22} {mib(kib):>10}")
    print(f"  ru_maxrss (peak)             {mib(peak_kib):>10}")
    grown = rss[f"{callers:,} waiting"] - rss["after build()"]
    print(f"  growth per waiting caller    {grown * 1024 / callers:,.0f} bytes")
    print(f"  scrape (generate_latest) with {callers:,} waiting: first {timings[0] * 1e3:.2f} ms, "
          f"median of {len(timings)} {statistics.median(timings) * 1e3:.2f} ms "
          f"(min {min(timings) * 1e3:.2f}, max {max(timings) * 1e3:.2f}); "
          f"with none waiting: median {statistics.median(empty) * 1e3:.2f} ms")
    print(describe())
    print(f"scale_rss_mib={peak_kib / 1024:.1f}")
    print(f"scale_scrape_ms={statistics.median(timings) * 1e3:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--callers", type=int, default=10_000, help="callers waiting (10000)")
    ap.add_argument("--scrapes", type=int, default=7, help="scrapes to time (7)")
    args = ap.parse_args()
    asyncio.run(run(args.callers, args.scrapes))


if __name__ == "__main__":
    main()
