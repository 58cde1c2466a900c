"""Bounded connection handling for the HTTP server: one thread waits on every socket, a fixed pool serves.

A thread per connection let idle, slow (slowloris) or bursting clients pin hundreds of threads and
hundreds of megabytes, and made a normal scrape wait minutes. Here one selector thread accepts
connections, finishes TLS handshakes and reads request headers without blocking, each within a
deadline; only a request whose headers are complete is handed to a worker. Connections are capped:
over the cap, the oldest connection that has not yet sent a whole request is closed, so a flood
cannot lock out a scraper that sends its request at once.
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
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# The end of a request's header block (bare LF tolerated, as http.server does).
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 25\r\nConnection: close\r\n\r\nrequest headers too large"
)
_RECV = 65536
_TLS_SEND = 262144
_ACCEPTS_PER_ROUND = 64
_SWEEP_EVERY = 0.05


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

    def __init__(self, sock: socket.socket, address: object, context: object, deadline: float) -> None:
        self.sock = sock
        self.address = address
        # Whatever the server attached at accept (its TLS and auth settings then).
        self.context = context
        self.buffer = bytearray()
        self.tls = self.handshaking = isinstance(sock, ssl.SSLSocket)
        self.deadline = deadline
        # Response bytes the socket would not take yet; the selector thread sends them when it can.
        self.out: deque[memoryview] = deque()
        self.keep = False
        # What it waits for in the selector (FRESH, IDLE or WRITING), or None while a worker has it.
        self.state: str | None = None
        # The events the socket is registered for in the selector, and those a pending send waits on.
        self.wants = selectors.EVENT_READ
        self.blocked_on = selectors.EVENT_WRITE

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


class _Waiting:
    """The connections in the selector, by what they wait for, each kind oldest first."""

    def __init__(self) -> None:
        self._by_state: dict[str, OrderedDict[int, Connection]] = {
            state: OrderedDict() for state in (FRESH, IDLE, WRITING)
        }

    def put(self, conn: Connection, state: str) -> None:
        self.remove(conn)
        conn.state = state
        self._by_state[state][id(conn)] = conn

    def remove(self, conn: Connection) -> None:
        if conn.state is not None:
            self._by_state[conn.state].pop(id(conn), None)
            conn.state = None

    def __len__(self) -> int:
        return sum(len(waiting) for waiting in self._by_state.values())

    def oldest(self) -> Connection | None:
        """The first to close to make room."""
        for waiting in self._by_state.values():
            if waiting:
                return next(iter(waiting.values()))
        return None

    def expired(self, now: float) -> list[Connection]:
        return [
            conn for waiting in self._by_state.values() for conn in waiting.values() if conn.deadline <= now
        ]

    def all(self) -> list[Connection]:
        return [conn for waiting in self._by_state.values() for conn in waiting.values()]


# Serves one complete request (its header bytes) on a connection; returns whether to keep it open.
Serve = Callable[[Connection, bytes], bool]
# Called at each accept: a socket to serve (e.g. wrapped in TLS) and a context object for the connection.
Accept = Callable[[socket.socket], tuple[socket.socket, object]]


class ConnectionServer:
    """Accepts on a listening socket and serves complete requests on a fixed pool of worker threads."""

    def __init__(self, listener: socket.socket, serve: Serve, accept: Accept, limits: Limits) -> None:
        self.listener = listener
        self.limits = limits
        self._serve = serve
        self._accept = accept
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._waiting = _Waiting()
        self._busy = 0
        self._work: queue.SimpleQueue[tuple[Connection, bytes] | None] = queue.SimpleQueue()
        self._returned: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._lock = threading.Lock()

    # --- the selector thread ------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Run the selector loop and the workers until shutdown()."""
        self._stopped.clear()
        self._stop.clear()
        self.listener.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ, "listen")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        workers = [
            threading.Thread(target=self._worker, name=f"http-worker-{n}", daemon=True)
            for n in range(self.limits.workers)
        ]
        for worker in workers:
            worker.start()
        last_sweep = time.monotonic()
        try:
            while not self._stop.is_set():
                for key, _events in self._selector.select(poll_interval):
                    if key.data == "listen":
                        self._accept_some()
                    elif key.data == "wake":
                        self._take_returned()
                    elif key.data.state == WRITING:
                        self._on_writable(key.data)
                    else:
                        self._on_readable(key.data)
                now = time.monotonic()
                if now - last_sweep >= _SWEEP_EVERY:
                    self._sweep(now)
                    last_sweep = now
        finally:
            for _ in workers:
                self._work.put(None)
            for conn in self._waiting.all():
                self._drop(conn)
            self._selector.unregister(self.listener)
            self._selector.unregister(self._wake_r)
            for worker in workers:
                worker.join(1)
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
        return len(self._waiting) + self._busy

    def _wake(self) -> None:
        # A full wake-up pipe (OSError) means the selector wakes anyway.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _accept_some(self) -> None:
        for _ in range(_ACCEPTS_PER_ROUND):
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: keep serving those already connected
                log.warning("cannot accept a connection: %s", exc.strerror or exc)
                return
            if self.connection_count() >= self.limits.max_connections and not self._evict():
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
            conn = Connection(sock, address, context, time.monotonic() + self.limits.header_timeout)
            self._waiting.put(conn, FRESH)
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _evict(self) -> bool:
        conn = self._waiting.oldest()
        if conn is None:
            return False
        self._drop(conn)
        return True

    def _on_readable(self, conn: Connection) -> None:
        sock = conn.sock
        try:
            if conn.handshaking:
                assert isinstance(sock, ssl.SSLSocket)
                sock.do_handshake()
                conn.handshaking = False
            while len(conn.buffer) <= self.limits.max_header_bytes:
                data = sock.recv(_RECV)
                if not data:
                    self._drop(conn)
                    return
                if not conn.buffer and conn.state == IDLE:
                    # A kept-alive connection starts a request: it now has the header deadline.
                    conn.deadline = time.monotonic() + self.limits.header_timeout
                conn.buffer += data
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            self._want(conn, selectors.EVENT_READ)
        except ssl.SSLWantWriteError:
            self._want(conn, selectors.EVENT_WRITE)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a failed handshake
            log.debug("connection from %s ended: %s", conn.address, exc)
            self._drop(conn)
            return
        self._dispatch_if_complete(conn)

    def _want(self, conn: Connection, events: int) -> None:
        if conn.wants != events:
            conn.wants = events
            self._selector.modify(conn.sock, events, conn)

    def _dispatch_if_complete(self, conn: Connection) -> None:
        end = _HEADER_END.search(conn.buffer, 0, self.limits.max_header_bytes + 4)
        if end is None:
            if len(conn.buffer) > self.limits.max_header_bytes:
                with contextlib.suppress(OSError):
                    conn.sock.send(_TOO_LARGE)
                self._drop(conn)
            return
        request = bytes(conn.buffer[: end.end()])
        del conn.buffer[: end.end()]
        self._waiting.remove(conn)
        self._selector.unregister(conn.sock)
        with self._lock:
            self._busy += 1
        self._work.put((conn, request))

    def _on_writable(self, conn: Connection) -> None:
        try:
            done = conn.send_pending()
        except OSError as exc:
            log.debug("connection from %s ended while taking a response: %s", conn.address, exc)
            self._drop(conn)
            return
        if not done:
            self._want(conn, conn.blocked_on)
            return
        if not conn.keep or self._stop.is_set():
            self._drop(conn)
            return
        self._wait_for_next_request(conn)

    def _take_returned(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._wake_r.recv(4096):
                pass
        while True:
            try:
                conn = self._returned.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                self._busy -= 1
            if self._stop.is_set():
                conn.close()
                continue
            try:
                if conn.out:
                    # The client has not taken the whole response: the selector sends the rest.
                    conn.deadline = time.monotonic() + self.limits.write_timeout
                    conn.wants = conn.blocked_on
                    self._selector.register(conn.sock, conn.wants, conn)
                    self._waiting.put(conn, WRITING)
                else:
                    conn.wants = selectors.EVENT_READ
                    self._selector.register(conn.sock, conn.wants, conn)
                    self._waiting.put(conn, IDLE)
                    self._start_waiting(conn)
            except (OSError, ValueError):
                self._drop(conn)

    def _wait_for_next_request(self, conn: Connection) -> None:
        self._want(conn, selectors.EVENT_READ)
        self._waiting.put(conn, IDLE)
        self._start_waiting(conn)

    def _start_waiting(self, conn: Connection) -> None:
        has_bytes = bool(conn.buffer) or (isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending() > 0)
        now = time.monotonic()
        conn.deadline = now + (self.limits.header_timeout if has_bytes else self.limits.idle_timeout)
        if has_bytes:
            # Pipelined bytes, or TLS records already decrypted: the selector would not wake for them.
            self._on_readable(conn)

    def _sweep(self, now: float) -> None:
        for conn in self._waiting.expired(now):
            log.debug("closing a connection from %s: deadline passed", conn.address)
            self._drop(conn)

    def _drop(self, conn: Connection) -> None:
        self._waiting.remove(conn)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.close()

    # --- the workers ---------------------------------------------------------------------------

    def _worker(self) -> None:
        # Workers never wait on a client: writes take what the socket accepts and leave the rest queued.
        while (item := self._work.get()) is not None:
            conn, request = item
            try:
                conn.keep = self._serve(conn, request)
            except Exception as exc:  # a client gone mid-response, or a bug: that connection only
                log.debug("connection from %s ended with an error: %s", conn.address, exc, exc_info=True)
                conn.close()
                with self._lock:
                    self._busy -= 1
                continue
            if not self._stop.is_set() and (conn.keep or conn.out):
                self._returned.put(conn)
                self._wake()
            else:
                conn.close()
                with self._lock:
                    self._busy -= 1
