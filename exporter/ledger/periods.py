"""Calendar periods (month, quarter, year) cut in a time zone, and dates read in one: pure functions."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Literal

Period = Literal["month", "quarter", "year"]
PERIODS: tuple[Period, ...] = ("month", "quarter", "year")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The years a moment may be given in: past the last, a period's end (the next year's start) would not be a
# datetime; before the first, no record can be.
YEARS = (1970, 9998)
_MOMENT = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?(Z)?)?")


def local(when_ms: int, zone: tzinfo) -> datetime:
    """The moment `when_ms` (Unix ms) as a wall-clock time in `zone`."""
    # Integer arithmetic: a float of the milliseconds can round into the next second.
    return (_EPOCH + timedelta(milliseconds=when_ms)).astimezone(zone)


def iso_utc(when_ms: int) -> str:
    """A moment in ISO 8601, UTC, to the millisecond: `2026-01-31T14:00:00.000Z`."""
    # Integer arithmetic: a float of the milliseconds can round 0.999 s up into the next second.
    moment = _EPOCH + timedelta(seconds=when_ms // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when_ms % 1000:03d}Z"


def iso_local(when_ms: int, zone: tzinfo) -> str:
    """A moment in ISO 8601 in `zone`, with its offset: `2026-01-01T00:00:00+03:00`."""
    return local(when_ms, zone).isoformat(timespec="seconds")


def to_ms(moment: datetime) -> int:
    """Unix ms of an aware datetime, exactly."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _start(year: int, month: int, zone: tzinfo) -> int:
    return to_ms(datetime(year, month, 1, tzinfo=zone))


def bounds(when_ms: int, period: Period, zone: tzinfo) -> tuple[str, int, int]:
    """The period holding `when_ms`: its name (`2026-11`, `2026-Q4`, `2026`), start and end (Unix ms)."""
    moment = local(when_ms, zone)
    year, month = moment.year, moment.month
    if period == "month":
        first, months, name = month, 1, f"{year}-{month:02d}"
    elif period == "quarter":
        first, months, name = (month - 1) // 3 * 3 + 1, 3, f"{year}-Q{(month - 1) // 3 + 1}"
    else:
        first, months, name = 1, 12, f"{year}"
    end_year, end_month = year + (first - 1 + months) // 12, (first - 1 + months) % 12 + 1
    return name, _start(year, first, zone), _start(end_year, end_month, zone)


def parse_moment(text: str, flag: str, zone: tzinfo) -> int:
    """Unix ms of `2026-01-31` (midnight in `zone`), `2026-01-31T14:00[:00]` (in `zone`) or `...Z` (UTC).

    ValueError naming `flag` when the text is neither, or its year is outside YEARS.
    """
    match = _MOMENT.fullmatch(text.strip())
    try:
        if match is None:
            raise ValueError
        day, hour, minute, second, utc = match.groups()
        moment = datetime.strptime(day, "%Y-%m-%d").replace(
            hour=int(hour or 0), minute=int(minute or 0), second=int(second or 0)
        )
    except ValueError:
        raise ValueError(
            f"{flag}: expected a date (2026-01-31) or time (2026-01-31T14:00, or 2026-01-31T14:00:00Z "
            f"in UTC), got {text[:40]!r}"
        ) from None
    if not YEARS[0] <= moment.year <= YEARS[1]:
        raise ValueError(f"{flag}: {day} is out of range (years {YEARS[0]} to {YEARS[1]})")
    return to_ms(moment.replace(tzinfo=timezone.utc if utc else zone))
