"""The shipped files filled in for one site, by targeted substitutions.

Every substitution names the lines it changes and must find each exactly once, so a
shipped file edited out of the shape the kit knows fails the kit's tests, not a PBX.
What is not named stays as shipped: rendered with the defaults, the dialplan is the
shipped file byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ivr.config import RoutingConfig, names


class KitError(Exception):
    """What stops `ivr kit`: one line for the person running it."""


# The numbers and queue names the shipped files carry (RoutingConfig's defaults).
_DEFAULTS = RoutingConfig()
SHIPPED_NUMBERS = {key: getattr(_DEFAULTS, key) for key in names.NUMBERS}
LOOPBACK_PERMIT = "127.0.0.1/255.255.255.255"
SHIPPED_TARGET = "127.0.0.1:9105"          # where the shipped Prometheus files find ivr
# Where the shipped alerts' runbook_url point (docs/runbook.md, published by the site:
# `ivr kit --runbook-url`); .invalid, a name that never resolves, until then.
SHIPPED_RUNBOOK = "https://ivr.invalid/runbook.md"


@dataclass(frozen=True)
class Site:
    """What the kit writes for one PBX, taken from ivr's config (build.py)."""

    pbx: str                     # IVR_PBX: its [pbx.NAME] table, or "default"
    url: str                     # IVR_URL: where the PBX reaches ivr
    queues: Mapping[str, str]    # the queue playing each part: {"first-line": "600", ...}
    numbers: Mapping[str, str]   # {"hotline": "7000", ...}
    ami_user: str
    permit: str                  # manager.conf permit= for ivr's AMI logins
    env_prefix: str              # IVR_AMI_, or IVR_PBX_<NAME>_ for a [pbx.NAME] table
    env_username: bool           # the config names no AMI user: ivr.env gives the kit's
    dialplan_secret: str = field(repr=False)
    ami_secret: str = field(repr=False)
    runbook: str = SHIPPED_RUNBOOK   # where the alerts' runbook_url point: runbook.md published
    scrape: str = ""                 # http.metrics_listen's HOST:PORT; none: IVR_URL's

    @property
    def target(self) -> str:
        """ivr's HOST:PORT, as Prometheus scrapes it."""
        return self.scrape or self.url.split("://", 1)[1]


def _each_once(text: str, pattern: str, new: Callable[[re.Match[str]], str],
               expected: list[str], where: str) -> str:
    """Substitute every match of pattern (its first group that matched names it); each
    expected name exactly once."""
    seen: list[str] = []

    def one(match: re.Match[str]) -> str:
        seen.append(next(g for g in match.groups() if g is not None))
        return new(match)

    out = re.sub(pattern, one, text, flags=re.M)
    if sorted(seen) != sorted(expected):
        missing = sorted(set(expected) - set(seen)) or sorted(n for n in seen if seen.count(n) > 1)
        raise KitError(f"the shipped {where} is not in the shape the kit knows "
                       f"(lines for {', '.join(missing)}): reinstall ivr")
    return out


def globals_values(site: Site) -> dict[str, str]:
    """The dialplan's [globals] that the kit fills in, by variable."""
    values = {"IVR_URL": site.url, "IVR_PBX": site.pbx, "IVR_DIALPLAN_SECRET": site.dialplan_secret}
    for part in names.ROLES:
        values["IVR_QUEUE_" + part.upper().replace("-", "_")] = site.queues[part]
    return values


def extensions(text: str, site: Site) -> str:
    """extensions_ivr.conf: its [globals] values and the four numbers' exten lines."""
    values = globals_values(site)
    text = _each_once(text, rf"^({'|'.join(values)})=.*$",
                      lambda m: f"{m.group(1)}={values[m.group(1)]}", list(values),
                      "extensions_ivr.conf [globals]")
    number = {SHIPPED_NUMBERS[key]: site.numbers[key] for key in names.NUMBERS}
    # One pass over all four: a site may swap two of the shipped numbers.
    return _each_once(text, rf"^exten => ({'|'.join(number)}),1,",
                      lambda m: f"exten => {number[m.group(1)]},1,", list(number),
                      "extensions_ivr.conf exten lines")


def queues(text: str, site: Site) -> str:
    """queues_ivr.conf: each part's section header, and the members example."""
    parts = list(names.ROLES)
    for part, name in site.queues.items():
        if name == "ivr-queue":
            raise KitError(f"routing.{names.ROLES[part]}: ivr-queue is the name of the queues' "
                           "template in queues_ivr.conf; give the queue another name")
    text = _each_once(text, rf"^\[({'|'.join(parts)})\]\(ivr-queue\)$",
                      lambda m: f"[{site.queues[m.group(1)]}](ivr-queue)", parts,
                      "queues_ivr.conf queue sections")
    return _each_once(text, r"^;   \[(first-line)\]\(\+\)$",
                      lambda m: f";   [{site.queues['first-line']}](+)", ["first-line"],
                      "queues_ivr.conf members example")


_AMI_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def manager(text: str, site: Site) -> str:
    """manager_ivr.conf: the user's section, secret and permit."""
    if not _AMI_USER.fullmatch(site.ami_user) or site.ami_user.lower() == "general":
        raise KitError(f"AMI username {site.ami_user[:64]!r}: manager.conf takes letters, digits, "
                       "'.', '_', '@' or '-' (at most 64), and not general")
    if re.search(r"[;\s\\]", site.ami_secret) or not site.ami_secret.isprintable():
        # Said without the secret: ';' starts a comment in Asterisk's files.
        raise KitError(f"the AMI secret of PBX {site.pbx} has a blank, ';' or '\\', which "
                       "manager.conf cannot hold as given: choose another")
    lines = {"ivr": f"[{site.ami_user}]", "secret": f"secret = {site.ami_secret}",
             "permit": f"permit = {site.permit}"}
    return _each_once(text, r"^(?:\[(ivr)\]|(secret|permit) = .*)$",
                      lambda m: lines[m.group(1) or m.group(2)], list(lines), "manager_ivr.conf")


def env(text: str, site: Site) -> str:
    """ivr.env from ivr.env.example: this PBX's secrets (and user, when the config has
    none) under the names ivr reads, in place of the example's lines or after them."""
    wanted = {"SECRET": site.ami_secret, "DIALPLAN_SECRET": site.dialplan_secret}
    if site.env_username:
        wanted["USERNAME"] = site.ami_user
    for key, value in wanted.items():
        line = f"{site.env_prefix}{key}={value}"
        text, found = re.subn(rf"^#?IVR_AMI_{key}=.*$", lambda _: line, text, flags=re.M)
        if found > 1:
            raise KitError(f"the shipped ivr.env.example sets IVR_AMI_{key} {found} times: reinstall ivr")
        if not found:
            text = text.rstrip("\n") + f"\n{line}\n"
    return text


_FIRST_LINE = re.compile(r"(?<![A-Za-z0-9_-])first-line(?![A-Za-z0-9_-])")


def prometheus(text: str, site: Site) -> str:
    """A Prometheus file (config, rules or their tests): the paid queue by its name, ivr's
    address and where the runbook is.  Rules and tests change alike, so the tests still hold."""
    text = _FIRST_LINE.sub(lambda _: site.queues["first-line"], text)
    text = text.replace(f"{SHIPPED_RUNBOOK}#", f"{site.runbook}#")
    return text.replace(f"http://{SHIPPED_TARGET}", site.url).replace(SHIPPED_TARGET, site.target)
