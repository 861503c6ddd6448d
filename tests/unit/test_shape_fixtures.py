"""Our own recordings of the lab's queue shapes, replayed without the lab.

tests/lab/test_queue_shapes.py (and the lab tests marked `recorded`) check
ivr's verdict on each shape against Asterisk's own on the real PBX; run with
IVR_RECORD_FIXTURES=1 they keep the AMI stream ivr received and what they
checked (tests/lab/conftest.py).  Here the recording goes through the
replay pipeline (ivr/pbx/replay.py, `ivr replay`): the same calls, visits,
outcomes and members, and each visit's wait within the second of
queue_log's own figure for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ivr.pbx.replay import ReplayedCall, replay_files

SHAPES = Path(__file__).parents[1] / "fixtures" / "shapes"
CASES = sorted(SHAPES.glob("*.ami"))

# queue_log's row for leaving a queue -> (ivr outcomes it may be, index of the wait in its data).
# ABANDON is also what Asterisk writes for a caller another client redirected away,
# which ivr tells apart as transferred.
EXITS: dict[str, tuple[set[str], int]] = {
    "CONNECT": ({"answered"}, 0),                 # holdtime|bridged uniqueid|ringtime
    "ABANDON": ({"abandoned", "transferred"}, 2),  # position|origposition|waittime
    "EXITWITHKEY": ({"exit_with_key"}, 3),        # key|position|origposition|waittime
    "EXITEMPTY": ({"empty"}, 2),
    "EXITWITHTIMEOUT": ({"timeout"}, 2),
    "WITHDRAW": ({"withdrawn"}, 2),               # position|origposition|waittime|info
}


def test_every_shape_of_the_lab_is_recorded() -> None:
    names = {p.stem for p in CASES}
    for shape in ("exit_with_key", "transferred", "withdrawn", "leave_when_empty", "local_member",
                  "optimised_away", "confirm_step", "app_agent_pool", "ringall",
                  "without_timestamps", "move_to_common", "abandoned", "within_sla",
                  "transfer_reaches_an_engineer"):
        assert any(shape in n for n in names), f"no recording of {shape} in {SHAPES}"
    assert all(p.with_suffix(".json").is_file() for p in CASES)


def _exit_rows(rows: list[str], queue: str) -> list[tuple[set[str], str, list[str]]]:
    """(outcomes it may be, CONNECT's agent, data) of each exit row of `queue`."""
    found: list[tuple[set[str], str, list[str]]] = []
    moved = ""              # an IVRMOVE row that came before its ABANDON
    last = ""               # the queue's previous row's event
    for row in rows:
        q, agent, event, *data = row.split("|")
        if q != queue:
            continue
        last, before = event, last
        if event in EXITS:
            outcomes = {moved} if moved and event == "ABANDON" else EXITS[event][0]
            found.append((outcomes, agent if event == "CONNECT" else "", data[EXITS[event][1]:]))
            moved = ""
        elif event == "IVRMOVE":
            # ivr's own row (queue_log_decisions), on either side of its ABANDON: that
            # was ivr's move (a Redirect), for the reason it names.
            if before == "ABANDON":
                found[-1] = ({data[0]}, "", found[-1][2])
            else:
                moved = data[0]
    return found


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_a_recorded_shape_replays_to_the_verdict_checked_on_the_lab(path: Path) -> None:
    checked: dict[str, Any] = json.loads(path.with_suffix(".json").read_text())
    replayed: dict[str, ReplayedCall] = {c.uniqueid: c for c in replay_files([path]).calls()}
    assert checked["calls"], "a recording with no call checks nothing"
    for want in checked["calls"]:
        got = replayed[want["uniqueid"]]
        assert not got.in_progress
        assert got.payable == want["payable"]
        assert [(v.queue, v.outcome, v.member) for v in got.visits] == \
            [(v["queue"], v["outcome"], v["member"]) for v in want["visits"]]
        rows = checked["queue_log"][want["uniqueid"]]
        seen: dict[str, int] = {}
        for visit, wanted in zip(got.visits, want["visits"]):
            if wanted["wait_ms"] is not None:
                assert visit.wait_ms is not None and abs(visit.wait_ms - wanted["wait_ms"]) <= 2
            # Asterisk's own account of this visit: the queue's next exit row.
            exits = _exit_rows(rows, visit.queue)
            nth = seen[visit.queue] = seen.get(visit.queue, -1) + 1
            assert nth < len(exits), f"queue_log has no exit of {visit.queue} for {visit}"
            outcomes, agent, data = exits[nth]
            assert visit.outcome in outcomes, (outcomes, visit)
            assert agent == (visit.member if visit.outcome == "answered" else "")
            assert visit.wait_ms is not None and abs(visit.wait_ms / 1000 - int(data[0])) < 1.0
