"""HTTP client for the BTCTurk REST API: signing, timeouts, clock correction and failure reasons."""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import requests.adapters

from exporter import __version__
from exporter.config import Account
from exporter.parsing import (
    BadResponse,
    Balance,
    Ticker,
    parse_balances,
    parse_server_time,
    parse_ticker,
)
from exporter.signing import auth_headers

log = logging.getLogger(__name__)

BALANCES = "/api/v1/users/balances"
TICKER = "/api/v2/ticker"
SERVER_TIME = "/api/v2/server/time"

REASONS = ("auth", "forbidden", "rate_limited", "server_error", "timeout", "connection", "bad_response")
TRANSIENT = frozenset({"rate_limited", "server_error", "timeout", "connection"})

USER_AGENT = f"btcturk-exporter/{__version__} (+https://github.com/btcturk-exporter/btcturk-exporter)"

# Called once per HTTP exchange with (endpoint, code); code is the status or the transport reason.
RequestHook = Callable[[str, str], None]


@dataclass
class ApiError(Exception):
    """A failed API call, mapped to one of REASONS; its text names the endpoint and status, never secrets."""

    reason: str
    endpoint: str
    status: int | None = None
    detail: str = ""
    retry_after: float | None = None

    def __str__(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "no response"
        detail = f": {self.detail}" if self.detail else ""
        return f"GET {self.endpoint}: {status} ({self.reason}){detail}"

    @property
    def transient(self) -> bool:
        """Whether retrying soon can help."""
        return self.reason in TRANSIENT


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date); None if absent or unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _status_reason(status: int) -> str:
    if status == 401:
        return "auth"
    if status == 403:
        return "forbidden"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "bad_response"


class Client:
    """One keep-alive session to one API host, shared by every account of the process."""

    def __init__(
        self,
        api_url: str,
        timeout: float,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        pool_size: int = 10,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        # Connecting should be quick; the read timeout is what the user configured.
        self.timeout = (min(timeout, 5.0), timeout)
        self.session = session or requests.Session()
        # Every account's thread may hold a connection at once; a smaller pool would churn sockets.
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        self._clock = clock
        self._offset_lock = threading.Lock()
        self._offset = 0.0

    @property
    def clock_offset(self) -> float:
        """Server time minus local time, in seconds, as last measured."""
        with self._offset_lock:
            return self._offset

    def now_ms(self) -> int:
        """The corrected time in milliseconds, as the API expects it in X-Stamp."""
        return int((self._clock() + self.clock_offset) * 1000)

    def _get(self, endpoint: str, hook: RequestHook | None, **kwargs: Any) -> requests.Response:
        try:
            # Never follow a redirect: requests would resend X-PCK and X-Signature to wherever it points
            # (it strips only Authorization), and the API itself never redirects. A 3xx is bad_response.
            response = self.session.get(
                self.api_url + endpoint, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.Timeout:
            self._report(hook, endpoint, "timeout")
            raise ApiError("timeout", endpoint, detail=f"no answer within {self.timeout[1]:g}s") from None
        except requests.RequestException as exc:
            self._report(hook, endpoint, "connection")
            # The exception text names host and port but never our headers.
            raise ApiError("connection", endpoint, detail=type(exc).__name__) from None
        self._report(hook, endpoint, str(response.status_code))
        return response

    @staticmethod
    def _report(hook: RequestHook | None, endpoint: str, code: str) -> None:
        if hook is not None:
            hook(endpoint, code)

    def _json(self, endpoint: str, response: requests.Response) -> Any:
        status = response.status_code
        if status != 200:
            retry_after = None
            if status == 429:
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            detail = _error_detail(response)
            if 300 <= status < 400 and response.headers.get("Location"):
                # Usually http:// redirected to https://: say where, so api_url can be fixed.
                detail = f"redirect to {response.headers['Location'][:100]} (not followed)"
            raise ApiError(_status_reason(status), endpoint, status, detail, retry_after)
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise ApiError("bad_response", endpoint, status, f"body is not JSON ({kind})") from None
        except RecursionError:  # json's decoder gives up on deep nesting with this, not ValueError
            raise ApiError("bad_response", endpoint, status, "JSON nested too deeply") from None

    def sync_clock(self, hook: RequestHook | None = None) -> float:
        """Measure the offset to the server's clock (midpoint of the round trip) and keep it."""
        sent = self._clock()
        response = self._get(SERVER_TIME, hook)
        received = self._clock()
        try:
            server = parse_server_time(self._json(SERVER_TIME, response))
        except BadResponse as exc:
            raise ApiError("bad_response", SERVER_TIME, response.status_code, str(exc)) from None
        offset = server - (sent + received) / 2
        with self._offset_lock:
            self._offset = offset
        return offset

    def balances(self, account: Account, hook: RequestHook | None = None) -> tuple[Balance, ...]:
        """Fetch and parse one account's balances."""
        headers = auth_headers(account.public_key, account.private_key_bytes(), self.now_ms())
        response = self._get(BALANCES, hook, headers=headers)
        try:
            return parse_balances(self._json(BALANCES, response))
        except BadResponse as exc:
            raise ApiError("bad_response", BALANCES, response.status_code, str(exc)) from None

    def ticker(self, hook: RequestHook | None = None) -> tuple[Ticker, ...]:
        """Fetch and parse every pair's prices (unsigned, one call for all accounts)."""
        response = self._get(TICKER, hook)
        try:
            return parse_ticker(self._json(TICKER, response))
        except BadResponse as exc:
            raise ApiError("bad_response", TICKER, response.status_code, str(exc)) from None


def _error_detail(response: requests.Response) -> str:
    """A short, safe description of an error body: the API's message code, or what kind of body it was."""
    if not response.content:
        return "empty body"
    try:
        payload = response.json()
    except (ValueError, RecursionError):
        kind = response.headers.get("Content-Type", "unknown").split(";")[0]
        return f"non-JSON body ({kind})"
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])[:80].replace("\n", " ")
    return "JSON body"
