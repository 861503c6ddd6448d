"""queue_log read into stints, held against the ledger, and backfilled, on literal lines
in the shape Asterisk 22's app_queue writes them (see the lab recording in
tests/fixtures/queue_log)."""

from __future__ import annotations

import itertools
import json
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.calls.judge import OUTCOMES
from ivr.reconcile.backfill import Backfill, backfill
from ivr.reconcile.compare import reconcile
from ivr.reconcile.read import QueueLog, Stint, read_file, read_lines, read_rows
from ivr.reconcile.rows import BadLine, Row, parse_lines
from ivr.calls.records import QUEUE_LOG, SECONDS, UNOBSERVED, CallRecord, VisitRecord

S = 1_000_000
T = 1_796_117_591                # an epoch second in the lab recording's range
OVERFLOW = {"first-line": 30}
LAB = Path(__file__).parent.parent / "fixtures" / "queue_log" / "lab.queue_log"

ANSWERED = """\
1796117591|1796117589.8|first-line|NONE|ENTERQUEUE||79201|1
1796117594|1796117589.8|first-line|op1|RINGNOANSWER|3000
1796117598|1796117589.8|first-line|op2|CONNECT|7|1796117594.10|4
1796117640|1796117589.8|first-line|op2|COMPLETECALLER|7|42|1
"""
ABANDONED = """\
1796117591|1796117589.8|first-line|NONE|ENTERQUEUE||79201|1
1796117603|1796117589.8|first-line|op1|RINGCANCELED|11998
1796117603|1796117589.8|first-line|NONE|ABANDON|1|1|12
"""
MOVED = """\
1796117591|1796117589.8|first-line|NONE|ENTERQUEUE||79201|1
1796117621|1796117589.8|first-line|op3|RINGCANCELED|13997
1796117621|1796117589.8|first-line|NONE|ABANDON|1|1|30
1796117621|1796117589.8|common|NONE|ENTERQUEUE||79201|1
1796117623|1796117589.8|common|gen1|CONNECT|2|1796117621.14|2
1796117629|1796117589.8|common|gen1|COMPLETECALLER|2|6|1
"""
# A supervisor's withdrawal at 12 s: ivr's IVRMOVE row lands after the re-entry.
WITHDRAWN = """\
1796117591|1796117589.8|first-line|NONE|ENTERQUEUE||79201|1
1796117603|1796117589.8|first-line|NONE|ABANDON|1|1|12
1796117603|1796117589.8|common|NONE|ENTERQUEUE||79201|1
1796117604|1796117589.8|first-line|NONE|IVRMOVE|withdrawn|common
1796117610|1796117589.8|common|gen1|CONNECT|6|1796117603.14|2
"""


def read(text: str, overflow: dict[str, int] | None = None) -> QueueLog:
    return read_lines(text.splitlines(keepends=True), overflow)


def only(log: QueueLog) -> Stint:
    stints = list(log.stints())
    assert len(stints) == 1, stints
    return stints[0]


def outcomes(log: QueueLog) -> list[tuple[str, str | None, int | None]]:
    return [(s.queue, s.outcome, s.wait_s) for s in log.stints()]


# -- reading --------------------------------------------------------------------

def test_connect_ends_the_stint_answered_with_holdtime_and_member() -> None:
    log = read(ANSWERED)
    s = only(log)
    assert (s.callid, s.queue, s.entered_s, s.left_s) == ("1796117589.8", "first-line", T, T + 7)
    assert (s.outcome, s.wait_s, s.member, s.caller, s.seq) == ("answered", 7, "op2", "79201", 1)
    assert log.rows == 4 and log.bad_lines == () and log.open == ()
    assert log.last_s["1796117589.8"] == T + 49      # COMPLETECALLER: when the call ended


def test_abandon_without_a_reentry_is_abandoned() -> None:
    s = only(read(ABANDONED, OVERFLOW))
    assert (s.outcome, s.wait_s, s.left_s, s.member) == ("abandoned", 12, T + 12, "")


