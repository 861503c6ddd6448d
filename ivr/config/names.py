"""What one site calls ivr's queues and numbers ([routing] in the config).

ivr's dialplan knows four queues by their part in the call (first-line, common,
engineers, supervisors) and four numbers (the hotline, the operators' escalation,
supervisor and read-back transfers).  A FreePBX numbers its queues (600, 601...)
and has its own extension plan, so both are named in the config; `ivr kit`
writes them into the dialplan's [globals] and extension lines.
"""

from __future__ import annotations

import re
from typing import Mapping

from ivr.config.values import ConfigError

# The queues by their part: the [ivr-queues] extension of each, and its config key.
ROLES = {"first-line": "first_line", "common": "common", "engineers": "engineers",
         "supervisors": "supervisors"}
NUMBERS = ("hotline", "escalation", "supervisor", "readback")

# A queue name as app_queue, AMI and a dialplan variable all carry it unquoted.
_QUEUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# An extension a phone can dial.
_NUMBER = re.compile(r"[0-9]{2,20}")


def check(values: Mapping[str, str]) -> None:
    """The [routing] names and numbers, or a ConfigError naming the key."""
    queues = [values[key] for key in ROLES.values()]
    for key in ROLES.values():
        name = values[key]
        if not _QUEUE.fullmatch(name):
            raise ConfigError(f"routing.{key}: a queue name is letters, digits, '_', '.' or "
                              f"'-', at most 64, got {name!r}")
        if name.lower() == "general":
            raise ConfigError(f"routing.{key}: a queue cannot be named general "
                              "(queues.conf keeps [general] for its settings)")
        if queues.count(name) > 1:
            raise ConfigError(f"routing.{key}: {name!r} plays two parts; give each its own queue")
    numbers = [values[key] for key in NUMBERS]
    for key in NUMBERS:
        number = values[key]
        if not _NUMBER.fullmatch(number):
            raise ConfigError(f"routing.{key}: an extension of 2 to 20 digits, got {number!r}")
        if numbers.count(number) > 1:
            raise ConfigError(f"routing.{key}: {number} is given twice; each number is its own")
