"""`ivr replay FILE [--json]`: every call of a recording or a transcript, as ivr counts it.

The expected outcomes of the lab transcripts are tests/unit/test_replay.py's,
asserted here on what the command prints.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ivr.ami.recording import MAGIC, Recorder
from ivr.cli.main import main
from ivr.calls.facts import JourneyEnded
from ivr.pbx.replay import Replay
from tests.replay import FIXTURES
from tests.replay import Replay as LabReplay
from tests.replay import transcript
from tests.unit.test_readme import _keys_table

CALL_KEYS = {"uniqueid", "caller", "payable", "in_progress", "visits"}
VISIT_KEYS = {"queue", "outcome", "wait_ms", "member"}


def replay_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["replay", *args, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert set(body) == {"calls"}
    for call in body["calls"]:
        assert set(call) == CALL_KEYS
        assert all(set(v) == VISIT_KEYS for v in call["visits"])
    calls: list[dict[str, Any]] = body["calls"]
    return calls


def visits(call: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v["queue"], v["outcome"]) for v in call["visits"]]


def fixture(name: str) -> str:
    return str(FIXTURES / f"{name}.ami")


def test_answered_by_operators_after_3s(capsys: pytest.CaptureFixture[str]) -> None:
    calls = replay_json(capsys, fixture("answered"))
    assert [visits(c) for c in calls] == [[("first-line", "answered")]] * 2
    for c in calls:
        (v,) = c["visits"]
        assert 3000 <= v["wait_ms"] < 3100 and v["member"]
        assert c["payable"] is True and c["in_progress"] is False


def test_moved_by_ivr_at_30s(capsys: pytest.CaptureFixture[str]) -> None:
    (call,) = replay_json(capsys, fixture("moved"))
    assert visits(call) == [("first-line", "timeout"), ("common", "answered")]
    assert 30_000 <= call["visits"][0]["wait_ms"] <= 30_010
    assert call["payable"] is False


def test_dialplan_fallback_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    (call,) = replay_json(capsys, fixture("fallback_timeout"))
    assert visits(call) == [("first-line", "timeout"), ("common", "answered")]
    assert 30_000 <= call["visits"][0]["wait_ms"] < 32_000


def test_callers_hanging_up_are_abandoned(capsys: pytest.CaptureFixture[str]) -> None:
    calls = replay_json(capsys, fixture("abandoned"))
    assert [visits(c) for c in calls] == [[("first-line", "abandoned")]] * 2
    assert not any(c["payable"] or c["in_progress"] for c in calls)


def test_a_caller_still_waiting_is_listed_in_progress(capsys: pytest.CaptureFixture[str]) -> None:
    (call,) = replay_json(capsys, fixture("resync"))
    assert call["in_progress"] is True
    assert call["visits"] == [{"queue": "first-line", "outcome": "waiting", "wait_ms": None,
                               "member": ""}]


@pytest.mark.parametrize("name", ["answered", "moved", "abandoned", "fallback_timeout", "resync"])
def test_the_command_lists_what_the_test_replay_holds(name: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    r = LabReplay().feed(transcript(name))
    ended = {f.uniqueid for f in r.of(JourneyEnded)}
    calls = replay_json(capsys, fixture(name))
    assert {c["uniqueid"] for c in calls if not c["in_progress"]} == ended
    assert {c["uniqueid"] for c in calls if c["in_progress"]} == set(r.tracker.journeys)


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", fixture("moved")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\S+  caller 79511  payable no", out[0])
    assert re.fullmatch(r" {4}first-line +timeout +300\d\d ms  -", out[1])
    assert re.fullmatch(r" {4}common +answered +\d+ ms  gen\d", out[2])
    assert out[3:] == ["1 call(s)"]


def test_first_line_and_threshold_decide_payable(capsys: pytest.CaptureFixture[str]) -> None:
    (call,) = replay_json(capsys, fixture("moved"), "--first-line", "common")
    assert call["payable"] is True            # answered in common ~2 s after entering it
    (call,) = replay_json(capsys, fixture("moved"), "--first-line", "common",
                          "--threshold-ms", "1000")
    assert call["payable"] is False


def write_recording(path: Path, chunks: list[tuple[float, bytes]]) -> None:
    rec = Recorder(path)
    for at, data in chunks:
        rec.received(data, at)
    rec.close()


UNSTAMPED = [
    b"Asterisk Call Manager/11.0.0\r\n",
    b"Event: QueueCallerJoin\r\nChannel: PJSIP/c-1\r\nCallerIDNum: 5001\r\nContext: q\r\n"
    b"Uniqueid: 7.1\r\nQueue: first-line\r\n\r\n"
    b"Event: QueueCallerJoin\r\nChannel: PJSIP/c-2\r\nCallerIDNum: 5002\r\nContext: q\r\n"
    b"Uniqueid: 7.2\r\nQueue: first-line\r\n\r\n",
    b"Event: AgentConnect\r\nUniqueid: 7.1\r\nQueue: first-line\r\nMemberName: op1\r\n"
    b"HoldTime: 4\r\n\r\n",
    b"Event: HangupRequest\r\nUniqueid: 7.2\r\n\r\n"
    b"Event: QueueCallerAbandon\r\nChannel: PJSIP/c-2\r\nContext: q\r\nUniqueid: 7.2\r\n"
    b"Queue: first-line\r\nHoldTime: 6\r\n\r\nEvent: Hangup\r\nUniqueid: 7.2\r\n\r\n",
]


def test_without_timestamps_a_recording_is_judged_by_asterisks_holdtime(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "unstamped.rec"
    t = 1796128145.0
    write_recording(path, list(zip((t, t + 0.001, t + 4.501, t + 6.751), UNSTAMPED)))
    calls = {c["uniqueid"]: c for c in replay_json(capsys, str(path))}
    assert capsys.readouterr().err == ""      # arrival times: nothing to warn about
    # Arrived 4.5 s after the join; Asterisk's HoldTime says 4: judged as 4,000 ms.
    assert calls["7.1"]["visits"] == [{"queue": "first-line", "outcome": "answered",
                                       "wait_ms": 4000, "member": "op1"}]
    assert calls["7.1"]["payable"] is True and calls["7.1"]["in_progress"] is True
    assert visits(calls["7.2"]) == [("first-line", "abandoned")]
    assert calls["7.2"]["visits"][0]["wait_ms"] == 6000


def test_a_transcript_without_timestamps_is_judged_by_holdtime_whatever_the_clock() -> None:
    ticks = itertools.count(100.0, 1.5)        # each message decoded 1.5 s after the last
    r = Replay(clock=lambda: next(ticks))
    r.receive(b"".join(UNSTAMPED))
    r.close()
    calls = {c.uniqueid: c for c in r.calls()}
    # Join read at 100.0, AgentConnect at 103.0 with HoldTime 4: Asterisk's 4 s.
    assert calls["7.1"].visits[0].wait_ms == 4000
    assert r.untimed == 6


def test_a_transcript_without_timestamps_warns(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "stripped.ami"
    path.write_bytes(re.sub(rb"Timestamp: [0-9.]+\r\n", b"", transcript("answered")))
    assert main(["replay", str(path)]) == 0
    captured = capsys.readouterr()
    assert "2 call(s)" in captured.out
    (line,) = captured.err.splitlines()
    assert line.startswith("ivr replay: warning:") and "Timestamp" in line


def test_rotated_parts_replay_as_one_stream(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ami.rec"
    data = transcript("moved")
    rec = Recorder(path, max_bytes=20_000, backups=9)
    for n, at in zip(range(0, len(data), 700), itertools.count(1795530570.0, 0.5)):
        rec.received(data[n:n + 700], at)
    rec.close()
    parts = sorted(tmp_path.glob("ami.rec.*"), key=lambda p: -int(p.suffix[1:])) + [path]
    assert len(parts) > 2
    (call,) = replay_json(capsys, *map(str, parts))
    assert visits(call) == [("first-line", "timeout"), ("common", "answered")]


@pytest.mark.parametrize("content", [
    None, b"dir", MAGIC + b"< soon 3\nabc\n",
    b"pbx-host\n",                                          # /etc/hostname: not one AMI frame
    b"root:x:0:0:root:/root:/bin/bash\nbin:x:2:2::/bin:\n",  # /etc/passwd
    b"",                                                    # empty
    MAGIC])                                                 # a recording of nothing at all
def test_bad_files_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           content: bytes | None) -> None:
    path = tmp_path / "x.rec"
    if content == b"dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    assert main(["replay", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("ivr replay: ") and str(path) in line


def test_help_explains_both_kinds_of_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    out = capsys.readouterr().out
    assert "#ivr-ami-recording 1" in out and "ivr run --record-ami" in out
    assert "transcript" in out and "Timestamp" in out


def test_run_help_mentions_recording(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--record-ami FILE" in out and "--record-max-mb" in out and "ivr replay" in out


def test_readme_lists_the_replay_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    table = _keys_table("`ivr replay --json` keys")
    assert table == {"calls": CALL_KEYS, "visits": VISIT_KEYS}


def test_a_transcript_of_no_followed_event_lists_none(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "quiet.ami"
    path.write_bytes(b"Asterisk Call Manager/11.0.0\r\nEvent: Newexten\r\nUniqueid: 1.1\r\n\r\n")
    assert replay_json(capsys, str(path)) == []


def test_a_banner_alone_is_no_transcript(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The codec takes a first line without a colon for the banner, so /etc/hostname
    would pass for one: a transcript needs one AMI frame."""
    path = tmp_path / "banner.ami"
    path.write_bytes(b"Asterisk Call Manager/11.0.0\r\n")
    assert main(["replay", str(path)]) == 2
    assert "not one AMI frame" in capsys.readouterr().err


def test_a_recording_of_no_calls_lists_none(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "quiet.rec"
    write_recording(path, [(1.0, UNSTAMPED[0])])
    assert path.read_bytes().startswith(MAGIC)
    assert replay_json(capsys, str(path)) == []
