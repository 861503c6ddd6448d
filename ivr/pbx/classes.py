"""What ivr's AMI user may read, found out after each login.

Asterisk sends an event only to the users whose `read` classes hold the
event's class, and no action tells a user its own classes.  ivr needs three:

    call      Hangup, HangupRequest, SoftHangupRequest: how calls end
    agent     QueueCallerJoin/Leave/Abandon, AgentConnect, QueueMember*: the queues
    dialplan  VarSet: QUEUESTATUS, IVR_MOVE, the caller's account and area

A read-only monitoring user often lacks `dialplan`; then ivr tells a timeout
from an abandon by the caller's channel alone (calls/judge.silent_exit), and
where nothing tells it says unknown_exit.  So ivr finds out:

- every event names its class (`Privilege: agent,all`): a class is `yes`
  once an event of it came on this connection;
- after each login ivr sets a global variable (AMI Setvar without a Channel,
  PROBE); Asterisk's VarSet of it is of class dialplan, so if it has not come
  back within PROBE_WAIT_S, `dialplan` is `no`, and ivr says so once in the
  log with the line for manager.conf;
- any other class is `unknown` until an event of it comes.

/readyz shows the states as `ami_classes`.  The module decides; the Pbx
(pbx/session.py) sends the probe and feeds it the messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.ami.codec import Message
from ivr.ami.events import IVR_PROBE

NEEDED = ("call", "agent", "dialplan")
PROBE = IVR_PROBE          # a global ivr sets after each login; its VarSet is dialplan's
PROBE_WAIT_S = 3.0
YES, NO, UNKNOWN = "yes", "no", "unknown"


@dataclass
class Classes:
    """The read classes of one AMI connection, as far as ivr can tell."""

    seen: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    probe: str | None = None       # the value of the probe on its way, if any

    def start(self, token: str) -> None:
        """A new connection, and its probe about to be sent with value `token`."""
        self.seen.clear()
        self.missing.clear()
        self.probe = token

    def saw(self, msg: Message) -> bool:
        """Note the class `msg` came by; True when it is the probe's echo (ivr's own
        variable, for nobody else to read)."""
        # Every AMI event passes here: once each needed class was seen, nothing to parse.
        if len(self.seen) < len(NEEDED) and (privilege := msg.get("Privilege")):
            self.seen.update(c.strip() for c in privilege.split(",")[:8] if c.strip() in NEEDED)
        if msg.event != "VarSet" or (msg.get("Variable") or "") != PROBE:
            return False
        if self.probe is not None and msg.get("Value") == self.probe:
            self.seen.add("dialplan")
            self.probe = None
        return True

    def expire(self, token: str) -> bool:
        """PROBE_WAIT_S after the probe with `token` was sent: True when this finds
        `dialplan` missing (its echo never came), for the caller to say once."""
        if self.probe != token:
            return False           # answered, or a newer connection's probe is on its way
        self.probe = None
        if "dialplan" in self.seen:
            return False
        self.missing.add("dialplan")
        return True

    def state(self) -> dict[str, str]:
        return {c: YES if c in self.seen else NO if c in self.missing else UNKNOWN
                for c in NEEDED}


def merged(states: list[dict[str, str]]) -> dict[str, str]:
    """Several PBXs' states as one: `no` if any says no, `yes` if all say yes."""
    out: dict[str, str] = {}
    for c in NEEDED:
        said = {s.get(c, UNKNOWN) for s in states}
        out[c] = NO if NO in said else YES if said == {YES} else UNKNOWN
    return out


def advice(username: str) -> str:
    """The manager.conf line that gives ivr's user what it needs to read."""
    return f"[{username}] read = system,{','.join(NEEDED)}"
