"""The API paths the simulator answers, and its own test-only prefix."""

from __future__ import annotations

from urllib.parse import urlsplit

BALANCES_PATH = "/api/v1/users/balances"
SERVER_TIME_PATH = "/api/v2/server/time"
TICKER_PATH = "/api/v2/ticker"
EXCHANGE_INFO_PATH = "/api/v2/server/exchangeinfo"
API_PATHS = frozenset({BALANCES_PATH, SERVER_TIME_PATH, TICKER_PATH, EXCHANGE_INFO_PATH})
# Test-only steering endpoints; the real API has nothing under this prefix.
CONTROL_PREFIX = "/_sim"


def normalize_path(path: str) -> str:
    """The path without query and trailing slash."""
    path = urlsplit(path).path or "/"
    return path.rstrip("/") or "/"
