"""Bounded connection handling for the HTTP server: one thread waits on every socket, a fixed pool serves.

A thread per connection let idle, slow (slowloris) or bursting clients pin hundreds of threads and
hundreds of megabytes, and made a normal scrape wait minutes. Here one selector thread accepts
connections, finishes TLS handshakes and reads request headers without blocking, each within a
deadline; only a request whose headers are complete is handed to a worker (web/workers.py).
Connections are capped: over the cap, the oldest connection that has not yet sent a whole request is
closed, so a flood cannot lock out a scraper that sends its request at once.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable

from exporter.web.registry import WRITING, Connection, Limits, Registry
from exporter.web.workers import Serve, Workers

log = logging.getLogger(__name__)

# The end of a request's header block (bare LF tolerated, as http.server does).
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 25\r\nConnection: close\r\n\r\nrequest headers too large"
)
_ACCEPTS_PER_ROUND = 64
_SWEEP_EVERY = 0.05


# Called at each accept: a socket to serve (e.g. wrapped in TLS) and a context object for the connection.
Accept = Callable[[socket.socket], tuple[socket.socket, object]]


class _Traffic:
    """Moves each connection through its states, on the selector thread: reading a request's headers,
    with a worker, writing what the client has not yet taken, then idle until its next request."""

    def __init__(self, conns: Registry, workers: Workers, limits: Limits, stop: threading.Event) -> None:
        self._conns = conns
        self._workers = workers
        self._limits = limits
        self._stop = stop

    def on_readable(self, conn: Connection) -> None:
        """Read what the client sent; hand the request to a worker once its headers are complete."""
        try:
            if not conn.receive(self._limits.max_header_bytes, self._conns.request_started):
                self._conns.drop(conn)
                return
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            self._conns.want(conn, selectors.EVENT_READ)
        except ssl.SSLWantWriteError:
            self._conns.want(conn, selectors.EVENT_WRITE)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a failed handshake
            log.debug("connection from %s ended: %s", conn.address, exc)
            self._conns.drop(conn)
            return
        self._dispatch_if_complete(conn)

    def _dispatch_if_complete(self, conn: Connection) -> None:
        end = _HEADER_END.search(conn.buffer, 0, self._limits.max_header_bytes + 4)
        if end is None:
            if len(conn.buffer) > self._limits.max_header_bytes:
                with contextlib.suppress(OSError):
                    conn.sock.send(_TOO_LARGE)
                self._conns.drop(conn)
            return
        request = bytes(conn.buffer[: end.end()])
        del conn.buffer[: end.end()]
        self._conns.take(conn)
        self._workers.submit(conn, request)

    def on_writable(self, conn: Connection) -> None:
        """Send more of a response the client was slow to take; then wait for its next request."""
        try:
            done = conn.send_pending()
        except OSError as exc:
            log.debug("connection from %s ended while taking a response: %s", conn.address, exc)
            self._conns.drop(conn)
            return
        if not done:
            self._conns.want(conn, conn.blocked_on)
            return
        if not conn.keep or self._stop.is_set():
            self._conns.drop(conn)
            return
        self._conns.want(conn, selectors.EVENT_READ)
        self._start_waiting(conn)

    def take_returned(self) -> None:
        """Take back the connections workers have finished with: to write the rest, or to wait."""
        while True:
            try:
                conn = self._workers.returned.get_nowait()
            except queue.Empty:
                return
            self._workers.release()
            if self._stop.is_set():
                conn.close()
                continue
            try:
                if conn.out:
                    # The client has not taken the whole response: the selector sends the rest.
                    self._conns.writing(conn, time.monotonic())
                else:
                    self._conns.returned(conn)
                    self._start_waiting(conn)
            except (OSError, ValueError):
                self._conns.drop(conn)

    def _start_waiting(self, conn: Connection) -> None:
        if self._conns.idle(conn, time.monotonic()):
            # Pipelined bytes, or TLS records already decrypted: the selector would not wake for them.
            self.on_readable(conn)


class ConnectionServer:
    """Accepts on a listening socket and serves complete requests on a fixed pool of worker threads."""

    def __init__(self, listener: socket.socket, serve: Serve, accept: Accept, limits: Limits) -> None:
        self.listener = listener
        self.limits = limits
        self._accept = accept
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._conns = Registry(limits, self._selector)
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._workers = Workers(serve, limits.workers, self._stop, self._wake)
        self._traffic = _Traffic(self._conns, self._workers, limits, self._stop)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Run the selector loop and the workers until shutdown()."""
        self._stopped.clear()
        self._stop.clear()
        self.listener.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ, "listen")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._workers.start()
        last_sweep = time.monotonic()
        try:
            while not self._stop.is_set():
                for key, _events in self._selector.select(poll_interval):
                    if key.data == "listen":
                        self._accept_some()
                    elif key.data == "wake":
                        self._drain_wake()
                        self._traffic.take_returned()
                    elif key.data.state == WRITING:
                        self._traffic.on_writable(key.data)
                    else:
                        self._traffic.on_readable(key.data)
                now = time.monotonic()
                if now - last_sweep >= _SWEEP_EVERY:
                    self._conns.sweep(now)
                    last_sweep = now
        finally:
            self._workers.stop()
            self._conns.drop_all()
            self._selector.unregister(self.listener)
            self._selector.unregister(self._wake_r)
            self._workers.join(1)
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serve_forever and wait until it has returned."""
        self._stop.set()
        self._wake()
        self._stopped.wait()

    def server_close(self) -> None:
        """Close the listening socket and the selector."""
        self.listener.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def connection_count(self) -> int:
        """Open connections: in the selector plus being served."""
        return len(self._conns) + self._workers.busy

    def _wake(self) -> None:
        # A full wake-up pipe (OSError) means the selector wakes anyway.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._wake_r.recv(4096):
                pass

    def _accept_some(self) -> None:
        for _ in range(_ACCEPTS_PER_ROUND):
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: keep serving those already connected
                log.warning("cannot accept a connection: %s", exc.strerror or exc)
                return
            if self.connection_count() >= self.limits.max_connections and not self._conns.evict():
                sock.close()  # every connection is in a worker: refuse rather than queue
                continue
            try:
                # Headers, cached body and live part go out as separate writes: without this the last
                # small one waits for the client's delayed ACK (40 ms).
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock, context = self._accept(sock)
                sock.setblocking(False)
            except (OSError, ValueError) as exc:
                log.debug("dropping a connection from %s: %s", address, exc)
                sock.close()
                continue
            self._conns.accepted(Connection(sock, address, context), time.monotonic())