def test_abandon_then_enterqueue_at_the_threshold_is_a_timeout_move() -> None:
    log = read(MOVED, OVERFLOW)
    assert outcomes(log) == [("first-line", "timeout", 30), ("common", "answered", 2)]
    first, second = log.by_call["1796117589.8"]
    assert (first.seq, second.seq, first.moved_to) == (1, 2, "common")
    assert second.member == "gen1"


def test_abandon_then_enterqueue_below_threshold_or_without_one_is_transferred() -> None:
    early = MOVED.replace("ABANDON|1|1|30", "ABANDON|1|1|29")
    assert outcomes(read(early, OVERFLOW))[0] == ("first-line", "transferred", 29)
    assert outcomes(read(MOVED))[0] == ("first-line", "transferred", 30)


def test_ivrmove_row_is_the_authority_on_an_abandon() -> None:
    assert outcomes(read(WITHDRAWN, OVERFLOW)) == [("first-line", "withdrawn", 12),
                                                  ("common", "answered", 6)]
    # ivr's own timeout move, written before the ABANDON, below the threshold
    timed = WITHDRAWN.replace("1796117604|1796117589.8|first-line|NONE|IVRMOVE|withdrawn|common\n", "")
    timed = timed.replace("1796117603|1796117589.8|first-line|NONE|ABANDON",
                          "1796117603|1796117589.8|first-line|NONE|IVRMOVE|timeout|common\n"
                          "1796117603|1796117589.8|first-line|NONE|ABANDON")
    assert outcomes(read(timed, OVERFLOW))[0] == ("first-line", "timeout", 12)
    # moved somewhere that is not a queue: no re-entry, the reason still holds
    out = ABANDONED + "1796117603|1796117589.8|first-line|NONE|IVRMOVE|withdrawn|voicemail\n"
    assert only(read(out)).outcome == "withdrawn"


def test_an_ivrmove_for_another_queue_or_an_old_stay_does_not_judge() -> None:
    other = ABANDONED + "1796117603|1796117589.8|common|NONE|IVRMOVE|withdrawn|x\n"
    assert only(read(other)).outcome == "abandoned"
    stale = ("1796117500|1796117589.8|first-line|NONE|IVRMOVE|withdrawn|common\n" + ABANDONED)
    assert only(read(stale)).outcome == "abandoned"


@pytest.mark.parametrize(("line", "outcome", "wait"), [
    ("1796117621|1796117589.8|first-line|NONE|EXITWITHTIMEOUT|1|1|30", "timeout", 30),
    ("1796117596|1796117589.8|first-line|NONE|EXITEMPTY|1|1|5", "empty", 5),
    ("1796117599|1796117589.8|first-line|NONE|EXITWITHKEY|5|1|1|8", "exit_with_key", 8),
    ("1796117597|1796117589.8|first-line|NONE|WITHDRAW|1|1|6|", "withdrawn", 6),
    # an older Asterisk wrote no waittime: the row times stand in
    ("1796117599|1796117589.8|first-line|NONE|EXITWITHKEY|5|1", "exit_with_key", 8),
])
def test_other_exits(line: str, outcome: str, wait: int) -> None:
    s = only(read("1796117591|1796117589.8|first-line|NONE|ENTERQUEUE||79201|1\n" + line + "\n"))
    assert (s.outcome, s.wait_s, s.end != "") == (outcome, wait, True)


# Asterisk 22 writes BLINDTRANSFER and ATTENDEDTRANSFER after the CONNECT (never the
# old TRANSFER): exten|context|holdtime|calltime|origpos, and BRIDGE|bridge|holdtime|
# calltime|origpos (or APP|app|... and LINK|channel|...).
@pytest.mark.parametrize("transfer", [
    "first-line|op2|BLINDTRANSFER|9000|ivr-agents|7|35|1",
    "first-line|op2|ATTENDEDTRANSFER|BRIDGE|7f1c4a9e-5b1d-4c2b-9d54-0d0d2a6a1c3e|7|35|1",
    "first-line|op2|ATTENDEDTRANSFER|APP|Queue|7|35|1",
    "first-line|op2|ATTENDEDTRANSFER|LINK|PJSIP/op3-00000012|7|35|1",
])
def test_a_transfer_after_the_answer_ends_nothing_and_adds_no_stint(transfer: str) -> None:
    log = read("1796117591|1796117589.8|first-line|NONE|ENTERQUEUE||79201|1\n"
               "1796117598|1796117589.8|first-line|op2|CONNECT|7|1796117594.10|4\n"
               f"1796117633|1796117589.8|{transfer}\n")
    s = only(log)
    assert (s.outcome, s.wait_s, s.member, s.end) == ("answered", 7, "op2", "CONNECT")
    assert log.last_s["1796117589.8"] == T + 42 and log.bad_lines == ()


