"""The session filter: what it asks of Asterisk, and that replays through it lose nothing."""

from __future__ import annotations

import pytest

from ivr.ami import events, server_filter as sf
from ivr.ami.codec import Codec, Message
from ivr.calls.facts import Fact
from ivr.calls.tracker import Tracker
from tests.replay import FIXTURES


@pytest.mark.parametrize("version, kind", [
    ("22.5.2", sf.ADVANCED), ("22.0.0-rc1", sf.ADVANCED), ("23.1.0", sf.ADVANCED),
    ("21.5.0", sf.ADVANCED), ("21.4.3", sf.REGEX), ("20.10.0", sf.ADVANCED),
    ("20.9.3", sf.REGEX), ("certified-20.7-cert5", sf.REGEX), ("certified-22.8-cert1", sf.ADVANCED),
    ("18.25.0", sf.ADVANCED), ("18.24.3", sf.REGEX), ("13.38.3", sf.REGEX),
    ("GIT-master-4b1a2c3", sf.ADVANCED), ("", sf.REGEX), ("SVN-branch-1.8", sf.REGEX),
])
def test_the_dialect_follows_the_release_that_brought_advanced_filters(version: str,
                                                                        kind: str) -> None:
    assert sf.dialect(version) == kind


def test_advanced_rules_name_every_followed_event_and_the_watched_variables() -> None:
    rules = sf.rules(sf.ADVANCED)
    named = {r.criteria for r in rules}
    for name in (*events.followed_events(), "FullyBooted"):
        if name != "VarSet":
            assert f"action(include),name({name})" in named
    [varset] = [r for r in rules if r.criteria and "name(VarSet)" in r.criteria]
    assert varset.fields() == {"Operation": "Add", "Filter": "^_*(IVR_ACCOUNT|IVR_AREA|IVR_MOVE|IVR_PROBE|QUEUESTATUS|QUEUE_PRIO)$",
                               "MatchCriteria": "action(include),name(VarSet),header(Variable),method(regex)"}


def test_regex_rules_are_posix_and_end_the_event_name() -> None:
    import re
    whole, varset = (r.filter for r in sf.rules(sf.REGEX))
    # Python's re reads [[:space:]] differently; check the words, then a POSIX-ish reading.
    as_python = whole.replace("[[:space:]]", r"\s")
    assert re.search(as_python, "Event: Hangup\r\nPrivilege: call,all\r\n")
    assert re.search(as_python, "Event: HangupRequest\r\n")
    assert not re.search(as_python, "Event: HangupHandlerRun\r\n")
    assert not re.search(as_python, "Event: Newexten\r\n")
    as_python = varset.replace("[[:space:]]", r"\s")
    assert re.search(as_python, "Event: VarSet\r\nChannel: x\r\nVariable: __IVR_AREA\r\nValue: n\r\n", re.S)
    assert not re.search(as_python, "Event: VarSet\r\nVariable: BRIDGEPEER\r\n", re.S)
    assert all(r.criteria is None for r in sf.rules(sf.REGEX))


def test_the_eventfilter_lines_shipped_for_manager_conf_are_the_advanced_rules() -> None:
    from ivr.kit import shipped
    lines = [line.strip() for line in shipped.read("asterisk/manager_ivr.conf").splitlines()
             if line.startswith("eventfilter")]
    assert lines == sf.eventfilter_lines()


def _facts(data: bytes, through_filter: bool) -> list[Fact]:
    codec, tracker = Codec(), Tracker()
    facts: list[Fact] = []
    codec.receive_data(data)
    codec.receive_data(b"")
    while (item := codec.next_event()) is not None:
        if not isinstance(item, Message) or item.event is None:
            continue
        if through_filter and not sf.passes(item):
            continue
        if item.action_id:
            continue      # snapshot list replies: not events
        event = events.parse(item, now=0.0)
        if event is not None:
            facts += tracker.handle(event)
    return facts


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.ami")))
def test_a_lab_capture_through_the_filter_gives_the_same_facts(name: str) -> None:
    data = (FIXTURES / f"{name}.ami").read_bytes()
    unfiltered = _facts(data, through_filter=False)
    assert unfiltered, f"{name}: no facts at all"
    assert _facts(data, through_filter=True) == unfiltered


def test_the_filter_drops_the_noise() -> None:
    codec = Codec()
    codec.receive_data((FIXTURES / "answered.ami").read_bytes())
    kept = dropped = 0
    while (item := codec.next_event()) is not None:
        if isinstance(item, Message) and item.event is not None and not item.action_id:
            kept, dropped = (kept + 1, dropped) if sf.passes(item) else (kept, dropped + 1)
    assert dropped > kept > 0
