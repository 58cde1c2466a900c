"""Settings of the account-activity sync: a frozen dataclass the config loader fills, and its parsers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from exporter.api.records import EXCHANGE_FIRST_DAY, EXCHANGE_FIRST_DAY_MS
from exporter.describe import shown
from exporter.durations import DurationError, parse_duration_ms

DAY_MS = 86_400_000
# The transaction endpoints answer at most 30 days a request (btcturk-activity-api.md).
MAX_WINDOW_MS = 30 * DAY_MS
DEFAULT_SINCE = "730d"
DEFAULT_GRAPH_API_URL = "https://graph-api.btcturk.com"
# The real API's page cap is undocumented (the simulator's is 100). An answer this long may have been
# cut, and is read again in halves: a low default costs requests, a high one could lose records.
DEFAULT_PAGE_CAP = 50

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Far beyond any since; only keeps parse_duration_ms's arithmetic bounded.
_SINCE_MAX_MS = 10**15
SINCE_FORMS = "a UTC date like 2025-01-31 or a duration before now like 730d, 1y or 1d12h"

# How cost basis is computed: the config spells it, the ledger replays by it.
CostMethod = Literal["average", "fifo", "lifo", "hifo"]
COST_METHODS: tuple[CostMethod, ...] = ("average", "fifo", "lifo", "hifo")


def parse_since(text: str | int, now_ms: int) -> int:
    """Where a first backfill starts, in Unix ms: a UTC date (`2024-01-31`) or a duration before now.

    Durations are the configuration's one grammar (exporter/durations.py: Prometheus's, or whole
    seconds). ValueError, one line without the key, when it is neither; check_since also bounds it.
    """
    if isinstance(text, str) and _DATE.fullmatch(text.strip()):
        try:
            day = datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            raise ValueError(f"not a date on the calendar (YYYY-MM-DD), got {shown(text)}") from None
        return int(day.timestamp() * 1000)
    try:
        return now_ms - parse_duration_ms(text, _SINCE_MAX_MS)
    except DurationError as exc:
        reason = str(exc)
    if reason.startswith("must be a duration"):  # not a near miss: say every form it may take
        got = shown(text) if isinstance(text, str) else str(text)
        reason = f"must be {SINCE_FORMS} (units y, w, d, h, m, s, ms, largest first), got {got}"
    raise ValueError(reason)


def check_since(text: str | int, now_ms: int) -> int:
    """parse_since, refusing a start after now or before the exchange's first day (nothing to read)."""
    start = parse_since(text, now_ms)
    got = shown(text) if isinstance(text, str) else str(text)
    if start > now_ms:
        raise ValueError(
            f"{got} is in the future (today is {_day(now_ms)}): a backfill reads from it up to now"
        )
    if start < EXCHANGE_FIRST_DAY_MS:
        where = "is" if _DATE.fullmatch(str(text).strip()) else f"before now reaches back to {_day(start)},"
        raise ValueError(
            f"{got} {where} before BTCTurk's first day ({EXCHANGE_FIRST_DAY}): no account has history "
            "to read there"
        )
    return start


def _day(ms: int) -> str:
    if ms < -62_135_596_800_000:  # before year 1: datetime cannot show it
        return "before year 1"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class ActivitySettings:
    """How the account-activity sync runs; durations in seconds unless named `_ms`."""

    enabled: bool = True
    since: str = DEFAULT_SINCE  # a UTC date or a duration before the first run (parse_since)
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
        parse_since(self.since, 0)  # the syntax only: the bounds need the clock (check_since)
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
