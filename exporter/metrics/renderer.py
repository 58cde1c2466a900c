"""Render the store as Prometheus text exposition, once per change, with its gzip form cached too.

A scrape joins parts each cached for as long as its inputs stand: the balance, value and ticker body
(metrics/body.py, rendered on the publishing thread once Renderer.attach is called), the health and
counter part per store change, the activity families per activity change, and the process metrics
at most once a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from exporter.activity.store import ActivityView
from exporter.metrics.activity_render import render_activity
from exporter.metrics.body import Body, BodyRenderer
from exporter.metrics.exposition import Chunk
from exporter.metrics.process import LiveMetrics, live_registry
from exporter.metrics.series import (
    Settings,
    health_text,
)
from exporter.poll.snapshot import Store, View


def _same(old: object, new: tuple[object, object, tuple[object, ...]]) -> bool:
    """Whether a cache key matches by identity: views and snapshots are immutable, and new when changed."""
    if not isinstance(old, tuple) or len(old) != 3 or len(old[2]) != len(new[2]):
        return False
    return old[0] is new[0] and old[1] is new[1] and all(a is b for a, b in zip(old[2], new[2], strict=True))


class Renderer:
    """Turns store views into exposition bytes.

    The big part (balances, values, tickers) is rendered by refresh(), which attach() has the store
    call on the thread that publishes a snapshot; a scrape takes the latest rendered body as it is and
    never waits for a render in progress. Without attach(), a scrape refreshes first (tests, tools).
    """

    def __init__(
        self,
        settings: Settings,
        view: Callable[[], View],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        live: CollectorRegistry | None = None,
        activity: Callable[[], ActivityView] | None = None,
    ) -> None:
        self.settings = settings
        self._view = view
        self._activity_view = activity
        self._activity: tuple[object, Chunk] | None = None
        self._activity_lock = threading.Lock()
        self.live_metrics = LiveMetrics(live if live is not None else live_registry(), monotonic=monotonic)
        self._attached = False
        self._bodies = BodyRenderer(settings, view, monotonic)
        # One health render per store change, however many scrapes arrive right after it.
        self._health_lock = threading.Lock()
        self._health: tuple[View, Chunk] | None = None

    def attach(self, store: Store) -> None:
        """Render on every publish into `store`, on the publishing thread, starting now."""
        store.on_publish(self.refresh)
        self._attached = True
        self.refresh()

    def refresh(self) -> None:
        """Render the body for the store's current fresh snapshots, unless that is the body already."""
        self._bodies.refresh()

    def _current(self) -> Body:
        if not self._attached:
            self.refresh()
        return self._bodies.current()

    def body(self, gzipped: bool = False) -> bytes:
        """The balance, value and ticker series as last rendered (plain, or as gzip members)."""
        body = self._current()
        return body.gz if gzipped else body.plain

    def health(self, gzipped: bool = False) -> bytes:
        """The health and counter series, rendered once per store generation."""
        view = self._view()
        cached = self._health
        if cached is None or cached[0] is not view:
            with self._health_lock:
                cached = self._health
                if cached is None or cached[0] is not view:
                    chunk = Chunk(health_text(view, self.settings).encode())
                    chunk.gz  # noqa: B018  # once, under the lock, not once per waiting scrape
                    cached = (view, chunk)
                    self._health = cached
        return cached[1].gz if gzipped else cached[1].raw

    def activity(self, gzipped: bool = False) -> bytes:
        """The activity families, rendered once per activity change or newly rendered balance body."""
        if self._activity_view is None:
            return b""
        view = self._activity_view()
        body = self._current()
        key = (view, body.prices, tuple(s.balances for s in body.accounts))
        with self._activity_lock:
            cached = self._activity
            if cached is None or not _same(cached[0], key):
                balances = {s.account: s for s in body.accounts}
                text = render_activity(
                    view, balances, body.index, self.settings.value_currencies, self.settings.value_price
                )
                cached = (key, Chunk(text.encode()))
                self._activity = cached
        return cached[1].gz if gzipped else cached[1].raw

    def live(self, gzipped: bool = False) -> bytes:
        """Process and runtime metrics, read at most once per LIVE_TTL."""
        return self.live_metrics.get(gzipped)

    def exposition(self, gzipped: bool = False) -> bytes:
        """The store's series, body and health joined (plain, or as gzip members)."""
        return self.body(gzipped) + self.health(gzipped) + self.activity(gzipped)

    def scrape_parts(self, gzipped: bool = False) -> tuple[bytes, bytes, bytes]:
        """A whole /metrics answer as body, health and live part, to be written one after the other.

        Writing them separately spares every scrape copying megabytes into a fresh buffer, which
        also kept that much freed memory resident in the malloc arena of every connection's thread.
        """
        return self.body(gzipped), self.health(gzipped) + self.activity(gzipped), self.live(gzipped)

    def scrape(self, gzipped: bool = False) -> bytes:
        """A whole /metrics answer."""
        return b"".join(self.scrape_parts(gzipped))
