"""[callback]: a caller waiting in common presses 1 and is called back, keeping their place.

    [callback]
    dial = "PJSIP/{number}@provider-trunk"   # how the PBX dials a customer; empty: off
    queues = ["common"]         # where the periodic announcement offers it (default: common)
    retry_seconds = 60          # after a busy, unanswered or failed dial
    attempts = 3                # dials per request, then `failed`
    ring_seconds = 30           # the customer's phone rings this long per dial
    block = ["112", "8800*"]    # numbers never called back; a trailing * is a prefix

The template is checked here, once: exactly one `{number}` and no other brace, so a
customer's number is the only thing ever put into a dial string (and it is digits:
ivr/callbacks/model.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from ivr.config.values import ConfigError, only, typed

NUMBER = "{number}"
_BLOCK = re.compile(r"\+?[0-9]{1,20}\*?")


@dataclass(frozen=True)
class CallbackConfig:
    dial: str = ""                      # a dial string template with {number}; empty: no callbacks
    queues: tuple[str, ...] = ()        # empty: routing.common
    retry_seconds: float = 60.0
    attempts: int = 3
    ring_seconds: int = 30              # how long the customer's phone rings per dial
    block: tuple[str, ...] = ()         # numbers, or prefixes ending in *

    @property
    def enabled(self) -> bool:
        return bool(self.dial)

    def dial_string(self, number: str) -> str:
        return self.dial.replace(NUMBER, number)

    def blocked(self, number: str) -> bool:
        return any(number.startswith(b[:-1]) if b.endswith("*") else number == b
                   for b in self.block)


def parse(data: Any, common: str) -> CallbackConfig:
    """The [callback] table; `common` is the queue it is offered in by default."""
    if not isinstance(data, dict):
        raise ConfigError("[callback] must be a table")
    only(data, set(CallbackConfig.__dataclass_fields__), "callback.")
    cfg = CallbackConfig(**{k: typed(CallbackConfig, k, v, "callback.") for k, v in data.items()})
    check_dial(cfg.dial)
    for entry in cfg.block:
        if not _BLOCK.fullmatch(entry):
            raise ConfigError(f"callback.block: {entry[:40]!r} is not a number (digits, maybe a "
                              "leading + and a trailing * for a prefix)")
    if not cfg.queues:
        cfg = replace(cfg, queues=(common,))
    return cfg


def check_dial(dial: str) -> None:
    if not dial:
        return
    if dial.count(NUMBER) != 1 or dial.replace(NUMBER, "").count("{") or "}" in dial.replace(NUMBER, ""):
        raise ConfigError("callback.dial: the template needs {number} exactly once and no other "
                          f"braces, as in PJSIP/{NUMBER}@provider-trunk; got {dial[:60]!r}")
    if any(c in dial for c in "\r\n,&|;") or any(ord(c) < 32 for c in dial):
        raise ConfigError("callback.dial: one dial string (no ',', '&', '|', ';' or control "
                          f"characters), as in PJSIP/{NUMBER}@provider-trunk; got {dial[:60]!r}")
