"""The process, platform and GC metrics of client_python, read at most once per short interval."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# Reading /proc/self/{stat,limits,fd} and formatting costs about 0.3 ms; a second-old CPU counter is
# as good as a fresh one for series scraped every 15 s or more.
LIVE_TTL = 1.0


def live_registry() -> CollectorRegistry:
    """A registry holding what client_python's default one collects about the process itself."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class LiveMetrics:
    """The registry's exposition, re-read only once `ttl` has passed; concurrent scrapes share it."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        ttl: float = LIVE_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._plain = b""
        self._gz: bytes | None = None

    def invalidate(self) -> None:
        """Make the next get() read the registry afresh (a value in it changed that must show now)."""
        with self._lock:
            self._read_at = None

    def get(self, gzipped: bool = False) -> bytes:
        """The text (or one gzip member of it), read afresh when the last read is `ttl` old."""
        # Held while reading: the scrapes that arrive meanwhile wait for this read, not one each.
        with self._lock:
            now = self._monotonic()
            if self._read_at is None or now - self._read_at >= self._ttl:
                self._plain = generate_latest(self.registry)
                self._gz = None
                self._read_at = now
            if not gzipped:
                return self._plain
            if self._gz is None:
                self._gz = gzip.compress(self._plain, compresslevel=1, mtime=0)
            return self._gz
