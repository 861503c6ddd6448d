"""Latency: from an event's last byte leaving a (fake) PBX to the metric.

    .venv-bench/bin/python bench/latency.py [--rate 5000] [--joins 20500] [--repeats 3]

A fake AMI server runs in a separate process (this file with --serve) on
127.0.0.1:0: banner, Login, Ping, QueueStatus and CoreShowChannels (empty
lists), and Success to anything else (ivr's own Setvar/Redirect moves).
Once ivr has resynced, it streams the scaled lab captures (bench/scaled.py)
at `--rate` events per second, paced one write per event as Asterisk
writes them, each Timestamp set to the wall clock at sending.  Every
QueueCallerJoin carries `X-Sent: <time.monotonic()>`, stamped right before
its write; CLOCK_MONOTONIC is the same clock in both processes.

This process runs the real app: build(config) pointed at the server and
app.ami.run() in a task, logging at INFO as `ivr run` does (to /dev/null),
and a /metrics scrape (generate_latest) every 15 s as Prometheus would.  A
fact listener (app.listeners: Services.apply calls it after Metrics.record and
the Router) takes time.monotonic() when the caller's Entered fact arrives;
the X-Sent of that join is read by a thin wrapper around the client's
on_event.  The server sets TCP_NODELAY, so Nagle's delay is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import scaled
from machine import describe, median, percentile
from prometheus_client import generate_latest

from ivr.ami.codec import Codec, Message
from ivr.app import build
from ivr.config import AmiConfig, Config
from ivr.calls.facts import Entered

WARM_UP_JOINS = 500
SCRAPE_EVERY_S = 15.0
# Not "resync": its caller is still waiting when that capture ends, so over a
# few minutes its copies would pile up as callers who never leave.
STREAMED = ("answered", "moved", "abandoned", "fallback_timeout")


# -- the fake PBX (child process) -------------------------------------------

class FakePbx:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.actions: dict[str, int] = {}

    def send(self, text: str) -> None:
        with self.lock:
            self.conn.sendall(text.encode("utf-8"))

    def serve_actions(self) -> None:
        codec = Codec()
        while data := self.conn.recv(65536):
            codec.receive_data(data)
            while (msg := codec.next_event()) is not None:
                if isinstance(msg, Message) and msg.get("Action"):
                    self.answer(msg["Action"], msg.get("ActionID") or "")

    def answer(self, action: str, action_id: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1
        head = f"Response: Success\r\nActionID: {action_id}\r\n"
        lists = {"queuestatus": "QueueStatusComplete", "coreshowchannels": "CoreShowChannelsComplete"}
        if action.lower() in lists:
            self.send(f"{head}EventList: start\r\nMessage: will follow\r\n\r\n"
                      f"Event: {lists[action.lower()]}\r\nActionID: {action_id}\r\n"
                      f"EventList: Complete\r\nListItems: 0\r\n\r\n")
            if action.lower() == "coreshowchannels":
                self.ready.set()        # ivr's resync is done: start streaming
        elif action.lower() == "ping":
            self.send(f"{head}Ping: Pong\r\nTimestamp: {time.time():.6f}\r\n\r\n")
        elif action.lower() == "login":
            self.send(f"{head}Message: Authentication accepted\r\n\r\n")
        else:
            self.send(f"{head}Message: ok\r\n\r\n")

    def stream(self, rate: float, joins: int) -> dict[str, Any]:
        templates = [scaled.load_template(n) for n in STREAMED]
        source = scaled.merged(scaled.instances(templates, scaled.DEFAULT_SPACING_US,
                                                scaled.BASE_US), None)
        sent = joined = 0
        late: list[float] = []
        start = time.monotonic()
        for _, frame, inst in source:
            text = scaled.render(frame, inst, scaled.format_ts(time.time_ns() // 1000))
            due = start + sent / rate
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            if frame.event == "QueueCallerJoin":
                joined += 1
                now = time.monotonic()
                self.send(f"{text[:-2]}X-Sent: {now:.9f}\r\n\r\n")
            else:
                now = time.monotonic()
                self.send(text)
            late.append(now - due)
            sent += 1
            if joined >= joins:
                break
        elapsed = time.monotonic() - start
        late.sort()
        return {"sent": sent, "joins": joined, "seconds": elapsed, "rate": sent / elapsed,
                "late_p50_ms": percentile(late, 50) * 1e3, "late_p99_ms": percentile(late, 99) * 1e3}


def serve(rate: float, joins: int) -> None:
    banner = (scaled.FIXTURES / "answered.ami").read_bytes().split(b"\r\n", 1)[0].decode()
    with socket.create_server(("127.0.0.1", 0)) as server:
        print(f"port {server.getsockname()[1]}", flush=True)
        conn, _ = server.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pbx = FakePbx(conn)
    pbx.send(banner + "\r\n")
    threading.Thread(target=pbx.serve_actions, daemon=True).start()
    if not pbx.ready.wait(30):
        sys.exit("fake PBX: ivr never resynced")
    summary = pbx.stream(rate, joins)
    summary["actions"] = pbx.actions
    print(json.dumps(summary), flush=True)
    sys.stdin.read()        # stay connected until the parent is done


# -- ivr (this process) ------------------------------------------------------

class GcPauses:
    """Collector pauses in this process: a suspect for the tail."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._start))

    def summary(self) -> str:
        full = [p for g, p in self.pauses if g == 2]
        worst = max((p for _, p in self.pauses), default=0.0)
        return (f"{len(self.pauses)} GC pauses ({len(full)} full), longest {worst * 1e3:.2f} ms"
                + (f", full ones up to {max(full) * 1e3:.2f} ms" if full else ""))


