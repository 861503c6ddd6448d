"""A report's period: [from, to) in a time zone, cut into its local days, and the
instants people type (ISO 8601 dates or datetimes).  Bounded before the days are
listed: ten thousand years of days is what once froze ivr."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)
# A period is cut into its local days on the caller's event loop: a century is 0.1 s of
# that, the year 1 to 9999 was 5 s of a stalled ivr (found by the API's fuzzing).  A
# century still holds every export anybody asks for (2000 to 2100).
MAX_PERIOD_DAYS = 36600


class ReportError(ValueError):
    """A statement cannot be made: the message is one line for the operator."""


# -- the period ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Period:
    """[from_us, to_us) in `tz`; day i is [boundaries[i], boundaries[i + 1])."""

    from_us: int
    to_us: int
    tz: str
    boundaries: tuple[int, ...]    # from_us, each local midnight inside, to_us
    dates: tuple[str, ...]         # the local ISO date of each day

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


def period(from_date: str, to_date: str, tz: str, max_days: int | None = None) -> Period:
    """The statement period [from_date, to_date) in the zone `tz`, at most `max_days` long."""
    zone = _zone(tz)
    from_us = _parse_instant(from_date, zone, "--from")
    to_us = _parse_instant(to_date, zone, "--to")
    if from_us >= to_us:
        raise ReportError(f"--from {from_date} is not before --to {to_date}")
    # Checked before the days are listed: ten thousand years of days is what froze ivr.
    if max_days is not None and to_us - from_us > max_days * _DAY // _US:
        raise ReportError(f"the period {from_date} .. {to_date} is longer than {max_days} days "
                          "(report.max_days): ask for shorter periods")
    # Whatever the caller's bound (registry export has none), a day list has an end.
    if to_us - from_us > MAX_PERIOD_DAYS * 86_400_000_000:
        raise ReportError(f"--from {from_date} --to {to_date}: a period is at most "
                          f"{MAX_PERIOD_DAYS} days")
    try:
        boundaries, dates = _days(from_us, to_us, zone)
    except OverflowError:
        raise ReportError(f"--from {from_date} --to {to_date} reaches outside the years 1 to 9999") from None
    return Period(from_us, to_us, zone.key, boundaries, dates)


def instant(text: str, tz: str, label: str) -> int:
    """An ISO 8601 date or datetime in µs since the epoch; without an offset, in zone `tz`."""
    return _parse_instant(text, _zone(tz), label)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ReportError(f"unknown time zone {tz!r}") from None


def _parse_instant(text: str, zone: ZoneInfo, flag: str) -> int:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(f"{flag} {text!r} is not a date (YYYY-MM-DD)"
                          " or an ISO 8601 datetime") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        return _to_us(moment)
    except OverflowError:   # year 1 east of UTC: before the first instant datetime has
        raise ReportError(f"{flag} {text!r} is out of range") from None


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


def _local(us: int, zone: ZoneInfo) -> datetime:
    return (_EPOCH + timedelta(microseconds=us)).astimezone(zone)


def _midnight_us(day: date, zone: ZoneInfo) -> int:
    """The first instant of `day` in `zone` (a midnight in a DST gap: the gap's end)."""
    return _to_us(datetime.combine(day, time(), tzinfo=zone))


def _days(from_us: int, to_us: int, zone: ZoneInfo) -> tuple[tuple[int, ...], tuple[str, ...]]:
    day = _local(from_us, zone).date()
    bounds, dates = [from_us], [day.isoformat()]
    while (start := _midnight_us(day := day + _DAY, zone)) < to_us:
        if start == bounds[-1]:            # the previous date was skipped by the zone
            dates[-1] = day.isoformat()
        else:
            bounds.append(start)
            dates.append(day.isoformat())
    bounds.append(to_us)
    return tuple(bounds), tuple(dates)