def test_ring_rows_and_join_failures_write_no_stint() -> None:
    """RINGCANCELED and RINGNOANSWER are about members; a join refused (FULL,
    JOINEMPTY) writes no ENTERQUEUE, so queue_log has no stint of it at all."""
    log = read("1796117591|1796117589.8|first-line|op1|RINGCANCELED|722\n"
               "1796117591|1796117589.8|first-line|op2|RINGNOANSWER|15000\n")
    assert list(log.stints()) == [] and log.bad_lines == ()


def test_stint_without_end_row_is_open() -> None:
    log = read("1796117591|1796117589.8|first-line|NONE|ENTERQUEUE||79201|1\n"
               "1796117606|1796117589.8|first-line|op1|RINGNOANSWER|15000\n")
    s = only(log)
    assert s.is_open and (s.outcome, s.left_s, s.wait_s) == (None, None, None)
    assert log.open == (s,)


def test_reentry_without_an_end_row_leaves_the_lost_stay_unobserved() -> None:
    log = read("1796117591|1796117589.8|first-line|NONE|ENTERQUEUE||79201|1\n"
               "1796117621|1796117589.8|common|NONE|ENTERQUEUE||79201|1\n"
               "1796117623|1796117589.8|common|gen1|CONNECT|2|1796117621.14|2\n")
    assert [(s.seq, s.outcome, s.wait_s) for s in log.stints()] == [
        (1, UNOBSERVED, None), (2, "answered", 2)]


def test_queue_level_rows_are_counted_and_skipped() -> None:
    log = read("1796117558|NONE|NONE|NONE|QUEUESTART|\n"
               "1796117639|NONE|first-line|op1|PAUSE|\n"
               "1796117640|NONE|first-line|PJSIP/op5|ADDMEMBER|\n" + ANSWERED)
    assert log.rows == 7 and log.bad_lines == () and len(list(log.stints())) == 1


def test_bad_lines_are_reported_and_the_rest_is_read() -> None:
    text = ("1796117591|1796117589.8|first-line|NONE|ENTERQUEUE||79201|1\n"
            "\x00\x1b[2Jgarbage that is not a queue_log row\n"
            "1796117592|1796117590.9|first-line\n"
            "17961175xx|1796117590.9|first-line|NONE|ENTERQUEUE||79202|2\n"
            "1796117593|1796117589.8|first-line|op1|CONNECT|soon|1796117594.10|4\n"
            "1796117593|1796117589.8|first-line|NONE|IVRMOVE|bored|common\n"
            "1796117594||first-line|NONE|ENTERQUEUE||79203|1\n"
            "\n"
            "1796117598|1796117589.8|first-line|op2|CONNECT|7|1796117594.10|4\n")
    log = read(text)
    assert [(b.line, b.reason.split()[0]) for b in log.bad_lines] == [
        (2, "too"), (3, "too"), (4, "time"), (5, "CONNECT"), (6, "IVRMOVE"), (7, "no")]
    assert "holdtime" in log.bad_lines[3].reason and "'soon'" in log.bad_lines[3].reason
    assert log.rows == 8                          # the blank line is not a row
    assert outcomes(log) == [("first-line", "answered", 7)]


def test_bad_line_text_is_truncated() -> None:
    log = read("x" * 5000 + "\n")
    assert len(log.bad_lines[0].text) == 120


