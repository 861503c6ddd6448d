"""How one config value is read: its type, its range, and never a secret's value
in an error.  ivr/config/ builds the typed model from these."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping


class ConfigError(Exception):
    """Bad configuration; the message is one line a person can act on."""


def section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{key}] must be a table")
    return value


def only(data: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(f"unknown config key {prefix}{key} (known: {', '.join(sorted(allowed))})")


# Every number a config can give, by key: (least, most, unit).  A ping every
# microsecond or a deadline in 1e300 days is a typo that hurts at run time (45,927
# Pings in 9 s; every complaint failing), so it is refused at start instead.
BOUNDS: dict[str, tuple[float, float, str]] = {
    "port": (1, 65535, ""),
    "ping_interval": (0.5, 3600, "seconds"),
    "ping_timeout": (0.5, 600, "seconds"),
    "sla_seconds": (1, 3600, "seconds"),
    "overflow_after_seconds": (1, 3600, "seconds"),
    "ticket_due_hours": (0.1, 87_600, "hours"),           # ten years
    "complaint_deadline_days": (0.1, 3650, "days"),       # ten years
    "repeat_window_seconds": (1, 30 * 86_400, "seconds"),
    "spool_max_records": (1, 100_000_000, "records"),
    "short_abandon_seconds": (0.1, 600, "seconds"),
    "max_days": (1, 3660, "days"),
    "deadline_seconds": (1, 3600, "seconds"),
    "service_level_target": (0.01, 1, ""),         # a share: 0.8 is 80 %
    "retention_days": (30, 36_500, "days"),               # a hundred years; 0: keep forever
    "retry_seconds": (1, 86_400, "seconds"),
    "attempts": (1, 10, "attempts"),
    "ring_seconds": (5, 300, "seconds"),
}
# Keys whose 0 means "off" and is allowed below the least bound.
OFF_AT_ZERO = ("retention_days",)
# Keys whose value is never shown in an error, only its type.
SECRET_KEYS = ("secret", "token", "password", "url")


def typed(cls: Any, key: str, value: Any, where: str) -> Any:
    """Coerce `value` to the type of dataclass field `key`, or say why not."""
    kind = str(next(f.type for f in fields(cls) if f.name == key)).split(" ")[0]
    label = where + key if where.endswith(".") else where
    shown = type(value).__name__ if any(s in key for s in SECRET_KEYS) else repr(value)
    try:
        if kind.startswith("int"):
            return _bounded(key, _int(value), label, kind)
        if kind.startswith("float"):
            return _bounded(key, _finite(_number(value)), label, kind)
        if kind.startswith("bool"):
            return _bool(value)
        if kind.startswith("tuple"):
            return _texts(value)
        return _text(value, required=key == "host")
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{label}: expected {kind}, got {shown}") from None


def _bounded(key: str, value: Any, label: str, kind: str) -> Any:
    """`value` if within BOUNDS[key], else a ConfigError naming the range."""
    least, most, unit = BOUNDS.get(key, (float("-inf"), float("inf"), ""))
    off = key in OFF_AT_ZERO
    if not least <= value <= most and not (off and value == 0):
        raise ConfigError(f"{label}: expected {kind} {'0 (off) or ' if off else ''}from "
                          f"{least:g} to {most:g}{' ' + unit if unit else ''}, got {value!r}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


def _finite(value: float) -> float:
    if value != value or value in (float("inf"), float("-inf")):   # NaN, or no bound at all
        raise ValueError(value)
    return value


def _text(value: Any, required: bool) -> str:
    if not isinstance(value, str) or (required and not value):
        raise ValueError(value)
    return value


def _texts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(value)
    return tuple(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)
