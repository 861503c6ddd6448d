"""The session filter ivr asks Asterisk for at login: only what ivr uses is sent.

Asterisk sends every event of every channel (Newexten, VarSet of every
variable, DeviceStateChange, ...) and ivr would drop most of them undecoded
(events.wanted).  Filtered in Asterisk, they are never serialised nor
queued in its manager queue, the delay that events under load showed.

What ivr follows is declared once, in events.py; this module says it to
Asterisk in either of its two dialects:

- advanced filters (`MatchCriteria: name(...),header(...),method(...)`),
  by event name, hashed in Asterisk: 18.25, 20.10, 21.5, 22.0 and later;
- regex filters over the whole event (Asterisk 10 on), elsewhere.

Filters only ever include: with include filters only, Asterisk drops
everything else first.  They apply to events, never to the responses and
list replies of ivr's own actions.  The Filter action needs the `system`
write permission; without it ivr relies on `eventfilter` lines of the AMI
user (ivr/kit/files/asterisk/manager_ivr.conf), written from the same lists.
`passes()` is the advanced filter's verdict in Python, for replays that show
no fact ivr needs is filtered away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ivr.ami import events
from ivr.ami.codec import Message

# Every event parse() follows, but VarSet, which is only wanted for some variables;
# and FullyBooted, which the client waits for before the snapshot.
FOLLOWED: tuple[str, ...] = (*(n for n in events.followed_events() if n != "VarSet"),
                             "FullyBooted")
VARIABLES: tuple[str, ...] = tuple(sorted(events.WATCHED_VARIABLES))
# Inherited variables are named with their underscores (Set(__IVR_AREA=...)).
VARIABLE_PATTERN = f"^_*({'|'.join(VARIABLES)})$"
_VARIABLE = re.compile(VARIABLE_PATTERN)

ADVANCED, REGEX = "advanced", "regex"
# The first release of each branch with advanced filters (asterisk/asterisk#874).
_ADVANCED_SINCE = {18: 25, 20: 10, 21: 5}
_VERSION = re.compile(r"(\d+)\.(\d+)")


@dataclass(frozen=True)
class Rule:
    """One Filter action: MatchCriteria (None for a regex filter) and Filter."""

    criteria: str | None
    filter: str

    def fields(self) -> dict[str, str]:
        found = {"Operation": "Add", "Filter": self.filter}
        if self.criteria is not None:
            found["MatchCriteria"] = self.criteria
        return found


def dialect(asterisk_version: str) -> str:
    """ADVANCED where this Asterisk has advanced filters, else REGEX (CoreSettings'
    AsteriskVersion: "22.5.2", "certified-20.7-cert5", "GIT-master-..." )."""
    found = _VERSION.search(asterisk_version)
    if found is None:
        return ADVANCED if "master" in asterisk_version.lower() else REGEX
    major, minor = int(found[1]), int(found[2])
    if major >= 22:
        return ADVANCED
    since = _ADVANCED_SINCE.get(major)
    return ADVANCED if since is not None and minor >= since else REGEX


def rules(kind: str) -> list[Rule]:
    if kind == ADVANCED:
        return [Rule(f"action(include),name({name})", "") for name in FOLLOWED] + [
            Rule("action(include),name(VarSet),header(Variable),method(regex)", VARIABLE_PATTERN)]
    # POSIX extended regexes over the whole event text: [[:space:]] ends the name
    # (Hangup, not HangupRequest), as "\r" would not in POSIX.
    return [Rule(None, f"Event: ({'|'.join(FOLLOWED)})[[:space:]]"),
            Rule(None, f"Event: VarSet[[:space:]].*Variable: _*({'|'.join(VARIABLES)})[[:space:]]")]


def eventfilter_lines() -> list[str]:
    """The manager.conf equivalent of rules(ADVANCED), for an AMI user without `system`."""
    return [f"eventfilter({r.criteria}) = {r.filter}".rstrip() for r in rules(ADVANCED)]


def passes(msg: Message) -> bool:
    """Whether Asterisk sends `msg` to a session with rules(ADVANCED) installed."""
    name = msg.event
    if name is None or msg.action_id:       # responses and list replies: never filtered
        return True
    if name == "VarSet":
        return _VARIABLE.match(msg.get("Variable") or "") is not None
    return name in FOLLOWED