def test_stints_between_is_half_open_on_entry_time() -> None:
    log = read(MOVED, OVERFLOW)
    assert [s.queue for s in log.stints_between(T, T + 30)] == ["first-line"]
    assert [s.queue for s in log.stints_between(T + 1, T + 31)] == ["common"]
    assert log.stints_between(T + 31, T + 99) == []


def test_crlf_and_file_with_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "queue_log"
    path.write_bytes(ANSWERED.replace("\n", "\r\n").replace("79201", "7920\xff").encode("latin-1"))
    s = only(read_file(path))
    assert (s.outcome, s.wait_s, s.caller) == ("answered", 7, "7920\ufffd")


# -- realtime rows ----------------------------------------------------------------

def test_read_rows_with_realtime_tuples_and_mappings() -> None:
    uid = "1796117589.8"
    rows: list[object] = [
        # given out of order, as a SELECT without ORDER BY may: the microseconds sort it
        ("2026-12-01 09:33:41.500123+00", uid, "first-line", "NONE", "ABANDON", "1", "1", "30", None, None),
        ("2026-12-01 09:33:11.000001+00", uid, "first-line", "NONE", "ENTERQUEUE", "", "79201", "1", None, None),
        {"time": "2026-12-01 09:33:41.500400+00", "callid": uid, "queuename": "common",
         "agent": "NONE", "event": "ENTERQUEUE", "data1": "", "data2": "79201", "data3": "1"},
        (datetime(2026, 12, 1, 9, 33, 43, 1, tzinfo=timezone.utc), uid, "common", "gen1", "CONNECT",
         "2", "1796117621.14", "2"),
        ("1796117629", uid, "common", "gen1", "COMPLETECALLER", "2", "6", "1", "", ""),
    ]
    log = read_rows(rows, OVERFLOW)
    assert log.bad_lines == () and log.rows == 5
    assert [(s.queue, s.entered_s, s.outcome, s.wait_s) for s in log.stints()] == [
        ("first-line", T, "timeout", 30), ("common", T + 30, "answered", 2)]
    assert log.last_s[uid] == T + 38


def test_read_rows_naive_times_and_the_old_data_column() -> None:
    plus3 = timezone(timedelta(hours=3))
    rows = [
        ("2026-12-01 12:33:11", "u1", "first-line", "NONE", "ENTERQUEUE", "", "79201", "1"),
        {"TIME": "2026-12-01 12:33:18.9", "callid": "u1", "queuename": "first-line",
         "agent": "op1", "event": "CONNECT", "data": "7|1796117594.10|4"},
    ]
    s = only(read_rows(rows, naive_tz=plus3))
    assert (s.entered_s, s.outcome, s.wait_s, s.member) == (T, "answered", 7, "op1")


def test_read_rows_with_db_records_that_have_keys() -> None:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    db.execute("CREATE TABLE queue_log (id INTEGER PRIMARY KEY, time TEXT, callid TEXT, "
               "queuename TEXT, agent TEXT, event TEXT, data1 TEXT, data2 TEXT, data3 TEXT, "
               "data4 TEXT, data5 TEXT)")
    db.executemany("INSERT INTO queue_log (time, callid, queuename, agent, event, data1, data2, data3)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
                       ("1796117591", "u1", "first-line", "NONE", "ENTERQUEUE", "", "79201", "1"),
                       ("1796117603", "u1", "first-line", "NONE", "ABANDON", "1", "1", "12")])
    log = read_rows(db.execute("SELECT * FROM queue_log ORDER BY time, id"))
    db.close()
    assert outcomes(log) == [("first-line", "abandoned", 12)] and log.bad_lines == ()


def test_read_rows_reports_bad_rows() -> None:
    rows: list[object] = [
        ("yesterday", "u1", "first-line", "NONE", "ENTERQUEUE", "", "1", "1"),
        {"callid": "u1", "event": "ENTERQUEUE"},
        ("1796117591", "u1"),
        "1796117591|u1|first-line|NONE|ENTERQUEUE||1|1",
        (True, "u1", "first-line", "NONE", "ENTERQUEUE"),
        ("1796117591", "u2", "first-line", "NONE", "ENTERQUEUE", "", "79", "1"),
    ]
    log = read_rows(rows)
    assert [b.line for b in log.bad_lines] == [1, 2, 3, 4, 5]
    assert [s.callid for s in log.stints()] == ["u2"]


