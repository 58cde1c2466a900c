"""The top-level settings, one reader each: URLs, durations and their bounds, valuation currencies and price,
the rate-limit share, and the poll interval checked against the API budget.

Each reader appends its problems to a list, one line each as "key: what is wrong", and returns None for
a value it cannot use, so that load_config reports every problem of a file at once.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from exporter.api import budget
from exporter.describe import shown as _shown
from exporter.describe import type_name as _type_name
from exporter.durations import DurationError, format_duration, parse_duration_ms

DEFAULT_POLL_INTERVAL = 30.0
DEFAULT_TIMEOUT = 10.0
STALENESS_FACTOR = 10
VALUE_PRICES = ("last", "bid", "mid", "ask")
# Upper bounds, in seconds: far beyond any sensible setting, well within what threading's waits accept
# (a poll_interval of 3000000h overflowed Event.wait and logged errors in a tight loop).
MAX_DURATIONS = {"poll_interval": 86_400.0, "timeout": 600.0, "max_staleness": 30 * 86_400.0}

_SYMBOL_RE = re.compile(r"[A-Z0-9]+")


def parse_duration_s(
    value: object, key: str, problems: list[str], maximum: float | None = None
) -> float | None:
    """Seconds from "30s", "1h30m", "500ms", "1d" or whole seconds, at most `maximum` (by default the
    key's bound in MAX_DURATIONS)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems.append(f"{key}: expected a duration, got {_type_name(value)}")
        return None
    if isinstance(value, float):
        problems.append(f"{key}: fractions are not allowed (write 1s500ms, not 1.5), got {value:g}")
        return None
    bound = maximum if maximum is not None else MAX_DURATIONS.get(key, MAX_DURATIONS["poll_interval"])
    try:
        return parse_duration_ms(value, round(bound * 1000)) / 1000
    except DurationError as exc:
        problems.append(f"{key}: {exc}")
        return None


def parse_api_url(raw: object, key: str, problems: list[str], api_path_check: bool = True) -> str | None:
    """An http(s) base URL without a trailing slash (and, with api_path_check, without an /api path)."""
    if not isinstance(raw, str):
        problems.append(f"{key}: expected a string, got {_type_name(raw)}")
        return None
    url = raw.strip().rstrip("/")
    try:
        parts = urllib.parse.urlsplit(url)  # ValueError for an unclosed [IPv6 bracket
    except ValueError:
        parts = urllib.parse.urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        problems.append(f"{key}: must be an http:// or https:// URL, got {_shown(raw)}")
        return None
    try:
        port = parts.port  # ValueError unless a number in 0-65535
    except ValueError:
        port = 0
    if port == 0:
        problems.append(f"{key}: the port must be a number from 1 to 65535, got {_shown(raw)}")
        return None
    try:
        # What the HTTP client will do with it: a label over 63 characters (or unencodable) fails there.
        parts.hostname.encode("idna")
    except UnicodeError:
        problems.append(f"{key}: not a valid host name, got {_shown(raw)}")
        return None
    if parts.username is not None or parts.password is not None:
        # The URL is logged at start; a password in it would be too.
        problems.append(f"{key}: must not hold a user name or password (give the host only)")
        return None
    if api_path_check and "api" in parts.path.lower().split("/"):
        # The client appends /api/v1/... and /api/v2/...: .../api/v2 would request /api/v2/api/v2/ticker.
        base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        problems.append(
            f"{key}: give the base URL without the API path (the exporter adds /api/v1 and /api/v2), "
            f"like {base!r}, got {_shown(raw)}"
        )
        return None
    return url


def parse_value_currencies(raw: object, problems: list[str]) -> tuple[str, ...] | None:
    """value_currencies: a non-empty list of distinct asset symbols, upper-cased."""
    key = "value_currencies"
    if not isinstance(raw, list) or not raw:
        problems.append(f"{key}: must be a non-empty list of asset symbols, got {_type_name(raw)}")
        return None
    symbols: list[str] = []
    ok = True
    for index, item in enumerate(raw):
        symbol = item.strip().upper() if isinstance(item, str) else None
        if symbol is None or not _SYMBOL_RE.fullmatch(symbol):
            got = _shown(item) if isinstance(item, str) else _type_name(item)
            problems.append(f"{key}[{index}]: must be an asset symbol like TRY, got {got}")
            ok = False
        elif symbol in symbols:
            problems.append(f"{key}[{index}]: duplicate {symbol!r} (also {key}[{symbols.index(symbol)}])")
            ok = False
        symbols.append(symbol or "")
    return tuple(symbols) if ok else None


def parse_value_price(raw: object, problems: list[str]) -> str | None:
    """value_price: one of VALUE_PRICES, lower-cased."""
    choice = raw.strip().lower() if isinstance(raw, str) else None
    if choice not in VALUE_PRICES:
        got = _shown(raw) if isinstance(raw, str) else _type_name(raw)
        problems.append(f"value_price: must be one of {', '.join(VALUE_PRICES)}, got {got}")
        return None
    return choice


def parse_share(raw: object, problems: list[str]) -> float | None:
    """rate_limit_share: the part of each per-IP limit the configured polling may plan to use."""
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 0 < raw <= 1:
        return float(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) > 10**6:
        got = "a huge number"  # f"{raw:g}" would overflow a float
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        got = f"{raw:g}"
    else:
        got = _type_name(raw)
    problems.append(f"rate_limit_share: must be a number above 0 and at most 1, got {got}")
    return None


def check_budget(interval: float, accounts: int, share: float, problems: list[str]) -> None:
    """Refuse poll intervals that would plan past the share of the per-IP limits all accounts share."""
    for use in budget.plan(accounts, interval, share):
        if use.per_cycle and (problem := use.problem()):
            problems.append(f"poll_interval: {problem}")


def parse_intervals(
    data: Mapping[str, Any], problems: list[str]
) -> tuple[float | None, float | None, float | None]:
    """poll_interval, timeout and max_staleness, checked against each other."""

    def read(key: str) -> float | None:
        return parse_duration_s(data[key], key, problems)

    interval = read("poll_interval") if "poll_interval" in data else DEFAULT_POLL_INTERVAL
    timeout = read("timeout") if "timeout" in data else None
    staleness = read("max_staleness") if "max_staleness" in data else None
    if interval is None:
        return None, timeout, staleness
    # Defaults follow poll_interval, so setting only poll_interval can never make them invalid.
    if "timeout" not in data:
        timeout = min(DEFAULT_TIMEOUT, interval / 2)
    if "max_staleness" not in data:
        staleness = STALENESS_FACTOR * interval
    if timeout is not None and timeout >= interval:
        problems.append(
            f"timeout: must be shorter than poll_interval ({format_duration(interval)}), "
            f"got {format_duration(timeout)}"
        )
    if staleness is not None and staleness < interval:
        problems.append(
            f"max_staleness: must be at least poll_interval ({format_duration(interval)}), "
            f"got {format_duration(staleness)}"
        )
    return interval, timeout, staleness
