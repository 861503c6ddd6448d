"""The streaming reconciliation (ivr/reconcile/scan.py) gives compare.reconcile()'s and
backfill.backfill()'s verdicts, a call at a time: on generated queue_logs of many
calls (moves, lost end rows, open stays, noise, bad lines) and ledgers that lack,
change or add calls and visits, over the whole log and over periods, with a small
MAX_STAY_S so that calls really leave memory while the read goes on."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.calls.records import QUEUE_LOG, UNOBSERVED, CallRecord, VisitRecord
from ivr.ledger.reads import CallVisits
from ivr.reconcile.backfill import backfill
from ivr.reconcile.compare import Reconciliation, reconcile
from ivr.reconcile.files import Damage
from ivr.reconcile.listing import Listing
from ivr.reconcile.read import CallStream, read_lines
from ivr.reconcile.rows import BadLine, Row, parse_lines
from ivr.reconcile.scan import Options, scan

S = 1_000_000
T = 1_796_000_000
STAY = 600                     # the scan's MAX_STAY_S in these tests: calls are shorter
OVERFLOW = {"first-line": 30}
PBX = "lab"
QUEUES = ("first-line", "common", "engineers")
ENDS = ("CONNECT", "ABANDON", "ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY",
        "WITHDRAW", "", "")     # "": the end row lost, or still waiting


# -- a generated world: queue_log lines and a ledger ---------------------------------

@dataclass
class World:
    lines: list[str] = field(default_factory=list)
    ledger: list[CallRecord] = field(default_factory=list)
    span: int = 0


def _end_row(uid: str, queue: str, event: str, at: int, wait: int) -> str:
    if event == "CONNECT":
        return f"{at}|{uid}|{queue}|op1|CONNECT|{wait}|{uid}x|2"
    if event == "EXITWITHKEY":
        return f"{at}|{uid}|{queue}|NONE|EXITWITHKEY|5|1|1|{wait}"
    return f"{at}|{uid}|{queue}|NONE|{event}|1|1|{wait}"


def world(seed: int, calls: int, span: int) -> World:
    r = random.Random(seed)
    w = World(span=span)
    timed: list[tuple[int, int, str]] = []
    for n in range(calls):
        uid = f"{T}.{n}"
        at = T + r.randrange(span)
        rows: list[tuple[int, str]] = []
        visits: list[VisitRecord] = []
        for seq in range(1, r.choice((1, 1, 2, 3)) + 1):
            queue = r.choice(QUEUES)
            rows.append((at, f"{at}|{uid}|{queue}|NONE|ENTERQUEUE||7900{n}|1"))
            wait = r.randrange(0, 45)
            end = r.choice(ENDS)
            if r.random() < 0.3:
                rows.append((at + wait // 2, f"{at + wait // 2}|{uid}|{queue}|op2|RINGNOANSWER|1000"))
            outcome = {"CONNECT": "answered", "ABANDON": r.choice(("abandoned", "timeout")),
                       "EXITWITHTIMEOUT": "timeout", "EXITEMPTY": "empty",
                       "EXITWITHKEY": "exit_with_key", "WITHDRAW": "withdrawn"}.get(end, UNOBSERVED)
            if end:
                rows.append((at + wait, _end_row(uid, queue, end, at + wait, wait)))
                if end == "ABANDON" and r.random() < 0.3:
                    rows.append((at + wait + r.randrange(3),
                                 f"{at + wait}|{uid}|{queue}|NONE|IVRMOVE|"
                                 f"{r.choice(('timeout', 'withdrawn'))}|common"))
            visits.append(VisitRecord(seq, queue, at * S + r.randrange(S),
                                      None if outcome == UNOBSERVED else (at + wait) * S,
                                      outcome, None if outcome == UNOBSERVED
                                      else wait * 1000 + r.choice((0, 400, 999, 2500)),
                                      "op1" if outcome == "answered" else ""))
            at += wait + r.randrange(0, 30)
        if r.random() < 0.4:
            rows.append((at, f"{at}|{uid}|x|op1|COMPLETECALLER|1|{at}|1"))
        timed += [(t, len(timed) + i, line) for i, (t, line) in enumerate(rows)]
        roll = r.random()
        if roll < 0.15:
            continue                                   # ivr was down: not in the ledger
        if roll < 0.3 and len(visits) > 1:
            visits.pop(r.randrange(len(visits)))       # a visit it missed
        elif roll < 0.4:
            visits[0] = replace(visits[0], outcome=r.choice(("abandoned", "answered")))
        elif roll < 0.45:
            visits.append(VisitRecord(len(visits) + 1, "common", at * S, None, UNOBSERVED, None))
        w.ledger.append(CallRecord(PBX, uid, uid, "79", "", "", visits[0].entered_us,
                                   at * S + 5 * S, tuple(visits), "answered", False,
                                   r.choice(("live", "live", QUEUE_LOG)), "ms"))
    for n in range(calls // 10):                       # calls only the ledger has
        at = T + r.randrange(span)
        w.ledger.append(CallRecord(PBX, f"ghost.{n}", "g", "79", "", "", at * S, (at + 40) * S,
                                   (VisitRecord(1, "first-line", at * S, (at + 9) * S,
                                                "abandoned", 9000),),
                                   "abandoned", False, "live", "ms"))
        w.ledger.append(replace(w.ledger[-1], pbx="other", uniqueid=f"other.{n}"))
    for n in range(calls // 20):                       # noise: queue rows and bad lines
        at = T + r.randrange(span)
        timed.append((at, len(timed), r.choice((f"{at}|NONE|first-line|op1|PAUSE|",
                                                f"{at}|a|b", "garbage", f"{at}|u|q|NONE|IVRMOVE|x"))))
    timed.sort(key=lambda x: (x[0], x[1]))             # app_queue writes in time order
    w.lines = [line + "\n" for _, _, line in timed]
    return w


# -- the scan, on a fake ledger and a source in memory -----------------------------------

class FakeLedger:
    def __init__(self, calls: Sequence[CallRecord]) -> None:
        self.all = sorted(calls, key=lambda c: (c.entered_us, c.pbx, c.uniqueid))
        self.written: list[CallRecord] = []
        self.added: list[tuple[str, str, VisitRecord]] = []

    async def visit_batches(self, from_us: int, to_us: int, pbx: str | None = None,
                            size: int = 5000, going_at_us: int | None = None
                            ) -> AsyncIterator[list[CallVisits]]:
        found = [CallVisits(c.pbx, c.uniqueid, c.entered_us, c.ended_us, c.source, c.visits)
                 for c in self.all if from_us <= c.entered_us < to_us
                 and (pbx is None or c.pbx == pbx) and (going_at_us is None or max(
                     c.entered_us, c.ended_us) >= going_at_us)]
        for n in range(0, len(found), 3):
            yield found[n:n + 3]

    async def backfill(self, records: Sequence[CallRecord],
                       visits: Sequence[tuple[str, str, VisitRecord]]) -> None:
        self.written += records
        self.added += visits


class LinesSource:
    def __init__(self, lines: list[str], batch: int = 7) -> None:
        self.items = list(parse_lines(lines))
        self.batch = batch
        self.rows = len(self.items)
        self.damaged: list[Damage] = []

    async def batches(self) -> AsyncIterator[list[Row | BadLine]]:
        for n in range(0, len(self.items), self.batch):
            yield self.items[n:n + self.batch]


def streamed(w: World, from_s: int | None, to_s: int | None, fill: bool = False,
             ) -> tuple[Reconciliation, FakeLedger]:
    ledger = FakeLedger(w.ledger)
    options = Options(PBX, OVERFLOW, from_s, to_s, backfill=fill, keep=3, spill=True,
                      max_stay_s=STAY)
    lines = w.lines if from_s is None or to_s is None else [
        line for line in w.lines if not line[:10].isdigit()
        or from_s - STAY <= int(line[:10]) < to_s + STAY]     # what the source reads
    return asyncio.run(scan(ledger, LinesSource(lines), options)), ledger


def whole(w: World, from_s: int | None, to_s: int | None) -> Reconciliation:
    """The whole read, with the ledger's calls the command read before the scan: those
    entered from a day before the period to its end (all of them for the whole log)."""
    log = read_lines(w.lines, OVERFLOW)
    if from_s is None or to_s is None:
        entries = [s.entered_s for s in log.stints()]
        from_s, to_s = (min(entries), max(entries) + 1) if entries else (0, 0)
        return reconcile(log, w.ledger, from_s, to_s, OVERFLOW, PBX)
    calls = [c for c in w.ledger if (from_s - 86400) * S <= c.entered_us < to_s * S]
    return reconcile(log, calls, from_s, to_s, OVERFLOW, PBX)


def as_sets(r: Reconciliation) -> dict[str, object]:
    out = r.to_json()
    return {k: sorted(json.dumps(i, sort_keys=True) for i in v) if isinstance(v, list) else v
            for k, v in out.items()}


def same(a: Reconciliation, b: Reconciliation, bad_lines: bool = True) -> None:
    left, right = as_sets(a), as_sets(b)
    if not bad_lines:
        left.pop("bad_lines"), right.pop("bad_lines")
    assert left == right
    # Calls come out in order of first entry, as a whole read lists them.
    assert list(a.missing_in_ledger) == list(b.missing_in_ledger)


def hostile(n: int) -> settings:
    return settings(max_examples=n, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@hostile(40)
@given(seed=st.integers(0, 10**6), calls=st.integers(0, 60), span=st.sampled_from([60, 3000, 20000]))
def test_the_whole_log_streamed_gives_the_whole_read_verdicts(seed: int, calls: int,
                                                              span: int) -> None:
    w = world(seed, calls, span)
    got, _ = streamed(w, None, None)
    want = whole(w, None, None)
    same(got, want)
    assert (got.from_s, got.to_s) == (want.from_s, want.to_s)


@hostile(40)
@given(seed=st.integers(0, 10**6), calls=st.integers(1, 60), a=st.integers(0, 20000),
       length=st.integers(1, 20000))
def test_a_period_streamed_gives_the_whole_read_verdicts(seed: int, calls: int, a: int,
                                                         length: int) -> None:
    w = world(seed, calls, 20000)
    got, _ = streamed(w, T + a, T + a + length)
    # The source skips lines far from the period: their bad lines are not read.
    same(got, whole(w, T + a, T + a + length), bad_lines=False)


@hostile(30)
@given(seed=st.integers(0, 10**6), calls=st.integers(1, 60))
def test_the_streamed_backfill_writes_what_the_whole_one_does(seed: int, calls: int) -> None:
    w = world(seed, calls, 20000)
    got, ledger = streamed(w, T, T + 20000, fill=True)
    log = read_lines(w.lines, OVERFLOW)
    want = backfill(whole(w, T, T + 20000), log, w.ledger, PBX)
    assert sorted(ledger.written, key=lambda c: c.uniqueid) == \
        sorted(want.calls, key=lambda c: c.uniqueid)
    assert sorted(ledger.added, key=repr) == sorted(want.visits, key=repr)
    assert got.backfilled == want.count


def test_calls_leave_memory_as_the_read_goes_on() -> None:
    """A day of calls, a minute apart, each over in a minute: the stream never holds
    more than the calls of the last MAX_STAY_S."""
    stream = CallStream(OVERFLOW, idle_s=STAY)
    most = out = 0
    for n in range(1440):
        at = T + 60 * n
        uid = f"{at}.{n}"
        for line in (f"{at}|{uid}|first-line|NONE|ENTERQUEUE||79|1",
                     f"{at + 20}|{uid}|first-line|NONE|ABANDON|1|1|20"):
            (row,) = parse_lines([line])
            assert isinstance(row, Row)
            stream.add(row)
        out += len(list(stream.ready()))
        most = max(most, len(stream))
    out += len(list(stream.finish()))
    assert out == 1440 and most <= STAY // 60 + 2


def test_a_call_quiet_for_longer_than_max_stay_is_read_as_two() -> None:
    lines = [f"{T}|u|first-line|NONE|ENTERQUEUE||79|1\n",
             f"{T + 5}|u|first-line|op1|CONNECT|5|x|1\n",
             f"{T + 5 + STAY + 1}|v|first-line|NONE|ENTERQUEUE||78|1\n",
             f"{T + 5 + STAY + 2}|u|common|NONE|ENTERQUEUE||79|1\n"]
    got, _ = streamed(World(lines, []), None, None)
    assert [(s.callid, s.queue, s.seq) for s in got.missing_in_ledger] == [
        ("u", "first-line", 1)]       # u's common stint came as a call of its own: open
    assert got.open == 2
    assert [(s.queue, s.seq) for s in read_lines(lines).by_call["u"]] == [
        ("first-line", 1), ("common", 2)]


def test_a_listing_counts_all_and_keeps_or_spills_the_rest() -> None:
    counted = Listing[int](keep=3, spill=False)
    spilled = Listing[int](keep=3, spill=True)
    for n in range(10_000):
        counted.append(n)
        spilled.append(n)
    assert len(counted) == len(spilled) == 10_000
    assert list(counted) == [0, 1, 2] and counted[:2] == [0, 1]
    assert list(spilled) == list(range(10_000)) and list(spilled) == list(range(10_000))
    assert spilled[5000] == 5000 and spilled[:3] == [0, 1, 2]
    spilled.append(-1)
    assert list(spilled)[-2:] == [9999, -1]
    spilled.close()


@pytest.mark.parametrize("lists", [0, 1, 3])
def test_write_json_is_to_json_written_an_item_at_a_time(lists: int) -> None:
    import io
    w = world(7, 30 * lists, 3000)
    got, _ = streamed(w, None, None)
    out = io.StringIO()
    got.write_json(out)
    assert out.getvalue() == json.dumps(got.to_json(), indent=2) + "\n"
