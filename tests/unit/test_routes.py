"""Entry and escalation decisions: pure functions over the directory and incidents."""

from __future__ import annotations

from urllib.parse import parse_qs

from ivr.routing import policy
from ivr.routing.directory import Directory, Subscriber
from ivr.routing.incidents import Incident, Incidents

NOW = 1_795_530_000.0
DIRECTORY = Directory([Subscriber("79101", "100101", "north"), Subscriber("79401", "100401", "south")])


def prompt(incident: Incident) -> str:
    return f"incident-{incident.id}"


def incidents(*areas: str) -> Incidents:
    store = Incidents(lambda: NOW)
    for area in areas:
        store.open(area, f"Trouble in {area}.", 600)
    return store


def test_known_number_goes_to_first_line_identified() -> None:
    route = policy.entry("79101", "", False, DIRECTORY, incidents(), prompt)
    assert route == policy.Route("first-line", "100101", "north")
    assert parse_qs(route.as_query()) == {"route": ["first-line"], "account": ["100101"], "area": ["north"]}
    assert route.label == "first-line"


def test_unknown_number_is_asked_once_for_an_account() -> None:
    asked = policy.entry("5550", "", False, DIRECTORY, incidents(), prompt)
    assert asked.ask_account and asked.route == "first-line" and asked.label == "ask-account"
    typed = policy.entry("5550", "100401", True, DIRECTORY, incidents(), prompt)
    assert (typed.account, typed.area, typed.ask_account) == ("100401", "south", False)
    wrong = policy.entry("5550", "999999", True, DIRECTORY, incidents(), prompt)
    assert (wrong.account, wrong.ask_account) == ("", False)       # goes on unidentified
    nothing = policy.entry("5550", "", True, DIRECTORY, incidents(), prompt)
    assert nothing == policy.Route("first-line") and nothing.label == "first-line"  # no third


def test_incident_in_the_callers_area_is_announced() -> None:
    store = incidents("north")
    (north,) = store.active()
    route = policy.entry("79101", "", False, DIRECTORY, store, prompt)
    assert route.announce == f"incident-{north.id}" and route.incident == north.id
    assert route.label == "incident"
    assert policy.entry("79401", "", False, DIRECTORY, store, prompt).announce == ""


def test_an_all_areas_incident_reaches_unidentified_callers_too() -> None:
    route = policy.entry("5550", "", False, DIRECTORY, incidents("*"), prompt)
    assert route.announce.startswith("incident-") and route.ask_account


def test_escalation_refused_only_while_an_incident_covers_the_caller() -> None:
    store = incidents("south")
    assert policy.escalation("north", store, prompt) == policy.Route("engineers")
    refused = policy.escalation("south", store, prompt)
    assert refused.route == "refused" and refused.label == "refused" and refused.announce
    assert policy.escalation(None, store, prompt).route == "engineers"   # unknown area: only "*" covers
