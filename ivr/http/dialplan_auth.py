"""Only the PBX may ask /dialplan/v1: its secret, and where given, its addresses.

Each PBX's dialplan sends its own secret (`dialplan_secret` of its [pbx.NAME]
table or of [ami]; IVR_DIALPLAN_SECRET in the dialplan's [globals]) in the
header X-Ivr-Secret, a header rather than a parameter so that it stays out of
URLs and the logs that keep them.  The secret that matches names the PBX: a
`pbx=` naming another is refused, so one PBX cannot speak for another.  Every
PBX's secret is compared, in constant time, whatever matched.

- no secret, or a wrong one: 401, counted and throttled per source like a
  wrong API token (throttle.py, kind dialplan_secret);
- the right secret from outside the PBX's `dialplan_sources`: 403;
- a `pbx=` that is not the secret's PBX: 403.

Every refusal has an empty body: the dialplan then takes its default route
(first-line), as when ivr is down, and tells nobody anything about the caller.
A PBX with no dialplan_secret configured cannot be asked for at all.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from dataclasses import dataclass

from aiohttp import web

from ivr.calls import access as calls_access
from ivr.config import tokens as roles
from ivr.http import throttle
from ivr.config import PbxConfig

log = logging.getLogger(__name__)
HEADER = "X-Ivr-Secret"
KIND = "dialplan_secret"


@dataclass(frozen=True)
class _Known:
    name: str
    secret: bytes
    sources: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


class DialplanAuth:
    def __init__(self, pbxs: tuple[PbxConfig, ...], guard: throttle.Guard) -> None:
        self.guard = guard
        self._known = _known(pbxs)

    def replace_with(self, pbxs: tuple[PbxConfig, ...]) -> str:
        """The PBXs' secrets and sources as the config now gives them (SIGHUP); which
        PBXs' changed (never a secret)."""
        old = {k.name: k for k in self._known}
        self._known = _known(pbxs)
        changed = [k.name for k in self._known if old.get(k.name) != k]
        changed += [name for name in old if name not in {k.name for k in self._known}]
        return f"secrets or sources changed for {', '.join(sorted(changed)) or 'no PBX'}"

    def pbx_of(self, request: web.Request) -> str | web.Response:
        """The name of the PBX asking, or the refusal to answer with."""
        source = throttle.source_of(request.remote)
        if wait := self.guard.retry_after(source):
            self.guard.refused(source, KIND)
            return web.Response(status=429, headers={"Retry-After": str(wait)})
        given = request.headers.get(HEADER, "").encode("utf-8", "replace")
        known = None
        for k in self._known:                   # every one compared: no timing tells which
            if hmac.compare_digest(given, k.secret):
                known = k
        if known is None:
            self.guard.failed(source, KIND, f"{'wrong' if given else 'no'} secret for "
                                            f"{request.path[:60]}")
            return web.Response(status=401)
        if known.sources and not _within(source, known.sources):
            log.warning("dialplan of pbx %s asked from %s, outside its dialplan_sources: refused",
                        known.name, source)
            return web.Response(status=403)
        # The calls it asks about are of the PBX it names: the call-action decision's.
        named = request.query.get("pbx") or known.name
        refusal = calls_access.decide(roles.Actor(calls_access.PBX, known.name),
                                      calls_access.Call(named, ""))
        if refusal is not None:
            log.warning("dialplan from %s: %s: refused", source, refusal.message[:120])
            return web.Response(status=403)
        return known.name


def _within(source: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(source)
    except ValueError:          # no peer address (a Unix socket): not from a listed one
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped       # a dual-stack socket's view of an IPv4 peer
    return any(address in n for n in networks)


def _known(pbxs: tuple[PbxConfig, ...]) -> list[_Known]:
    for p in pbxs:
        if not p.ami.dialplan_secret:
            log.warning("pbx %s has no dialplan_secret: ivr refuses its dialplan's questions "
                        "(401) and its callers take the default route", p.name)
    return [_Known(p.name, p.ami.dialplan_secret.encode(),
                   tuple(ipaddress.ip_network(c, strict=False) for c in p.ami.dialplan_sources))
            for p in pbxs if p.ami.dialplan_secret]
