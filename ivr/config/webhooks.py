"""[webhooks.NAME] tables: where the desk's and the incidents' events go, read and checked.

Each endpoint has a URL (http or https), a secret in the Standard Webhooks form
(`whsec_` and the base64 of 24 to 64 random bytes: the HMAC-SHA256 key) and the
events it wants, from EVENTS.  The secret may come from the environment instead
(IVR_WEBHOOKS_<NAME>_SECRET), so it stays out of the file.  Every mistake is one
ConfigError line that never shows the secret or the URL.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping
from urllib.parse import urlsplit

from ivr.config.values import ConfigError, only, typed

# The events, named <what>.<what happened>.  The desk's are its registry's entries
# (desk/service.py: kind.event; a state change carries the new state, a refused ticket
# the incident that covered it); the incidents' are their opening and closing by a person.
EVENTS = ("ticket.filed", "ticket.refused", "ticket.state", "ticket.note",
          "complaint.filed", "complaint.state", "complaint.note",
          "claim.filed",
          "incident.opened", "incident.closed")
SECRET_PREFIX = "whsec_"
KEY_BYTES = (24, 64)        # the spec's 192 bits at least; 512 at most
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class WebhookConfig:
    """One endpoint: a [webhooks.NAME] table."""

    name: str
    url: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    events: tuple[str, ...] = ()

    @property
    def key(self) -> bytes:
        """The HMAC key: the secret's decoded bytes (checked at load)."""
        return decode_secret(self.secret)


_KEYS = {"url", "secret", "events"}


def parse(data: Any) -> tuple[WebhookConfig, ...]:
    """The [webhooks] table's endpoints, in the file's order."""
    if not isinstance(data, dict):
        raise ConfigError("[webhooks] must be a table of [webhooks.NAME] tables")
    found = []
    for name, raw in data.items():
        if not _NAME.fullmatch(name):
            raise ConfigError(f"webhooks.{name[:40]}: an endpoint's name is a-z, 0-9, '-' or '_', "
                              "starting with a letter, at most 32")
        if not isinstance(raw, dict):
            raise ConfigError(f"webhooks.{name} must be a table")
        only(raw, _KEYS, f"webhooks.{name}.")
        found.append(WebhookConfig(name, **{k: typed(WebhookConfig, k, v, f"webhooks.{name}.")
                                            for k, v in raw.items()}))
    if not found:
        raise ConfigError("[webhooks] lists no endpoint; leave it out to send none")
    return tuple(found)


def env_name(name: str) -> str:
    """IVR_WEBHOOKS_<NAME>_SECRET: the endpoint's secret from the environment."""
    return f"IVR_WEBHOOKS_{name.upper().replace('-', '_')}_SECRET"


def from_env(hooks: tuple[WebhookConfig, ...], env: Mapping[str, str]) -> tuple[WebhookConfig, ...]:
    return tuple(replace(h, secret=env[env_name(h.name)]) if env_name(h.name) in env else h
                 for h in hooks)


def check(hooks: tuple[WebhookConfig, ...]) -> None:
    """Each endpoint whole: its URL, its secret, its events."""
    for h in hooks:
        where = f"webhooks.{h.name}."
        url_problem = _url_problem(h.url)
        if url_problem:
            raise ConfigError(f"{where}url: {url_problem}")
        if not h.secret:
            raise ConfigError(f"{where}secret: missing (whsec_ and base64; or {env_name(h.name)})")
        try:
            decode_secret(h.secret)
        except ValueError as exc:
            raise ConfigError(f"{where}secret: {exc}") from None
        if not h.events:
            raise ConfigError(f"{where}events: list the events to send (known: {', '.join(EVENTS)})")
        for event in h.events:
            if event not in EVENTS:
                raise ConfigError(f"{where}events: unknown event {event[:40]!r} "
                                  f"(known: {', '.join(EVENTS)})")


def _url_problem(url: str) -> str | None:
    if not url:
        return "missing (http:// or https://)"
    try:
        parts = urlsplit(url)
        parts.port     # a port out of range or not a number raises here
    except ValueError:
        return "not a URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "expected an http:// or https:// URL"
    if not parts.hostname:
        return "expected an http:// or https:// URL with a host"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "a URL has no spaces or control characters"
    return None


def decode_secret(secret: str) -> bytes:
    """`whsec_<base64>`'s bytes; ValueError (one line, never the secret) if it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"expected {SECRET_PREFIX} and base64 (the Standard Webhooks form)")
    text = secret[len(SECRET_PREFIX):]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"what follows {SECRET_PREFIX} is not base64") from None
    least, most = KEY_BYTES
    if not least <= len(key) <= most:
        raise ValueError(f"expected {least} to {most} bytes after {SECRET_PREFIX} "
                         f"(the spec's 192 to 512 bits), got {len(key)}")
    return key
