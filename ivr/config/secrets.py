"""The rules of a PBX's dialplan secret and allowed sources, checked with the config.

The secret travels from the dialplan's [globals] in an HTTP header, so it has
no spaces, commas or quotes; it is long enough (16 characters or more) not to
be guessed at 10 tries a minute; and it is the PBX's own, since ivr knows which
PBX asks by which secret matched.  Sources are addresses or CIDRs.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable

SECRET = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")


def problem(where: str, name: str, secret: str, sources: Iterable[str],
            pbxs: Iterable[Any]) -> str | None:
    """What is wrong with PBX `name`'s dialplan keys (`where`: their config prefix),
    given every PBX (`pbxs`, each with .name and .ami.dialplan_secret); None if nothing."""
    if secret and not SECRET.fullmatch(secret):
        return (f"{where}dialplan_secret: 16 to 256 characters of A-Z a-z 0-9 . _ ~ + / = - "
                f"(got {len(secret)} characters)")
    other = next((p.name for p in pbxs if p.name != name and secret
                  and p.ami.dialplan_secret == secret), None)
    if other is not None:
        return (f"{where}dialplan_secret is pbx {other}'s too: each PBX needs its own "
                "(ivr knows a PBX by its secret)")
    for cidr in sources:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return (f"{where}dialplan_sources: {cidr!r} is not an address or CIDR "
                    "(10.0.0.5, 10.0.0.0/24, ::1)")
    return None
