"""Load on the lab: SIPp callers at rising call rates, ivr following over AMI.

    sudo .venv/bin/python -m bench.load [--rates 5,10,20,50,100] [--seconds 120]
                                        [--filter on,off]

Each rate runs once with ivr's session filter on (Asterisk sends only what
ivr follows: ivr/ami/server_filter.py) and once with it off, one after the
other, so the two are measured on the same machine in the same hour.  Per
call: AMI bytes and events ivr received, ivr's CPU in ms and as a share of
Asterisk's; the lag p50/p99 of ivr behind Asterisk's own timestamps; and the
first rate where the lab saturates (a call not accounted for, SIPp failing
more than 1 % of calls, or the lag p99 above 1 s).

For each rate: every call SIPp placed and Asterisk queued must be accounted
for in ivr (entered equals Asterisk's own ENTERQUEUE count, and once all
calls ended the outcomes add up), ivr's lag behind Asterisk (its event
timestamp to ivr's fact) is measured, and ivr's CPU is compared with
Asterisk's.  Callers come from numbers not in the directory, so each hears
the account prompt first, then waits in first-line; four operators answer
after 1 s and two common agents after 1 s; callers hang up after 12 s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import resource
import statistics
import time

from ivr.calls.facts import Entered, Exited, Fact, Unobserved
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from ivr.service import run, start
from tests.lab.conftest import lab_config

HOLD_MS = 12_000
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _queue_size(lab: Lab) -> int:
    words = lab.cli("queue show first-line").split()
    return int(words[2]) if len(words) > 2 and words[1] == "has" else -1


def queued_by_asterisk(lab: Lab, since: float) -> int:
    return sum(1 for line in lab.queue_log().splitlines()
               if line.split("|")[4:5] == ["ENTERQUEUE"] and line.split("|")[2] == "first-line"
               and int(line.split("|")[0]) >= int(since))


async def one_rate(lab: Lab, rate: int, seconds: int, server_filter: bool) -> dict[str, float]:
    lab.hangup_all()
    config = lab_config(lab)
    config = dataclasses.replace(config, ami=dataclasses.replace(config.ami,
                                                                 server_filter=server_filter))
    app, runner = await start(config)
    for _ in range(100):
        if app.ready:
            break
        await asyncio.sleep(0.1)
    lags: list[float] = []
    facts: list[Fact] = []

    def listen(fact: Fact) -> None:
        facts.append(fact)
        if isinstance(fact, Entered) and not fact.recovered:
            lags.append(time.time() - fact.at_us / 1e6)
    app.listeners.append(listen)
    # How late ivr's event loop wakes for a 10 ms timer: if the lag above is
    # high while this stays low, the delay was before the bytes reached ivr.
    stalls: list[float] = []

    async def watch_loop() -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(0.01)
            stalls.append(time.perf_counter() - asked - 0.01)
    watcher = asyncio.ensure_future(watch_loop())
    phones = [traffic.agent(op, 1000) for op in ("op1", "op2", "op3", "op4")]
    phones += [traffic.agent(g, 1000) for g in ("gen1", "gen2")]
    since, pid = time.time(), lab.status().pid
    assert pid is not None
    cpu0, ast0 = own_cpu(), cpu_seconds(pid)
    bytes0, events0 = app.ami.bytes_received, app.ami.events_received
    calls = traffic.callers(rate * seconds, HOLD_MS, rate=rate, number_prefix="5600",
                            concurrent=rate * 30, stats=True)
    deadline = time.monotonic() + seconds + HOLD_MS / 1000 + 60
    while calls.process.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)
    cpu, ast = own_cpu() - cpu0, cpu_seconds(pid) - ast0
    ami_bytes, ami_events = app.ami.bytes_received - bytes0, app.ami.events_received - events0
    sipp = calls.stats()
    watcher.cancel()
    calls.stop()
    for p in phones:
        p.stop()
    lab.hangup_all()

    # Only this tier's callers: a resync may recover stragglers of the tier
    # before.  A recovered caller's entry time is known to the second only.
    ours = {f.uniqueid for f in facts if isinstance(f, Entered) and f.at_us >= (since - 1) * 1e6}

    def count(kinds: tuple[type, ...]) -> int:
        return sum(1 for f in facts if isinstance(f, kinds) and getattr(f, "queue", "") == "first-line"
                   and getattr(f, "uniqueid", "") in ours)
    # An overloaded Asterisk delivers the last exits late: wait for them (30 s at most).
    settle = time.monotonic() + 30
    while count((Exited, Unobserved)) < count((Entered,)) and time.monotonic() < settle:
        await asyncio.sleep(0.5)
    # Callers an overloaded Asterisk has not let go of yet: ivr's view and Asterisk's own.
    recovered = sum(1 for f in facts if isinstance(f, Entered) and f.recovered)
    waiting = app.tracker.waiting("first-line")
    still_all = len(waiting)      # waiting, as Asterisk counts
    still_ivr = sum(1 for j in waiting if j.uniqueid in ours)
    leaving = sum(1 for j in app.tracker.journeys.values() if j.uniqueid in ours
                  and j.queue == "first-line") - still_ivr
    still_asterisk = _queue_size(lab)
    # Every call the dialplan reached ivr with: callers who hang up during the
    # greeting or the account prompt are routed but never queued.
    routed = app.registry.get_sample_value("ivr_route_decision_seconds_count", {"pbx": "default"}) or 0.0
    await runner.cleanup()
    entered, exited = count((Entered,)), count((Exited, Unobserved))
    lags.sort()
    stalls.sort()
    return {
        "rate": rate, "placed": float(sipp.get("TotalCallCreated", "nan")),
        "sipp_failed": float(sipp.get("FailedCall(C)", "nan")), "ivr_routed": routed,
        "asterisk_queued": queued_by_asterisk(lab, since), "ivr_entered": entered,
        "ivr_first_line_exits": exited, "still_ivr": still_ivr, "still_asterisk": still_asterisk, "still_all": still_all,
        "recovered": recovered,
        "leaving": leaving,
        "lag_p50_ms": 1000 * statistics.median(lags) if lags else float("nan"),
        "lag_p99_ms": 1000 * lags[int(len(lags) * 0.99) - 1] if lags else float("nan"),
        "lag_max_ms": 1000 * lags[-1] if lags else float("nan"),
        "loop_p99_ms": 1000 * stalls[int(len(stalls) * 0.99) - 1] if stalls else float("nan"),
        "loop_max_ms": 1000 * stalls[-1] if stalls else float("nan"),
        "ivr_cpu_s": cpu, "asterisk_cpu_s": ast,
        "ami_bytes": ami_bytes, "ami_events": ami_events,
        "event_filter": app.event_filter,    # type: ignore[dict-item]
    }


def saturated(r: dict[str, float]) -> list[str]:
    why = []
    if not accounted(r):
        why.append("calls not accounted for")
    if r["placed"] and r["sipp_failed"] > 0.01 * r["placed"]:
        why.append(f"SIPp failed {r['sipp_failed']:.0f} of {r['placed']:.0f}")
    if r["lag_p99_ms"] > 1000:
        why.append(f"lag p99 {r['lag_p99_ms']:.0f} ms")
    return why


def accounted(r: dict[str, float]) -> bool:
    return (r["ivr_entered"] == r["asterisk_queued"]
            and r["ivr_first_line_exits"] + r["still_ivr"] + r["leaving"] == r["ivr_entered"]
            and r["still_all"] == r["still_asterisk"])


def per_call(r: dict[str, float]) -> dict[str, float]:
    calls = max(r["ivr_routed"], 1.0)
    return {"bytes": r["ami_bytes"] / calls, "events": r["ami_events"] / calls,
            "cpu_ms": 1000 * r["ivr_cpu_s"] / calls,
            "share": 100 * r["ivr_cpu_s"] / max(r["asterisk_cpu_s"], 0.01)}


async def main(rates: list[int], seconds: int, filters: list[bool]) -> None:
    lab = Lab()
    lab.up()
    lab.forget_registrations()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, python {platform.python_version()}")
    results: list[tuple[bool, dict[str, float]]] = []
    try:
        for rate in rates:
            for on in filters:
                r = await one_rate(lab, rate, seconds, on)
                results.append((on, r))
                print(f"{rate:>3} calls/s for {seconds}s, filter {'on' if on else 'off'} "
                      f"({r['event_filter']}): SIPp placed {r['placed']:.0f} (failed {r['sipp_failed']:.0f}), "
                      f"ivr routed {r['ivr_routed']:.0f}, Asterisk queued {r['asterisk_queued']}, ivr entered {r['ivr_entered']} "
                      f"saw {r['ivr_first_line_exits']} leave, {r['leaving']} leaving (hang-up pending), {r['still_ivr']} waiting "
                      f"(all waiting: ivr {r['still_all']}, Asterisk {r['still_asterisk']}; "
                      f"{r['recovered']} recovered by a resync) [{'accounted' if accounted(r) else 'MISMATCH'}]; "
                      f"lag p50 {r['lag_p50_ms']:.1f} ms p99 {r['lag_p99_ms']:.1f} ms max {r['lag_max_ms']:.1f} ms; "
                      f"event loop late p99 {r['loop_p99_ms']:.1f} ms max {r['loop_max_ms']:.1f} ms; "
                      f"CPU ivr {r['ivr_cpu_s']:.1f}s vs Asterisk {r['asterisk_cpu_s']:.1f}s "
                      f"({100 * r['ivr_cpu_s'] / max(r['asterisk_cpu_s'], 0.01):.0f}%)", flush=True)
    finally:
        # An overloaded Asterisk keeps stale state (callers still queued,
        # members stuck "In use"): no test should inherit it.
        lab.down()
        print("lab stopped", flush=True)
    print("\nper call (calls = those the dialplan routed through ivr):")
    print(f"{'rate':>5} {'filter':>6} {'AMI bytes':>10} {'events':>7} {'ivr CPU ms':>10} "
          f"{'of Asterisk':>11} {'lag p50':>8} {'lag p99':>8}  saturated")
    for on, r in results:
        c = per_call(r)
        why = saturated(r)
        print(f"{r['rate']:>5.0f} {'on' if on else 'off':>6} {c['bytes']:>10.0f} {c['events']:>7.1f} "
              f"{c['cpu_ms']:>10.2f} {c['share']:>10.1f}% {r['lag_p50_ms']:>6.1f}ms {r['lag_p99_ms']:>6.1f}ms  "
              f"{'; '.join(why) or 'no'}")
    for on in filters:
        first = next((r["rate"] for o, r in results if o == on and saturated(r)), None)
        print(f"filter {'on' if on else 'off'}: saturates at "
              f"{f'{first:.0f} calls/s' if first is not None else f'none of {rates} calls/s'}")
    by_rate = {(o, r["rate"]): per_call(r) for o, r in results}
    for rate in rates:
        if (True, rate) in by_rate and (False, rate) in by_rate:
            on, off = by_rate[(True, rate)], by_rate[(False, rate)]
            print(f"{rate} calls/s: {off['bytes'] / max(on['bytes'], 1):.1f} times fewer AMI bytes "
                  f"per call with the filter, {off['events'] / max(on['events'], 0.1):.1f} times "
                  f"fewer events")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="5,10,20,50,100", help="calls per second, comma-separated")
    parser.add_argument("--seconds", type=int, default=120, help="how long each rate runs")
    parser.add_argument("--filter", default="on,off",
                        help="the session filter for each rate: on, off or both (on,off)")
    args = parser.parse_args()
    filters = [{"on": True, "off": False}[f.strip()] for f in args.filter.split(",")]
    run(main([int(r) for r in args.rates.split(",")], args.seconds, filters))  # ivr run's loop
