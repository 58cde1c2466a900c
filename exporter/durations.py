"""Durations in Prometheus's syntax (model.ParseDuration): 1y2w3d4h5m6s7ms, units in descending order.

Plain integers are seconds, as the configuration has always documented. Fractions are refused, as
Prometheus refuses them: `1.5s` is written `1s500ms`.
"""

from __future__ import annotations

import re

from exporter.describe import shown as _shown

# Prometheus's units; a year is 365 days and a week 7, as in model.ParseDuration.
UNIT_MS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000}
UNIT_MS |= {"s": 1000, "ms": 1}
_DURATION_RE = re.compile("".join(rf"(?:(?P<{u}>\d+){u})?" for u in UNIT_MS))
_SECONDS_RE = re.compile(r"\d+")
# Digits, unit letters and a dot: a duration with a fraction in it, like 1.5s or 0.5.
_FRACTION_RE = re.compile(r"[0-9ywdhms]*\.[0-9ywdhms.]*")


class DurationError(ValueError):
    """Not a duration; str() is the reason, for the caller to prefix with the key."""


def parse_duration_ms(value: int | str, maximum_ms: int) -> int:
    """Whole milliseconds from "1h30m", "500ms" or an integer of seconds; raise DurationError.

    A duration must be positive and at most `maximum_ms`: an interval beyond what threading's
    timeouts accept would turn every wait into an error.
    """
    got = (
        _shown(value)
        if isinstance(value, str)
        else str(value)
        if value.bit_length() < 100
        else "a huge number"
    )
    text = value.strip() if isinstance(value, str) else ""
    if isinstance(value, int):
        millis = value * 1000
    elif _FRACTION_RE.fullmatch(text) and any(c.isdigit() for c in text):
        raise DurationError(f"fractions are not allowed (write 1s500ms, not 1.5s), got {got}")
    elif _SECONDS_RE.fullmatch(text):
        millis = _int(text) * 1000
    elif text and (match := _DURATION_RE.fullmatch(text)):
        millis = sum(_int(n) * UNIT_MS[unit] for unit, n in match.groupdict().items() if n)
    else:
        raise DurationError(
            "must be a duration like 30s, 1m30s or 500ms (units y, w, d, h, m, s, ms, largest first) "
            f"or whole seconds, got {got}"
        )
    if millis <= 0:
        raise DurationError(f"must be a positive duration like 30s, got {got}")
    if millis > maximum_ms:
        raise DurationError(f"must be at most {format_duration(maximum_ms / 1000)}, got {got}")
    return millis


def _int(digits: str) -> int:
    # int() refuses over 4300 digits; any such number is far beyond every bound anyway.
    return int(digits) if len(digits) <= 30 else 10**30


def format_duration(seconds: float) -> str:
    """Render seconds as Prometheus does: 90 -> '1m30s', 0.5 -> '500ms', 864000 -> '1w3d'."""
    millis = seconds * 1000
    if not millis > 0 or millis == float("inf") or abs(millis - round(millis)) > 1e-6:
        return f"{seconds:g}s"
    rest = round(millis)
    parts = []
    for unit, size in UNIT_MS.items():
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
