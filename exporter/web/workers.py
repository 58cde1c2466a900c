"""The fixed pool of worker threads that serve complete requests for the HTTP server's selector thread."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from exporter.web.registry import Connection

log = logging.getLogger(__name__)

# Serves one complete request (its header bytes) on a connection; returns whether to keep it open.
Serve = Callable[[Connection, bytes], bool]


class Workers:
    """The fixed pool serving complete requests; a connection to keep comes back through `returned`."""

    def __init__(self, serve: Serve, count: int, stop: threading.Event, wake: Callable[[], None]) -> None:
        self._serve = serve
        self._count = count
        self._stop = stop
        self._wake = wake
        self._work: queue.SimpleQueue[tuple[Connection, bytes] | None] = queue.SimpleQueue()
        self.returned: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self.busy = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the worker threads."""
        self._threads = [
            threading.Thread(target=self._worker, name=f"http-worker-{n}", daemon=True)
            for n in range(self._count)
        ]
        for worker in self._threads:
            worker.start()

    def stop(self) -> None:
        """Tell every worker to end after the request it serves."""
        for _ in self._threads:
            self._work.put(None)

    def join(self, timeout: float) -> None:
        """Wait for each worker to end, up to `timeout` seconds apiece."""
        for worker in self._threads:
            worker.join(timeout)

    def submit(self, conn: Connection, request: bytes) -> None:
        """Hand a complete request to the next free worker."""
        with self._lock:
            self.busy += 1
        self._work.put((conn, request))

    def release(self) -> None:
        """A connection a worker had is back in the selector, or closed."""
        with self._lock:
            self.busy -= 1

    def _worker(self) -> None:
        # Workers never wait on a client: writes take what the socket accepts and leave the rest queued.
        while (item := self._work.get()) is not None:
            conn, request = item
            try:
                conn.keep = self._serve(conn, request)
            except Exception as exc:  # a client gone mid-response, or a bug: that connection only
                log.debug("connection from %s ended with an error: %s", conn.address, exc, exc_info=True)
                conn.close()
                self.release()
                continue
            if not self._stop.is_set() and (conn.keep or conn.out):
                self.returned.put(conn)
                self._wake()
            else:
                conn.close()
                self.release()