# -- reconciling ------------------------------------------------------------------

def visit(seq: int, queue: str, entered_s: int, outcome: str, wait_ms: int | None,
          member: str = "") -> VisitRecord:
    left = None if wait_ms is None else entered_s * S + wait_ms * 1000
    return VisitRecord(seq, queue, entered_s * S, left, outcome, wait_ms, member)


def call(uid: str, *visits: VisitRecord, source: str = "live", pbx: str = "lab") -> CallRecord:
    first = visits[0].entered_us if visits else T * S
    return CallRecord(pbx, uid, uid, "79201", "", "", first, first + 60 * S, tuple(visits),
                      "answered", True, source, "ms")


THREE_CALLS = ANSWERED.replace("1796117589.8", "a") + MOVED.replace("1796117589.8", "m") \
    + ABANDONED.replace("1796117589.8", "x")


def ledger() -> list[CallRecord]:
    return [
        call("a", visit(1, "first-line", T, "answered", 7_000, "op2")),
        call("m", visit(1, "first-line", T, "timeout", 30_000),
             visit(2, "common", T + 30, "answered", 2_100, "gen1")),
        call("x", visit(1, "first-line", T, "abandoned", 12_400)),
    ]


def test_all_matched() -> None:
    rec = reconcile(read(THREE_CALLS, OVERFLOW), ledger(), T, T + 3600)
    assert (rec.matched, rec.missing_in_ledger, rec.missing_in_queue_log, rec.disagreements) \
        == (4, (), (), ())
    out = rec.to_json()
    assert set(out) == {"matched", "missing_in_ledger", "missing_in_queue_log", "disagreements",
                        "backfilled", "bad_lines", "open", "damaged"}
    assert out["backfilled"] == 0 and out["open"] == 0
    json.dumps(out)


def test_a_call_missing_from_the_ledger() -> None:
    rec = reconcile(read(THREE_CALLS, OVERFLOW), ledger()[:2], T, T + 3600)
    assert rec.matched == 3
    assert [(s.callid, s.queue, s.outcome) for s in rec.missing_in_ledger] == [
        ("x", "first-line", "abandoned")]
    assert rec.to_json()["missing_in_ledger"] == [{
        "uniqueid": "x", "queue": "first-line", "seq": 1, "entered_s": T, "left_s": T + 12,
        "outcome": "abandoned", "wait_s": 12, "member": "", "caller": "79201"}]


def test_a_stint_missing_within_a_present_call() -> None:
    calls = ledger()
    calls[1] = replace(calls[1], visits=calls[1].visits[:1])
    rec = reconcile(read(THREE_CALLS, OVERFLOW), calls, T, T + 3600)
    assert [(s.callid, s.queue, s.seq) for s in rec.missing_in_ledger] == [("m", "common", 2)]
    assert rec.matched == 3


def test_visits_missing_in_queue_log() -> None:
    calls = ledger() + [call("ghost", visit(1, "first-line", T + 5, "abandoned", 3_000)),
                        call("filled", visit(1, "first-line", T + 5, "abandoned", 3_000),
                             source=QUEUE_LOG),
                        call("later", visit(1, "first-line", T + 7200, "abandoned", 3_000))]
    calls[0] = replace(calls[0], visits=calls[0].visits + (visit(2, "common", T + 50, "abandoned", 1_000),))
    rec = reconcile(read(THREE_CALLS, OVERFLOW), calls, T, T + 3600)
    assert [(m.uniqueid, m.visit.queue, m.visit.seq) for m in rec.missing_in_queue_log] == [
        ("a", "common", 2), ("ghost", "first-line", 1)]
    missing = rec.to_json()["missing_in_queue_log"]
    assert isinstance(missing, list) and missing[1]["entered_s"] == T + 5


