"""Deadline-bounded GETs to one host: a session per thread, a watchdog per attempt, capped bodies.

Knows HTTP, not the API: failures come out as TransportError with a reason from the client's list
(timeout, connection, bad_response) and a kind (refused, dns, tls, timeout, reset, other).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3.exceptions
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class Watch:
    """The deadline of one attempt: when it passes, the attempt's socket is shut down under it.

    Per-read socket timeouts alone let a server that sends one byte just before each would expire
    (status line, headers or body) hold a request forever; this bounds the whole exchange.
    """

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.expired = False
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        """Put the socket the attempt now reads from under this deadline."""
        with self._lock:
            self._sock = sock
            expired = self.expired
        if expired and sock is not None:
            _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sock = self._sock
        if sock is not None:
            _shutdown(sock)

    def cancel(self) -> None:
        """The attempt is over: leave its socket alone (it may go back to the pool)."""
        self._timer.cancel()
        with self._lock:
            self._sock = None


def _shutdown(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for an SSLSocket: SSLSocket.shutdown would drop its SSL object
    # under the thread still reading from it. A blocked recv then returns at once.
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_current = threading.local()


def current_watch(watch: Watch | None) -> None:
    """Set (or clear, with None) the Watch of the attempt this thread is making."""
    _current.watch = watch


def _watch_current(sock: socket.socket | None) -> None:
    """Put the socket a response is read from under this thread's Watch, if it has one."""
    watch: Watch | None = getattr(_current, "watch", None)
    if watch is not None:
        watch.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:
        _watch_current(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        _watch_current(self.sock)
        return super().getresponse()


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class WatchedAdapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter whose connections put themselves under the current thread's Watch."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Create the pool manager with the watched connection pools."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and every one it wraps (cause, context, urllib3's reason, exceptions in args)."""
    seen: list[BaseException] = []
    stack = [exc]
    while stack:
        current = stack.pop(0)
        if any(current is old for old in seen):
            continue
        seen.append(current)
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        inner.extend(current.args)
        stack.extend(e for e in inner if isinstance(e, BaseException))
    return seen


def network_failure(exc: BaseException, host: str, timeout: float) -> tuple[str, str, str]:
    """Map a requests/urllib3 exception chain to (reason, kind, one-line detail naming the host)."""
    chain = _chain(exc)

    def has(*types: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, types)), None)

    tls = has(ssl.SSLError)
    if tls is not None or isinstance(exc, requests.exceptions.SSLError):
        why = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or "handshake failed"
        return "connection", "tls", f"{host}: TLS failed ({why})"
    if has(socket.gaierror, urllib3.exceptions.NameResolutionError) is not None:
        return "connection", "dns", f"{host}: DNS lookup failed (no such host, or no resolver)"
    if has(ConnectionRefusedError) is not None:
        return "connection", "refused", f"{host}: connection refused"
    # urllib3's NewConnectionError subclasses ConnectTimeoutError for history's sake, whatever the
    # cause (network unreachable, say): like requests, only a real timeout counts as one.
    timed_out = any(
        isinstance(e, TimeoutError | urllib3.exceptions.TimeoutError)
        and not isinstance(e, urllib3.exceptions.NewConnectionError)
        for e in chain
    )
    if timed_out or isinstance(exc, requests.Timeout):
        connect = isinstance(exc, requests.ConnectTimeout) or any(
            type(e) is urllib3.exceptions.ConnectTimeoutError for e in chain
        )
        step = "connecting" if connect else "waiting for the answer"
        return "timeout", "timeout", f"{host}: timed out {step} (timeout {timeout:g}s)"
    if has(ConnectionResetError, BrokenPipeError, ConnectionAbortedError) is not None:
        return "connection", "reset", f"{host}: connection reset or closed before a whole answer"
    if has(urllib3.exceptions.ProtocolError) is not None:
        return "connection", "reset", f"{host}: connection broken before a whole answer"
    os_error = next((e for e in chain if type(e) is OSError or isinstance(e, ConnectionError)), None)
    if isinstance(os_error, OSError) and os_error.strerror:
        # e.g. "Network is unreachable", "No route to host": the system's words are the clearest.
        return "connection", "other", f"{host}: {os_error.strerror}"
    return "connection", "other", f"{host}: {type(exc).__name__}"


_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """A whole HTTP answer: status, headers and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass
class TransportError(Exception):
    """No usable answer; `sent` says whether the request went out (so it counts as an exchange)."""

    reason: str
    kind: str
    detail: str
    status: int | None = None
    sent: bool = True


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


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
                raise self._timeout() from None
            if isinstance(exc, requests.RequestException):
                # The detail names host and port but never our headers.
                raise TransportError(*network_failure(exc, self.host, self.timeout)) from None
            raise
        status = response.status_code
        try:
            if status == 200:
                body = self._read_body(response, end, watch, limit)
            else:
                try:
                    body = self._read_body(response, end, watch, error_limit, truncate=True)
                except TransportError:
                    response.close()
                    body = b""
        except TransportError:
            response.close()
            raise
        return Answer(status, response.headers, body)

    def _read_body(
        self, response: requests.Response, end: float, watch: Watch, limit: int, truncate: bool = False
    ) -> bytes:
        """Read the body in chunks, never past `limit` bytes or the monotonic time `end`."""
        status = response.status_code
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > limit and not truncate:
            detail = f"body over {_size(limit)} (Content-Length {length})"
            raise TransportError("bad_response", "", detail, status)
        raw = response.raw
        parts: list[bytes] = []
        size = 0
        while True:
            left = end - self._monotonic()
            if left <= 0:
                raise self._timeout()
            # Each read may block for the socket's timeout: never let it outlast the attempt.
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(min(self.timeout, left))
            try:
                chunk = raw.read1(_CHUNK, decode_content=True)
            except Exception as exc:
                raise self._read_failure(response, watch, exc) from None
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                if truncate:
                    parts.append(chunk[: limit - size])
                    response.close()
                    return b"".join(parts)
                raise TransportError("bad_response", "", f"body over {_size(limit)}", status)
            parts.append(chunk)
        if watch.expired:
            # A body without length or chunks ends at EOF, which a shut-down socket also gives.
            raise self._timeout()
        watch.cancel()
        if sock is not None:
            # Back to the per-read timeout before the connection serves the next request.
            sock.settimeout(self.timeout)
        raw.release_conn()
        return b"".join(parts)

    def _read_failure(self, response: requests.Response, watch: Watch, exc: Exception) -> Exception:
        if watch.expired or isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return self._timeout()
        if isinstance(exc, urllib3.exceptions.DecodeError):
            encoding = response.headers.get("Content-Encoding", "?")
            return TransportError("bad_response", "", f"body is not valid {encoding}", response.status_code)
        if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
            reason, kind, detail = network_failure(exc, self.host, self.timeout)
            return TransportError(reason, kind, f"reading the body: {detail}")
        return exc

    def _timeout(self) -> TransportError:
        return TransportError(
            "timeout", "timeout", f"{self.host}: answer not complete within {self.timeout:g}s"
        )
