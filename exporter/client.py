"""HTTP client for the BTCTurk REST API: signing, timeouts, clock correction and failure reasons."""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3.exceptions

from exporter import __version__
from exporter.config import Account
from exporter.parsing import (
    BadResponse,
    Balance,
    NotJSON,
    Ticker,
    decode_json,
    parse_balances,
    parse_server_time,
    parse_ticker_answer,
)
from exporter.signing import auth_headers
from exporter.transport import Watch, WatchedAdapter, current_watch, network_failure

log = logging.getLogger(__name__)

BALANCES = "/api/v1/users/balances"
TICKER = "/api/v2/ticker"
SERVER_TIME = "/api/v2/server/time"

REASONS = ("auth", "forbidden", "rate_limited", "server_error", "timeout", "connection", "bad_response")
TRANSIENT = frozenset({"rate_limited", "server_error", "timeout", "connection"})

USER_AGENT = f"btcturk-exporter/{__version__} (+https://github.com/btcturk-exporter/btcturk-exporter)"

# Called once per HTTP exchange with (endpoint, code); code is the status or the transport reason.
RequestHook = Callable[[str, str], None]
# Called once per oddity the client worked around in an answer, with (endpoint, kind).
OddityHook = Callable[[str, str], None]
ODDITIES = ((TICKER, "duplicate_pair"),)

# The live ticker is ~110 kB and exchangeinfo ~355 kB; a body past this is no answer of the API's,
# and reading it whole would take that much memory (a 200 MB one took the process to 1.27 GB).
MAX_BODY_BYTES = 8 * 1024 * 1024
# An error body only feeds a one-line detail.
MAX_ERROR_BODY_BYTES = 64 * 1024
_CHUNK = 64 * 1024
# Statuses whose Retry-After says when to come back.
_RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass
class ApiError(Exception):
    """A failed API call, mapped to one of REASONS; its text names the endpoint and status, never secrets."""

    reason: str
    endpoint: str
    status: int | None = None
    detail: str = ""
    retry_after: float | None = None
    # For failures without an answer: refused, dns, tls, timeout, reset or other.
    kind: str = ""

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


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


