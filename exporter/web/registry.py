"""The HTTP server's client connections: buffered non-blocking writes, and the registry of those waiting.

The registry knows what each connection in the selector waits for and until when, and which one to
close first to make room.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_RECV = 65536
# TLS sends are offered in pieces of this size (see Connection.send_pending).
_TLS_SEND = 262144


@dataclass(frozen=True)
class Limits:
    """How much any one client, and all of them together, can hold of the server."""

    # Requests served at once: a scrape writes cached bytes, so a few threads go a long way.
    workers: int = 8
    # Open connections; over it the oldest one without a complete request is closed.
    max_connections: int = 256
    # From accept (or a keep-alive request's first byte) to a complete request: TLS handshake included.
    header_timeout: float = 10.0
    # How long a kept-alive connection may wait for its next request; Prometheus scrapes every 15-60 s.
    idle_timeout: float = 120.0
    # Time for a client to take what is left of a response once the worker has handed it over.
    write_timeout: float = 30.0
    max_header_bytes: int = 32768


class Connection:
    """One client connection: what has been read from it, and what is still to be written to it."""

    __slots__ = (
        "address",
        "blocked_on",
        "buffer",
        "context",
        "deadline",
        "handshaking",
        "keep",
        "out",
        "sock",
        "state",
        "tls",
        "wants",
    )

    def __init__(self, sock: socket.socket, address: object, context: object) -> None:
        self.sock = sock
        self.address = address
        # Whatever the server attached at accept (its TLS and auth settings then).
        self.context = context
        self.buffer = bytearray()
        self.tls = self.handshaking = isinstance(sock, ssl.SSLSocket)
        # Monotonic time by which it must have done what it waits for; the Registry sets it.
        self.deadline = 0.0
        # Response bytes the socket would not take yet; the selector thread sends them when it can.
        self.out: deque[memoryview] = deque()
        self.keep = False
        # What it waits for in the selector (FRESH, IDLE or WRITING), or None while a worker has it.
        self.state: str | None = None
        # The events the socket is registered for in the selector, and those a pending send waits on.
        self.wants = selectors.EVENT_READ
        self.blocked_on = selectors.EVENT_WRITE

    def receive(self, limit: int, starting: Callable[[Connection], None]) -> bool:
        """Finish a TLS handshake, then read into the buffer until it holds more than `limit` bytes.

        False when the peer has closed. A socket that would block raises, as non-blocking sockets do;
        `starting` is called just before the first bytes go into an empty buffer.
        """
        sock = self.sock
        if self.handshaking:
            assert isinstance(sock, ssl.SSLSocket)
            sock.do_handshake()
            self.handshaking = False
        while len(self.buffer) <= limit:
            data = sock.recv(_RECV)
            if not data:
                return False
            if not self.buffer:
                starting(self)
            self.buffer += data
        return True

    def write(self, data: bytes) -> int:
        """Send what the socket takes now, without blocking; keep the rest to send later."""
        if data:
            self.out.append(memoryview(data))
            self.send_pending()
        return len(data)

    def send_pending(self) -> bool:
        """Send queued bytes until done (True) or the socket would block (False; see `blocked_on`)."""
        while self.out:
            view = self.out[0]
            try:
                # The kernel takes what fits of a plain send; a TLS one that would block must be retried
                # with the same bytes, so it is offered in pieces of a fixed size.
                sent = self.sock.send(view[:_TLS_SEND] if self.tls else view)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                self.blocked_on = selectors.EVENT_WRITE
                return False
            except ssl.SSLWantReadError:
                self.blocked_on = selectors.EVENT_READ
                return False
            if sent < len(view):
                self.out[0] = view[sent:]
            else:
                self.out.popleft()
        return True

    def flush(self) -> None:
        """Nothing to do: write() sends at once, and what is left goes to the selector thread."""

    def close(self) -> None:
        """Close the socket, ignoring a peer that is already gone."""
        self.out.clear()
        with contextlib.suppress(OSError):
            self.sock.close()


# What a connection in the selector waits for; also the order in which they are closed to make room:
# those that never sent a whole request first, so a scraper's kept-alive connection survives a burst,
# and one still taking its response only when nothing else can be.
FRESH, IDLE, WRITING = "fresh", "idle", "writing"


class Registry:
    """The connections in the selector, by what they wait for, each kind oldest first, and their deadlines."""

    def __init__(self, limits: Limits, selector: selectors.BaseSelector) -> None:
        self.limits = limits
        self._selector = selector
        self._by_state: dict[str, OrderedDict[int, Connection]] = {
            state: OrderedDict() for state in (FRESH, IDLE, WRITING)
        }

    def __len__(self) -> int:
        return sum(len(waiting) for waiting in self._by_state.values())

    def _put(self, conn: Connection, state: str) -> None:
        self._remove(conn)
        conn.state = state
        self._by_state[state][id(conn)] = conn

    def _remove(self, conn: Connection) -> None:
        if conn.state is not None:
            self._by_state[conn.state].pop(id(conn), None)
            conn.state = None

    def _register(self, conn: Connection, events: int) -> None:
        conn.wants = events
        self._selector.register(conn.sock, events, conn)

    # --- into the selector, each with its deadline -------------------------------------------------

    def accepted(self, conn: Connection, now: float) -> None:
        """A new connection: it has the header deadline, handshake included."""
        conn.deadline = now + self.limits.header_timeout
        self._put(conn, FRESH)
        self._register(conn, selectors.EVENT_READ)

    def request_started(self, conn: Connection) -> None:
        """The first bytes of a request arrive: on a kept-alive connection, now the header deadline runs."""
        if conn.state == IDLE:
            conn.deadline = time.monotonic() + self.limits.header_timeout

    def writing(self, conn: Connection, now: float) -> None:
        """Back from a worker with part of its response unsent: the write deadline for the rest."""
        conn.deadline = now + self.limits.write_timeout
        self._register(conn, conn.blocked_on)
        self._put(conn, WRITING)

    def returned(self, conn: Connection) -> None:
        """Back from a worker with its response sent: into the selector, to wait for the next request."""
        self._register(conn, selectors.EVENT_READ)

    def idle(self, conn: Connection, now: float) -> bool:
        """Waiting for a request; True if bytes of one are already here (then the header deadline)."""
        self._put(conn, IDLE)
        has_bytes = bool(conn.buffer) or (isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending() > 0)
        conn.deadline = now + (self.limits.header_timeout if has_bytes else self.limits.idle_timeout)
        return has_bytes

    def want(self, conn: Connection, events: int) -> None:
        """Wait on `events` of the connection's socket from now on."""
        if conn.wants != events:
            conn.wants = events
            self._selector.modify(conn.sock, events, conn)

    # --- out of the selector ------------------------------------------------------------------------

    def take(self, conn: Connection) -> None:
        """Out of the selector, for a worker to serve."""
        self._remove(conn)
        self._selector.unregister(conn.sock)

    def drop(self, conn: Connection) -> None:
        """Out of the selector, and closed."""
        self._remove(conn)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.close()

    def evict(self) -> bool:
        """Close the first connection to go to make room; False if there is none."""
        for waiting in self._by_state.values():
            if waiting:
                self.drop(next(iter(waiting.values())))
                return True
        return False

    def sweep(self, now: float) -> None:
        """Close the connections whose deadline has passed."""
        expired = [
            conn for waiting in self._by_state.values() for conn in waiting.values() if conn.deadline <= now
        ]
        for conn in expired:
            log.debug("closing a connection from %s: deadline passed", conn.address)
            self.drop(conn)

    def drop_all(self) -> None:
        """Close every connection in the selector."""
        for conn in [conn for waiting in self._by_state.values() for conn in waiting.values()]:
            self.drop(conn)
