"""Settings of the account-activity sync: a frozen dataclass the config loader fills, and its parsers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

DAY_MS = 86_400_000
# The transaction endpoints answer at most 30 days a request (btcturk-activity-api.md).
MAX_WINDOW_MS = 30 * DAY_MS
DEFAULT_SINCE = "730d"
DEFAULT_GRAPH_API_URL = "https://graph-api.btcturk.com"
# The real API's page cap is undocumented (the simulator's is 100). An answer this long may have been
# cut, and is read again in halves: a low default costs requests, a high one could lose records.
DEFAULT_PAGE_CAP = 50

_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# How cost basis is computed: the config spells it, the ledger replays by it.
CostMethod = Literal["average", "fifo", "lifo", "hifo"]
COST_METHODS: tuple[CostMethod, ...] = ("average", "fifo", "lifo", "hifo")


def parse_duration_ms(text: str) -> int:
    """`730d`, `12h`, `90s`, `1w`: milliseconds; ValueError naming the text otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected a duration such as 730d, 12h or 90s, got {text[:40]!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_since(text: str, now_ms: int) -> int:
    """Where a first backfill starts, in Unix ms: a UTC date (`2024-01-31`) or a duration before now."""
    text = text.strip()
    if _DATE.fullmatch(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            raise ValueError(f"expected a date as YYYY-MM-DD, got {text[:40]!r}") from None
        return int(day.timestamp() * 1000)
    try:
        return now_ms - parse_duration_ms(text)
    except ValueError:
        raise ValueError(f"expected a date (YYYY-MM-DD) or a duration (730d), got {text[:40]!r}") from None


@dataclass(frozen=True)
class ActivitySettings:
    """How the account-activity sync runs; durations in seconds unless named `_ms`."""

    enabled: bool = True
    since: str = DEFAULT_SINCE  # a UTC date or a duration before the first run
    interval: float = 300.0  # between steady-state syncs of each endpoint
    cost_basis: CostMethod = "average"
    currencies: tuple[str, ...] = ("TRY", "USDT")  # valuation currencies of the cost basis
    page_cap: int = DEFAULT_PAGE_CAP  # an answer this long may be cut: read the window again in halves
    overlap: float = 3600.0  # re-read this far before the newest record, for late arrivals
    rate_limit_share: float = 0.8  # of each activity endpoint's per-IP budget the sync plans to use
    market_interval: float = 300.0  # between exchangeinfo polls
    graph_api_url: str = DEFAULT_GRAPH_API_URL
    permission_recheck: float = 3600.0  # a key refused with 401 is tried again after this long
    requests_per_turn: int = 10  # backfill requests per account before the next account's turn
    request_deadline: float = 120.0  # one request with its retries and Retry-After waits

    def __post_init__(self) -> None:
        parse_since(self.since, 0)  # raises ValueError naming the text
        if self.page_cap < 2:
            raise ValueError(f"page_cap must be at least 2, got {self.page_cap}")
        if self.cost_basis not in COST_METHODS:
            raise ValueError(f"cost_basis must be one of {', '.join(COST_METHODS)}, got {self.cost_basis!r}")
        for name in ("interval", "market_interval", "permission_recheck", "request_deadline"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.overlap < 0:
            raise ValueError(f"overlap must not be negative, got {self.overlap!r}")
        if not 0 < self.rate_limit_share <= 1:
            raise ValueError(f"rate_limit_share must be in (0, 1], got {self.rate_limit_share!r}")
        if self.requests_per_turn < 1:
            raise ValueError(f"requests_per_turn must be at least 1, got {self.requests_per_turn}")