class Client:
    """Talks to one API host; each thread gets its own keep-alive session."""

    def __init__(
        self,
        api_url: str,
        timeout: float,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        pool_size: int = 10,
        on_oddity: OddityHook | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        parts = urlsplit(self.api_url)
        # Host and port only: a URL's user:password part must never reach an error message.
        self.host = f"{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}"
        self.total_timeout = timeout
        # Connecting should be quick; each socket read may take what the user configured. The whole
        # attempt is bounded by `timeout` too, see _fetch.
        self.timeout = (min(timeout, 5.0), timeout)
        self._pool_size = pool_size
        self._shared = self._prepare(session) if session is not None else None
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._clock = clock
        self._monotonic = monotonic
        self._on_oddity = on_oddity
        self._offset_lock = threading.Lock()
        self._offset = 0.0

    def _prepare(self, session: requests.Session) -> requests.Session:
        adapter = WatchedAdapter(pool_connections=1, pool_maxsize=self._pool_size)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        session.headers["Accept"] = "application/json"
        return session

    @property
    def session(self) -> requests.Session:
        """This thread's session: requests.Session is not documented as thread-safe, so none is shared."""
        if self._shared is not None:
            return self._shared
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._prepare(requests.Session())
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close every thread's session and its connections."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        if self._shared is not None:
            self._shared.close()

    @property
    def clock_offset(self) -> float:
        """Server time minus local time, in seconds, as last measured."""
        with self._offset_lock:
            return self._offset

    def now_ms(self) -> int:
        """The corrected time in milliseconds, as the API expects it in X-Stamp."""
        return int((self._clock() + self.clock_offset) * 1000)

    def _fetch(
        self,
        endpoint: str,
        hook: RequestHook | None,
        deadline: float | None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[requests.Response, bytes]:
        """One attempt: the status, headers and whole body, all within `timeout` (and `deadline`)."""
        started = self._monotonic()
        end = started + self.total_timeout
        if deadline is not None:
            end = min(end, deadline)
        left = end - started
        if left <= 0:
            raise ApiError(
                "timeout", endpoint, detail="no time left before the poll's deadline", kind="timeout"
            )
        watch = Watch(left)
        current_watch(watch)
        try:
            return self._exchange(endpoint, hook, end, watch, headers)
        finally:
            current_watch(None)
            watch.cancel()

    def _exchange(
        self,
        endpoint: str,
        hook: RequestHook | None,
        end: float,
        watch: Watch,
        headers: Mapping[str, str] | None,
    ) -> tuple[requests.Response, bytes]:
        left = max(0.0, end - self._monotonic())
        try:
            # Never follow a redirect: requests would resend X-PCK and X-Signature to wherever it points
            # (it strips only Authorization), and the API itself never redirects. A 3xx is bad_response.
            response = self.session.get(
                self.api_url + endpoint,
                timeout=(min(self.timeout[0], left), min(self.timeout[1], left)),
                allow_redirects=False,
                stream=True,
                headers=headers,
            )
        except Exception as exc:
            if watch.expired:  # the watchdog shut the socket: whatever broke, time ran out
                error = self._attempt_timeout(endpoint)
            elif isinstance(exc, requests.RequestException):
                reason, kind, detail = network_failure(exc, self.host, self.total_timeout)
                # The detail names host and port but never our headers.
                error = ApiError(reason, endpoint, detail=detail, kind=kind)
            else:
                raise
            self._report(hook, endpoint, error.reason)
            raise error from None
        status = response.status_code
        try:
            if status == 200:
                body = self._read_body(endpoint, response, end, watch, MAX_BODY_BYTES)
            else:
                # An error body only feeds the detail: read what arrives in time, keep going without it.
                try:
                    body = self._read_body(
                        endpoint, response, end, watch, MAX_ERROR_BODY_BYTES, truncate=True
                    )
                except ApiError:
                    response.close()
                    body = b""
        except ApiError as exc:
            response.close()
            self._report(hook, endpoint, exc.reason if exc.status is None else str(status))
            raise
        self._report(hook, endpoint, str(status))
        return response, body

    def _read_body(
        self,
        endpoint: str,
        response: requests.Response,
        end: float,
        watch: Watch,
        limit: int,
        truncate: bool = False,
    ) -> bytes:
        """Read the body in chunks, never past `limit` bytes or the monotonic time `end`."""
        status = response.status_code
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > limit and not truncate:
            raise ApiError(
                "bad_response", endpoint, status, f"body over {_size(limit)} (Content-Length {length})"
            )
        raw = response.raw
        parts: list[bytes] = []
        size = 0
        while True:
            left = end - self._monotonic()
            if left <= 0:
                raise self._attempt_timeout(endpoint)
            # Each read may block for the socket's timeout: never let it outlast the attempt.
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(min(self.timeout[1], left))
            try:
                chunk = raw.read1(_CHUNK, decode_content=True)
            except Exception as exc:
                raise self._read_failure(endpoint, response, watch, exc) from None
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                if truncate:
                    parts.append(chunk[: limit - size])
                    response.close()
                    return b"".join(parts)
                raise ApiError("bad_response", endpoint, status, f"body over {_size(limit)}")
            parts.append(chunk)
        if watch.expired:
            # A body without length or chunks ends at EOF, which a shut-down socket also gives.
            raise self._attempt_timeout(endpoint)
        watch.cancel()
        if sock is not None:
            # Back to the per-read timeout before the connection serves the next request.
            sock.settimeout(self.timeout[1])
        raw.release_conn()
        return b"".join(parts)

    def _read_failure(
        self, endpoint: str, response: requests.Response, watch: Watch, exc: Exception
    ) -> Exception:
        if watch.expired or isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return self._attempt_timeout(endpoint)
        if isinstance(exc, urllib3.exceptions.DecodeError):
            encoding = response.headers.get("Content-Encoding", "?")
            return ApiError("bad_response", endpoint, response.status_code, f"body is not valid {encoding}")
        if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
            reason, kind, detail = network_failure(exc, self.host, self.total_timeout)
            return ApiError(reason, endpoint, detail=f"reading the body: {detail}", kind=kind)
        return exc

    def _attempt_timeout(self, endpoint: str) -> ApiError:
        detail = f"{self.host}: answer not complete within {self.total_timeout:g}s"
        return ApiError("timeout", endpoint, detail=detail, kind="timeout")

    @staticmethod
    def _report(hook: RequestHook | None, endpoint: str, code: str) -> None:
        if hook is not None:
            hook(endpoint, code)

    def _json(self, endpoint: str, response: requests.Response, body: bytes) -> Any:
        status = response.status_code
        if status != 200:
            retry_after = None
            if status in _RETRY_AFTER_STATUSES:
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            detail = _error_detail(response, body)
            if 300 <= status < 400 and response.headers.get("Location"):
                # Usually http:// redirected to https://: say where, so api_url can be fixed.
                detail = f"redirect to {response.headers['Location'][:100]} (not followed)"
            raise ApiError(_status_reason(status), endpoint, status, detail, retry_after)
        try:
            return decode_json(body)
        except NotJSON as exc:
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise ApiError("bad_response", endpoint, status, f"{exc} ({kind})") from None
        except BadResponse as exc:
            raise ApiError("bad_response", endpoint, status, str(exc)) from None

    def _call(
        self,
        endpoint: str,
        parse: Callable[[Any], Any],
        hook: RequestHook | None,
        deadline: float | None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        response, body = self._fetch(endpoint, hook, deadline, headers)
        try:
            return parse(self._json(endpoint, response, body))
        except BadResponse as exc:
            raise ApiError("bad_response", endpoint, response.status_code, str(exc)) from None

    def sync_clock(self, hook: RequestHook | None = None, deadline: float | None = None) -> float:
        """Measure the offset to the server's clock (midpoint of the round trip) and keep it."""
        sent = self._clock()
        server: float = self._call(SERVER_TIME, parse_server_time, hook, deadline)
        received = self._clock()
        offset = server - (sent + received) / 2
        with self._offset_lock:
            self._offset = offset
        return offset

    def balances(
        self, account: Account, hook: RequestHook | None = None, deadline: float | None = None
    ) -> tuple[Balance, ...]:
        """Fetch and parse one account's balances; `deadline` (monotonic) ends the attempt early."""
        headers = auth_headers(account.public_key, account.private_key_bytes(), self.now_ms())
        balances: tuple[Balance, ...] = self._call(BALANCES, parse_balances, hook, deadline, headers)
        return balances

    def ticker(self, hook: RequestHook | None = None, deadline: float | None = None) -> tuple[Ticker, ...]:
        """Fetch and parse every pair's prices (unsigned, one call for all accounts)."""
        answer = self._call(TICKER, parse_ticker_answer, hook, deadline)
        if answer.duplicates:
            log.warning(
                "ticker answer lists %d pair(s) more than once (%s); kept the first row of each",
                len(answer.duplicates),
                ", ".join(sorted(set(answer.duplicates)))[:200],
            )
            if self._on_oddity is not None:
                for _ in answer.duplicates:
                    self._on_oddity(TICKER, "duplicate_pair")
        tickers: tuple[Ticker, ...] = answer.tickers
        return tickers


def _error_detail(response: requests.Response, body: bytes) -> str:
    """A short, safe description of an error body: the API's message code, or what kind of body it was."""
    if not body:
        return "empty body"
    try:
        payload = decode_json(body)
    except BadResponse:
        kind = response.headers.get("Content-Type", "unknown").split(";")[0]
        return f"non-JSON body ({kind})"
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])[:80].replace("\n", " ")
    return "JSON body"
