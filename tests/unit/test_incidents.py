"""ivr.incidents: open/close, expiry on a fake clock, coverage, strict validation, the file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ivr.routing.incidents import ALL_AREAS, MAX_EXPIRES_IN, Incident, IncidentError, Incidents

T0 = 1_700_000_000.0   # 2023-11-14T22:13:20Z


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> Incidents:
    return Incidents(clock)


# -- open, close, active ------------------------------------------------------

def test_open_returns_the_incident(store: Incidents) -> None:
    inc = store.open("north", "  Fibre cut near the depot  ", 3600)
    assert inc.id.startswith("inc-") and len(inc.id) == 12
    assert (inc.area, inc.message, inc.started_at, inc.expires_at) == (
        "north", "Fibre cut near the depot", T0, T0 + 3600)
    assert store.active() == [inc]


def test_ids_are_unique(store: Incidents) -> None:
    assert len({store.open("north", "x", 60).id for _ in range(200)}) == 200


def test_close(store: Incidents) -> None:
    inc = store.open("north", "x", 60)
    assert store.close(inc.id) == inc
    assert store.close(inc.id) is None
    assert store.close("inc-nothere") is None
    assert store.active() == []


def test_active_is_oldest_first_and_prunes_expired(store: Incidents, clock: Clock) -> None:
    a = store.open("north", "a", 100)
    clock.now += 10
    b = store.open("south", "b", 1000)
    clock.now += 10
    c = store.open("*", "c", 500)
    assert store.active() == [a, b, c]
    clock.now = T0 + 99.999
    assert store.active() == [a, b, c]
    clock.now = T0 + 100           # expires_at is exclusive
    assert store.active() == [b, c]
    clock.now = T0 + 20 + 500
    assert store.active() == [b]
    assert store.close(a.id) is None


def test_to_json(store: Incidents, clock: Clock) -> None:
    inc = store.open("north", "Outage", 90.5)
    clock.now += 30
    assert inc.to_json(clock.now) == {
        "id": inc.id, "area": "north", "message": "Outage",
        "started_at": T0, "expires_at": T0 + 90.5,
        "started": "2023-11-14T22:13:20Z", "expires": "2023-11-14T22:14:50Z",
        "expires_in": 60.5,
    }
    assert inc.to_json(T0 + 1000)["expires_in"] == 0.0
    json.dumps(inc.to_json(clock.now))


# -- covering -----------------------------------------------------------------

def test_covering_area_and_all(store: Incidents, clock: Clock) -> None:
    north = store.open("north", "north", 1000)
    assert store.covering("north") == north
    assert store.covering("south") is None
    assert store.covering(None) is None
    clock.now += 1
    everywhere = store.open(ALL_AREAS, "everywhere", 100)
    assert store.covering("north") == everywhere       # the most recently started wins
    assert store.covering("south") == everywhere
    assert store.covering(None) == everywhere
    clock.now += 1
    north2 = store.open("north", "north again", 1000)
    assert store.covering("north") == north2
    assert store.covering("south") == everywhere
    assert store.covering(None) == everywhere


def test_covering_forgets_closed_and_expired(store: Incidents, clock: Clock) -> None:
    old = store.open("north", "old", 1000)
    clock.now += 1
    new = store.open("north", "new", 10)
    everywhere = store.open("*", "all", 5)
    assert store.covering(None) == everywhere
    clock.now += 5
    assert store.covering(None) is None
    assert store.covering("north") == new
    clock.now += 5
    assert store.covering("north") == old
    store.close(old.id)
    assert store.covering("north") is None


def test_covering_same_start_latest_opened_wins(store: Incidents) -> None:
    store.open("north", "first", 100)
    second = store.open("north", "second", 100)
    assert store.covering("north") == second


# -- validation -----------------------------------------------------------------

@pytest.mark.parametrize("area", ["", "North", "no rth", "north\n", "**", "a_b", None, 7, ["north"]])
def test_bad_area(store: Incidents, area: object) -> None:
    with pytest.raises(IncidentError, match="^area must be \"\\*\" or a slug of a-z, 0-9 and '-'$"):
        store.open(area, "x", 60)


@pytest.mark.parametrize("message, expected", [
    ("", "message must be a non-empty string"),
    ("   ", "message must be a non-empty string"),
    (None, "message must be a non-empty string"),
    (42, "message must be a non-empty string"),
    (b"bytes", "message must be a non-empty string"),
    ("x" * 501, "message must be at most 500 characters"),
    ("line\nbreak", "message must not contain control characters"),
    ("tab\there", "message must not contain control characters"),
    ("bell\x07", "message must not contain control characters"),
    ("del\x7f", "message must not contain control characters"),
    ("c1\x85", "message must not contain control characters"),
])
def test_bad_message(store: Incidents, message: object, expected: str) -> None:
    with pytest.raises(IncidentError, match=f"^{expected}$"):
        store.open("north", message, 60)


def test_message_limits_accepted(store: Incidents) -> None:
    assert len(store.open("north", "x" * 500, 60).message) == 500
    assert store.open("north", "Авария на линии, ça va", 60).message == "Авария на линии, ça va"


@pytest.mark.parametrize("expires_in", [
    True, False, "3600", None, [60], 0, 0.999, -5, MAX_EXPIRES_IN + 1, MAX_EXPIRES_IN + 0.5,
    float("nan"), float("inf"),
])
def test_bad_expires_in(store: Incidents, expires_in: object) -> None:
    with pytest.raises(IncidentError,
                       match="^expires_in must be a number of seconds between 1 and 604800$"):
        store.open("north", "x", expires_in)
    assert store.active() == []


@pytest.mark.parametrize("expires_in", [1, 1.0, 2.5, MAX_EXPIRES_IN, float(MAX_EXPIRES_IN)])
def test_good_expires_in(store: Incidents, expires_in: float) -> None:
    assert store.open("north", "x", expires_in).expires_at == T0 + expires_in


def test_incident_error_is_a_value_error() -> None:
    assert issubclass(IncidentError, ValueError)


# -- persistence ------------------------------------------------------------------

def test_round_trip(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "incidents.json"
    first = Incidents(clock, path)
    a = first.open("north", "a", 100)
    b = first.open("*", "b", 1000)
    c = first.open("south", "c", 1000)
    first.close(c.id)
    assert Incidents(clock, path).active() == [a, b]
    clock.now += 100
    again = Incidents(clock, path)
    assert again.active() == [b]
    d = again.open("south", "d", 10)
    assert [i["id"] for i in json.loads(path.read_text())["incidents"]] == [b.id, d.id]


def test_file_is_private_and_written_atomically(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "incidents.json"
    store = Incidents(clock, path)
    assert not path.exists()                  # nothing written until something changes
    store.open("north", "a", 100)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    inode = path.stat().st_ino
    store.open("south", "b", 100)
    assert path.stat().st_ino != inode        # replaced, not rewritten in place
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["incidents.json"]   # no temporary files left


def test_failed_write_changes_nothing(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "gone" / "incidents.json"
    store = Incidents(clock, path)
    with pytest.raises(OSError):
        store.open("north", "a", 100)
    assert store.active() == []


def test_missing_file_is_empty(tmp_path: Path, clock: Clock) -> None:
    assert Incidents(clock, tmp_path / "incidents.json").active() == []


def write_file(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "incidents.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def entry(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"id": "inc-00000001", "area": "north", "message": "m",
                               "started_at": T0, "expires_at": T0 + 60}
    return {**base, **changes}


def test_loaded_entries(tmp_path: Path, clock: Clock) -> None:
    path = write_file(tmp_path, {"version": 1, "incidents": [
        entry(), entry(id="inc-00000002", expires_at=T0 - 1), entry(id="inc-00000003", area="*")]})
    assert [i.id for i in Incidents(clock, path).active()] == ["inc-00000001", "inc-00000003"]
    assert Incidents(clock, path).covering(None) == Incident("inc-00000003", "*", "m", T0, T0 + 60)


@pytest.mark.parametrize("data", [
    "", "{", "not json", "\xff", [], {"incidents": []}, {"version": 2, "incidents": []},
    {"version": 1}, {"version": 1, "incidents": {}}, {"version": 1, "incidents": ["x"]},
    {"version": 1, "incidents": [{"id": "inc-1"}]},
    {"version": 1, "incidents": [entry(area="North")]},
    {"version": 1, "incidents": [entry(message="")]},
    {"version": 1, "incidents": [entry(started_at="soon")]},
    {"version": 1, "incidents": [entry(expires_at=True)]},
    {"version": 1, "incidents": [entry(id=5)]},
    '{"version": 1, "incidents": [{"id": "a", "area": "n", "message": "m", '
    '"started_at": 0, "expires_at": Infinity}]}',
])
def test_corrupt_file(tmp_path: Path, clock: Clock, data: object) -> None:
    path = write_file(tmp_path, data)
    with pytest.raises(IncidentError, match=r"^incident file .*incidents\.json is corrupt: ") as info:
        Incidents(clock, path)
    assert "\n" not in str(info.value)


def test_unreadable_file(tmp_path: Path, clock: Clock) -> None:
    with pytest.raises(IncidentError, match="^cannot read incident file "):
        Incidents(clock, tmp_path)
