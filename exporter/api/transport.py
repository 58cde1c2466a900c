"""Deadline-bounded GETs to one host: a session per thread, a watchdog per attempt, capped bodies.

Knows HTTP, not the API: failures come out as TransportError with a reason from the client's list
(timeout, connection, bad_response) and a kind (refused, dns, tls, timeout, reset, other). The watchdog
is in watchdog.py, the body reading in body.py, the mapping of failures in network_errors.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import requests

from exporter.api.answer import Answer
from exporter.api.body import BodyReader
from exporter.api.network_errors import TransportError, network_failure
from exporter.api.watchdog import Watch, WatchedAdapter, current_watch


class Transport:
    """GETs to one base URL, each bounded as a whole by `timeout` (or an earlier deadline)."""

    def __init__(
        self,
        base_url: str,
        timeout: float,
        headers: Mapping[str, str],
        *,
        session: requests.Session | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        pool_size: int = 10,
    ) -> None:
        self.base_url = base_url
        parts = urlsplit(base_url)
        # Host and port only: a URL's user:password part must never reach an error message.
        self.host = f"{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}"
        self.timeout = timeout
        # Connecting should be quick; each socket read may take what the user configured.
        self._connect_timeout = min(timeout, 5.0)
        self._headers = dict(headers)
        self._pool_size = pool_size
        self._monotonic = monotonic
        self._bodies = BodyReader(self.host, timeout, monotonic)
        self._shared = self._prepare(session) if session is not None else None
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def _prepare(self, session: requests.Session) -> requests.Session:
        adapter = WatchedAdapter(pool_connections=1, pool_maxsize=self._pool_size)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update(self._headers)
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

    def get(
        self, path: str, end: float, headers: Mapping[str, str] | None, limit: int, error_limit: int
    ) -> Answer:
        """GET base_url + path, done by the monotonic time `end`; a 200's body may hold `limit` bytes.

        Any other status's body is cut at `error_limit` (it only feeds a message) and may be empty if
        it does not arrive in time.
        """
        left = end - self._monotonic()
        if left <= 0:
            raise TransportError("timeout", "timeout", "no time left before the poll's deadline", sent=False)
        watch = Watch(left)
        current_watch(watch)
        try:
            return self._exchange(path, end, watch, headers, limit, error_limit)
        finally:
            current_watch(None)
            watch.cancel()

    def _exchange(
        self,
        path: str,
        end: float,
        watch: Watch,
        headers: Mapping[str, str] | None,
        limit: int,
        error_limit: int,
    ) -> Answer:
        left = max(0.0, end - self._monotonic())
        try:
            # Never follow a redirect: requests would resend X-PCK and X-Signature to wherever it points
            # (it strips only Authorization), and the API itself never redirects. A 3xx is bad_response.
            response = self.session.get(
                self.base_url + path,
                timeout=(min(self._connect_timeout, left), min(self.timeout, left)),
                allow_redirects=False,
                stream=True,
                headers=headers,
            )
        except Exception as exc:
            if watch.expired:  # the watchdog shut the socket: whatever broke, time ran out
                raise self._bodies.timed_out() from None
            if isinstance(exc, requests.RequestException):
                # The detail names host and port but never our headers.
                raise TransportError(*network_failure(exc, self.host, self.timeout)) from None
            raise
        try:
            body = self._bodies.answer_body(response, end, watch, limit, error_limit)
        except TransportError:
            response.close()
            raise
        return Answer(response.status_code, response.headers, body)
