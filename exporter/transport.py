"""Deadline-bounded HTTP under the client: a watchdog per attempt, and failures mapped to their kind."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from typing import Any

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


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:
        watch: Watch | None = getattr(_current, "watch", None)
        if watch is not None:
            watch.watch(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        watch: Watch | None = getattr(_current, "watch", None)
        if watch is not None:
            watch.watch(self.sock)
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