async def measure(rate: float, joins: int) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", "--rate", str(rate), "--joins", str(joins),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdin is not None
    port = int((await child.stdout.readline()).split()[1])
    config = Config(ami=AmiConfig(host="127.0.0.1", port=port, username="bench", secret="bench"))
    app = build(config)

    sent: dict[str, float] = {}
    latencies: list[float] = []
    on_event = app.ami._on_event

    def stamped(msg: Message) -> None:
        if msg.event == "QueueCallerJoin":
            sent[msg["Uniqueid"]] = float(msg["X-Sent"])
        on_event(msg)

    def on_fact(fact: object) -> None:
        if isinstance(fact, Entered) and not fact.recovered:
            now = time.monotonic()
            if (at := sent.pop(fact.uniqueid, None)) is not None:
                latencies.append(now - at)

    app.ami._on_event = stamped
    app.listeners.append(on_fact)
    scrapes: list[float] = []

    async def prometheus() -> None:
        while True:
            await asyncio.sleep(SCRAPE_EVERY_S)
            t = time.perf_counter()
            generate_latest(app.registry)
            scrapes.append(time.perf_counter() - t)

    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    running = [asyncio.create_task(app.ami.run()), asyncio.create_task(prometheus())]
    try:
        summary = json.loads(await child.stdout.readline())
        deadline = time.monotonic() + 5
        while len(latencies) < summary["joins"] and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        gc.callbacks.remove(gc_pauses)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        app.router.close()
        child.stdin.close()
        await child.wait()
    ms = sorted(x * 1e3 for x in latencies[WARM_UP_JOINS:])
    summary.update(received=app.ami.events_received, measured=len(latencies), ms=ms,
                   scrapes=scrapes, gc=gc_pauses.summary(),
                   p50=percentile(ms, 50), p99=percentile(ms, 99))
    return summary


def report_run(n: int, r: dict[str, Any]) -> None:
    ms = r["ms"]
    scrape = f"{len(r['scrapes'])} scrapes, median {median(r['scrapes']) * 1e3:.2f} ms" \
        if r["scrapes"] else "no scrape"
    print(f"run {n}: fake PBX sent {r['sent']:,} events ({r['joins']:,} joins) at "
          f"{r['rate']:,.0f}/s, pacing lateness p50 {r['late_p50_ms']:.3f} / p99 "
          f"{r['late_p99_ms']:.3f} ms; ivr took {r['received']:,}; actions {r['actions']}")
    print(f"       {r['gc']}; {scrape}")
    print(f"       p50 {r['p50']:.3f} ms  p90 {percentile(ms, 90):.3f}  p99 {r['p99']:.3f}  "
          f"p99.9 {percentile(ms, 99.9):.3f}  max {ms[-1]:.3f}  (n={len(ms):,})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=5000.0, help="events per second (5000)")
    ap.add_argument("--joins", type=int, default=20_500,
                    help=f"QueueCallerJoin events per run (20500: 20000 after {WARM_UP_JOINS} warm-up)")
    ap.add_argument("--repeats", type=int, default=3, help="runs, each with a fresh server and app (3)")
    ap.add_argument("--log-level", default="INFO", help="ivr's log level (INFO, as ivr run)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.rate, args.joins)
        return
    logging.basicConfig(level=args.log_level.upper(), filename=os.devnull,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"latency: last byte of a QueueCallerJoin on the socket -> its Entered fact past "
          f"Metrics.record, at {args.rate:,.0f} events/s; ivr logging at {args.log_level.upper()} "
          f"to /dev/null; the first {WARM_UP_JOINS} joins of a run are warm-up", flush=True)
    runs = []
    for n in range(1, args.repeats + 1):
        runs.append(asyncio.run(measure(args.rate, args.joins)))
        report_run(n, runs[-1])
    pooled = sorted(x for r in runs for x in r["ms"])
    p50, p99 = median([r["p50"] for r in runs]), median([r["p99"] for r in runs])
    print(f"median of {len(runs)} runs: p50 {p50:.3f} ms, p99 {p99:.3f} ms;  pooled "
          f"(n={len(pooled):,}): p50 {percentile(pooled, 50):.3f} ms, p99 "
          f"{percentile(pooled, 99):.3f} ms")
    print(describe())
    print(f"latency_p50_ms={p50:.3f}")
    print(f"latency_p99_ms={p99:.3f}")


if __name__ == "__main__":
    main()
