"""HTTP client for the BTCTurk REST API: signing, timeouts, clock correction; failures are errors.py's."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests

from exporter import __version__
from exporter.api.account import Account
from exporter.api.answer import Answer
from exporter.api.errors import ApiError, answer_json
from exporter.api.network_errors import TransportError
from exporter.api.parsing import (
    BadResponse,
    Balance,
    Ticker,
    parse_balances,
    parse_server_time,
    parse_ticker_answer,
)
from exporter.api.signing import auth_headers
from exporter.api.transport import Transport

log = logging.getLogger(__name__)

T = TypeVar("T")

BALANCES = "/api/v1/users/balances"
TICKER = "/api/v2/ticker"
SERVER_TIME = "/api/v2/server/time"

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


class Client:
    """The BTCTurk API over one Transport: signing, clock correction and parsing, failures as ApiErrors."""

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
        self.total_timeout = timeout
        self._transport = Transport(
            self.api_url,
            timeout,
            {"User-Agent": USER_AGENT, "Accept": "application/json"},
            session=session,
            monotonic=monotonic,
            pool_size=pool_size,
        )
        self.host = self._transport.host
        self._clock = clock
        self._monotonic = monotonic
        self._on_oddity = on_oddity
        self._offset_lock = threading.Lock()
        self._offset = 0.0

    @property
    def session(self) -> requests.Session:
        """This thread's session (each thread has its own)."""
        return self._transport.session

    def close(self) -> None:
        """Close every thread's session and its connections."""
        self._transport.close()

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
        query: str = "",
    ) -> Answer:
        """One attempt: the status, headers and whole body, all within `timeout` (and `deadline`)."""
        end = self._monotonic() + self.total_timeout
        if deadline is not None:
            end = min(end, deadline)
        # The query goes on the wire only: hooks, errors and logs name the endpoint's path.
        target = f"{endpoint}?{query}" if query else endpoint
        try:
            answer = self._transport.get(target, end, headers, MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES)
        except TransportError as exc:
            if exc.sent:
                self._report(hook, endpoint, exc.reason if exc.status is None else str(exc.status))
            raise ApiError(exc.reason, endpoint, exc.status, exc.detail, kind=exc.kind) from None
        self._report(hook, endpoint, str(answer.status))
        return answer

    @staticmethod
    def _report(hook: RequestHook | None, endpoint: str, code: str) -> None:
        if hook is not None:
            hook(endpoint, code)

    def _call(
        self,
        endpoint: str,
        parse: Callable[[Any], Any],
        hook: RequestHook | None,
        deadline: float | None,
        headers: Mapping[str, str] | None = None,
        query: str = "",
    ) -> Any:
        answer = self._fetch(endpoint, hook, deadline, headers, query)
        try:
            return parse(answer_json(endpoint, answer, self._clock()))
        except BadResponse as exc:
            raise ApiError("bad_response", endpoint, answer.status, str(exc)) from None

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

    def get_json(
        self,
        endpoint: str,
        parse: Callable[[Any], T],
        *,
        query: str = "",
        account: Account | None = None,
        hook: RequestHook | None = None,
        deadline: float | None = None,
    ) -> T:
        """GET `endpoint?query`, signed for `account` when given, and return `parse` of its JSON."""
        headers = None
        if account is not None:
            headers = auth_headers(account.public_key, account.private_key_bytes(), self.now_ms())
        result: T = self._call(endpoint, parse, hook, deadline, headers, query)
        return result

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