def test_an_outcome_disagreement() -> None:
    calls = ledger()
    calls[1] = replace(calls[1], visits=(replace(calls[1].visits[0], outcome="abandoned"),
                                         calls[1].visits[1]))
    rec = reconcile(read(THREE_CALLS, OVERFLOW), calls, T, T + 3600)
    assert [(d.uniqueid, d.queue, d.kind, d.ledger, d.queue_log) for d in rec.disagreements] == [
        ("m", "first-line", "outcome", "abandoned", "timeout")]
    assert rec.matched == 4


@pytest.mark.parametrize(("wait_ms", "differs"), [(9_000, True), (7_900, False), (6_100, False),
                                                  (8_000, False), (8_001, True), (5_999, True)])
def test_wait_disagrees_beyond_one_second(wait_ms: int, differs: bool) -> None:
    calls = [call("a", visit(1, "first-line", T, "answered", wait_ms, "op2"))]
    rec = reconcile(read(ANSWERED.replace("1796117589.8", "a")), calls, T, T + 3600)
    assert [(d.kind, d.field, d.ledger, d.queue_log) for d in rec.disagreements] == (
        [("wait", "wait_s", wait_ms / 1000, 7)] if differs else [])


def test_unobserved_visit_that_queue_log_resolves() -> None:
    calls = ledger()
    calls[2] = call("x", VisitRecord(1, "first-line", T * S, None, UNOBSERVED, None))
    rec = reconcile(read(THREE_CALLS, OVERFLOW), calls, T, T + 3600)
    assert [(d.uniqueid, d.kind, d.ledger, d.queue_log) for d in rec.disagreements] == [
        ("x", "unobserved", UNOBSERVED, "abandoned")]


def test_reconcile_rejudges_with_the_overflow_it_is_given() -> None:
    log = read(THREE_CALLS)                       # read without thresholds: "transferred"
    assert len(reconcile(log, ledger(), T, T + 3600).disagreements) == 1
    assert reconcile(log, ledger(), T, T + 3600, OVERFLOW).disagreements == ()


def test_open_stints_are_neither_matched_nor_missing() -> None:
    waiting = "1796117595|w|first-line|NONE|ENTERQUEUE||79555|2\n"
    rec = reconcile(read(THREE_CALLS + waiting, OVERFLOW), ledger(), T, T + 3600)
    assert (rec.open, rec.matched, rec.missing_in_ledger) == (1, 4, ())
    # the ledger already closed it, queue_log has not yet: still only open
    calls = ledger() + [call("w", visit(1, "first-line", T + 4, "abandoned", 2_000))]
    rec = reconcile(read(THREE_CALLS + waiting, OVERFLOW), calls, T, T + 3600)
    assert (rec.open, rec.missing_in_queue_log, rec.disagreements) == (1, (), ())


def test_period_and_pbx_filter() -> None:
    log = read(THREE_CALLS, OVERFLOW)
    rec = reconcile(log, ledger(), T + 1, T + 3600)              # only m's common stint
    assert (rec.matched, rec.missing_in_ledger) == (1, ())
    other = [replace(c, pbx="other") for c in ledger()]
    rec = reconcile(log, other, T, T + 3600, pbx="lab")
    assert (rec.matched, len(rec.missing_in_ledger)) == (0, 4)


def test_bad_lines_travel_into_the_reconciliation_and_text() -> None:
    rec = reconcile(read(THREE_CALLS + "nonsense\n", OVERFLOW), ledger()[:2], T, T + 3600)
    assert rec.to_json()["bad_lines"] == [{"line": 14, "text": "nonsense",
                                           "reason": "too few fields (1, need at least 5)"}]
    text = rec.to_text()
    assert "matched" in text and "missing in ledger" in text and "nonsense" in text
    counts = [line for line in text.splitlines()[1:8]]
    assert len({len(line) for line in counts}) == 1               # aligned


# -- backfilling ------------------------------------------------------------------

