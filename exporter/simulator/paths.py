"""The API paths the simulator answers, and its own test-only prefix."""

from __future__ import annotations

from urllib.parse import urlsplit

BALANCES_PATH = "/api/v1/users/balances"
SERVER_TIME_PATH = "/api/v2/server/time"
TICKER_PATH = "/api/v2/ticker"
EXCHANGE_INFO_PATH = "/api/v2/server/exchangeinfo"
TRADES_PATH = "/api/v1/users/transactions/trade"
CRYPTO_PATH = "/api/v1/users/transactions/crypto"
FIAT_PATH = "/api/v1/users/transactions/fiat"
OPEN_ORDERS_PATH = "/api/v1/openOrders"
ALL_ORDERS_PATH = "/api/v1/allOrders"
ORDER_BOOK_PATH = "/api/v2/orderbook"
# graph-api.btcturk.com's paths, served on the same port (or a second one) by the simulator.
KLINES_PATH = "/v1/klines/history"
OHLCS_PATH = "/v1/ohlcs"
API_PATHS = frozenset(
    {
        BALANCES_PATH,
        SERVER_TIME_PATH,
        TICKER_PATH,
        EXCHANGE_INFO_PATH,
        TRADES_PATH,
        CRYPTO_PATH,
        FIAT_PATH,
        KLINES_PATH,
        OHLCS_PATH,
    }
)

# Requests per window per client IP (both reference notes' tables); endpoints not listed are unlimited.
LIMITS: dict[str, int] = {
    BALANCES_PATH: 120,
    TRADES_PATH: 120,
    CRYPTO_PATH: 90,
    FIAT_PATH: 90,
    OPEN_ORDERS_PATH: 300,
    ALL_ORDERS_PATH: 300,
    TICKER_PATH: 600,
    ORDER_BOOK_PATH: 180,
    KLINES_PATH: 120,
    OHLCS_PATH: 120,
}
# Test-only steering endpoints; the real API has nothing under this prefix.
CONTROL_PREFIX = "/_sim"


def normalize_path(path: str) -> str:
    """The path without query and trailing slash."""
    path = urlsplit(path).path or "/"
    return path.rstrip("/") or "/"
