"""The watchdog of one HTTP attempt: when its deadline passes, the socket it reads from is shut down.

The watched connection classes put each response's socket under the current thread's Watch, so that
a deadline bounds the whole exchange, not only each read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

import requests.adapters
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