def test_backfill_builds_an_absent_call_answered_within_threshold() -> None:
    log = read(ANSWERED.replace("|7|", "|30|").replace("1796117598|", "1796117621|"), OVERFLOW)
    done = backfill(reconcile(log, [], T, T + 3600), log, [], "lab", "first-line", 30)
    (c,) = done.calls
    assert (c.pbx, c.uniqueid, c.linkedid, c.caller, c.account, c.area) == (
        "lab", "1796117589.8", "1796117589.8", "79201", "", "")
    assert (c.entered_us, c.ended_us) == (T * S, (T + 49) * S)
    assert (c.outcome, c.payable, c.source, c.precision) == ("answered", True, QUEUE_LOG, SECONDS)
    assert (c.answered_us, c.answered_queue, c.answered_member) == ((T + 30) * S, "first-line", "op2")
    assert c.visits == (VisitRecord(1, "first-line", T * S, (T + 30) * S, "answered", 30_000, "op2"),)
    assert done.visits == [] and done.count == 1


def test_backfill_holdtime_over_threshold_is_not_payable() -> None:
    log = read(ANSWERED.replace("|7|", "|31|"))
    (c,) = backfill(list(log.stints()), log, [], "lab", "first-line", 30).calls
    assert (c.outcome, c.payable) == ("answered", False)


def test_backfill_moved_call_answered_in_common_is_not_payable() -> None:
    log = read(MOVED, OVERFLOW)
    (c,) = backfill(reconcile(log, [], T, T + 3600), log, [], "lab").calls
    assert (c.outcome, c.payable, c.answered_queue) == ("answered", False, "common")
    assert [(v.seq, v.queue, v.outcome, v.wait_ms) for v in c.visits] == [
        (1, "first-line", "timeout", 30_000), (2, "common", "answered", 2_000)]


@pytest.mark.parametrize(("answer_at", "payable"), [(30, True), (31, False)])
def test_backfill_answer_in_a_later_first_line_stay_counts_from_first_entry(
        answer_at: int, payable: bool) -> None:
    text = (f"{T}|b|first-line|NONE|ENTERQUEUE||79201|1\n"
            f"{T + 10}|b|first-line|NONE|ABANDON|1|1|10\n"
            f"{T + 10}|b|common|NONE|ENTERQUEUE||79201|1\n"
            f"{T + 15}|b|common|NONE|ABANDON|1|1|5\n"
            f"{T + 15}|b|first-line|NONE|ENTERQUEUE||79201|1\n"
            f"{T + answer_at}|b|first-line|op1|CONNECT|{answer_at - 15}|x.1|1\n")
    log = read(text, OVERFLOW)
    (c,) = backfill(list(log.stints()), log, [], "lab").calls
    assert (c.outcome, c.payable, len(c.visits)) == ("answered", payable, 3)


def test_backfill_abandoned_and_unanswered() -> None:
    log = read(ABANDONED)
    (c,) = backfill(list(log.stints()), log, [], "lab").calls
    assert (c.outcome, c.payable, c.answered_us, c.ended_us) == ("abandoned", False, None, (T + 12) * S)
    timed = read(f"{T}|t|first-line|NONE|ENTERQUEUE||79201|1\n"
                 f"{T + 30}|t|first-line|NONE|EXITWITHTIMEOUT|1|1|30\n")
    (c,) = backfill(list(timed.stints()), timed, [], "lab").calls
    assert (c.outcome, c.payable) == ("unanswered", False)


def test_backfill_extra_visits_for_a_present_call_continue_its_seq() -> None:
    log = read(THREE_CALLS, OVERFLOW)
    calls = ledger()
    calls[1] = replace(calls[1], visits=(replace(calls[1].visits[0], seq=3),))
    rec = reconcile(log, calls, T, T + 3600)
    done = backfill(rec, log, calls, "lab")
    assert done.calls == []
    assert done.visits == [("lab", "m", VisitRecord(4, "common", (T + 30) * S, (T + 32) * S,
                                                    "answered", 2_000, "gen1"))]
    assert replace(rec, backfilled=done.count).to_json()["backfilled"] == 1


def test_backfill_leaves_a_call_still_waiting_alone() -> None:
    log = read(MOVED.splitlines(keepends=True)[0] + MOVED.splitlines(keepends=True)[2]
               + MOVED.splitlines(keepends=True)[3], OVERFLOW)
    assert len(log.open) == 1
    done = backfill(list(log.stints()), log, [], "lab")
    assert done == Backfill([], [])


# -- the lab recording ----------------------------------------------------------------

@pytest.mark.skipif(not LAB.exists(), reason="no lab queue_log recorded yet")
def test_lab_recording_reads_cleanly() -> None:
    log = read_file(LAB, OVERFLOW)
    assert log.bad_lines == ()
    stints = list(log.stints())
    assert stints
    known = {*OUTCOMES, "exit_with_key", UNOBSERVED}
    assert all(s.is_open or s.outcome in known for s in stints), [s for s in stints]
    assert all(s.wait_s is not None for s in stints if not s.is_open and s.outcome != UNOBSERVED)


# -- hostile input: the reader never raises ----------------------------------------

EVENTS = ("ENTERQUEUE", "CONNECT", "ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY",
          "WITHDRAW", "IVRMOVE", "COMPLETECALLER", "RINGNOANSWER", "PAUSE", "")
FIELD = st.one_of(st.sampled_from(["", "NONE", "first-line", "common", "timeout", "withdrawn",
                                   "op1", "30", "-1", "x"]),
                  st.integers(0, 99).map(str), st.text(max_size=6))
LINE = st.builds(lambda *head, data: "|".join([*head, *data]),
                 st.integers(T - 2, T + 60).map(str) | st.text(max_size=4),
                 st.sampled_from(["u1", "u2", "NONE", ""]),
                 st.sampled_from(["first-line", "common", ""]), FIELD, st.sampled_from(EVENTS),
                 data=st.lists(FIELD, max_size=5)) | st.text(max_size=40)


def hostile(max_examples: int) -> settings:
    return settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@hostile(200)
@given(lines=st.lists(LINE, max_size=25))
def test_any_lines_read_reconcile_and_backfill_without_raising(lines: list[str]) -> None:
    log = read_lines(line + "\n" for line in lines)
    known = {*OUTCOMES, "exit_with_key", UNOBSERVED}
    for stints in log.by_call.values():
        assert [s.seq for s in stints] == list(range(1, len(stints) + 1))
        assert all(s.is_open or s.outcome in known for s in stints)
    assert all(b.reason and 1 <= b.line <= len(lines) for b in log.bad_lines)
    rec = reconcile(log, [call("u1", visit(1, "first-line", T, UNOBSERVED, None))], T, T + 60,
                    OVERFLOW)
    json.dumps(rec.to_json())
    rec.to_text()
    backfill(rec, log, [], "lab")


@hostile(100)
@given(rows=st.lists(st.one_of(
    st.tuples(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30)),
              st.sampled_from(["u1", "NONE"]), st.just("first-line"), st.just("NONE"),
              st.sampled_from(EVENTS), st.text(max_size=3)),
    st.dictionaries(st.sampled_from(("time", "callid", "event", "data", "x")),
                    st.one_of(st.none(), st.integers(), st.text(max_size=8))),
    st.integers(), st.text(max_size=5), st.none()), max_size=12))
def test_any_rows_read_without_raising(rows: list[object]) -> None:
    log = read_rows(rows)
    assert log.rows == len(rows)


def test_lines_are_parsed_one_at_a_time() -> None:
    # An endless source: parsing must yield as it reads, never hold the whole file.
    endless = itertools.cycle([f"{T}|1.1|first-line|NONE|ENTERQUEUE||79201|1\n", "\n", "bad\n"])
    first = list(itertools.islice(parse_lines(endless), 3))
    assert [type(x) for x in first] == [Row, BadLine, Row]
    assert isinstance(first[0], Row) and (first[0].line, first[0].event) == (1, "ENTERQUEUE")
    assert isinstance(first[1], BadLine) and first[1].line == 3
