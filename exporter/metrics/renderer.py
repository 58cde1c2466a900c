"""Render the store as Prometheus text exposition, once per change, with its gzip form cached too.

Balance, value and ticker series only change when a poll lands, so their text is rendered on the
thread that publishes the snapshot (Renderer.attach), from per-account fragments rendered once per
snapshot. Each fragment is also kept as its own gzip member: a gzip stream may hold several members
back to back, so a compressed scrape is a join, not a compression of megabytes. A scrape serves the
latest rendered body as it is; only the small health and counter part is rendered per store change,
and the process metrics at most once a second.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from prometheus_client import CollectorRegistry

from exporter.activity.store import ActivityView
from exporter.api.parsing import Balance
from exporter.metrics.activity_render import render_activity
from exporter.metrics.exposition import CONTENT_TYPE, EMPTY, Chunk, escape_label
from exporter.metrics.families import VALUE_FAMILIES
from exporter.metrics.process import LiveMetrics, live_registry
from exporter.metrics.series import (
    TICKER_FAILURE,
    PriceIndex,
    Settings,
    assemble,
    asset_names,
    balance_chunks,
    health_text,
    price_index,
    ticker_chunks,
    value_chunks,
)
from exporter.poll.snapshot import AccountSnapshot, PriceSnapshot, Store, View

# Importers of the metrics layer find these here as before.
__all__ = [
    "CONTENT_TYPE",
    "TICKER_FAILURE",
    "Renderer",
    "Settings",
    "escape_label",
]


@dataclass(frozen=True)
class _AccountChunks:
    balances: tuple[Balance, ...]
    prices: PriceSnapshot | None
    families: dict[str, Chunk]


@dataclass(frozen=True, eq=False)
class _Body:
    """The snapshot-derived part of a scrape for one set of fresh snapshots, plain and gzip."""

    accounts: tuple[AccountSnapshot, ...]
    families: tuple[dict[str, Chunk], ...]  # per account, in the order of accounts
    prices: PriceSnapshot | None
    index: PriceIndex | None
    plain: bytes
    gz: bytes
    # Monotonic time after which one of its snapshots is stale and the body must not be served.
    fresh_until: float
    # For a body cut down because snapshots went stale: the body it was cut from.
    source: _Body | None = None


_EMPTY_BODY = _Body((), (), None, None, b"", b"", math.inf)


def _fresh_until(
    accounts: Sequence[AccountSnapshot], prices: PriceSnapshot | None, max_staleness: float
) -> float:
    taken = [s.taken_mono for s in accounts]
    if prices is not None:
        taken.append(prices.taken_mono)
    return min(taken, default=math.inf) + max_staleness


class _Fragments:
    """The per-account and ticker chunks of the last render, reused while their inputs are the same ones.

    Used only under the renderer's render lock.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._accounts: dict[str, _AccountChunks] = {}
        self._index: tuple[PriceSnapshot, PriceIndex] | None = None
        self._tickers: tuple[PriceSnapshot, frozenset[str] | None, dict[str, Chunk]] | None = None

    def price_index(self, prices: PriceSnapshot) -> PriceIndex:
        """The snapshot indexed for valuation, built once per snapshot."""
        if self._index is None or self._index[0] is not prices:
            self._index = (prices, price_index(prices))
        return self._index[1]

    def account(
        self, snapshot: AccountSnapshot, prices: PriceSnapshot | None, index: PriceIndex | None
    ) -> dict[str, Chunk]:
        """One account's balance and value families, re-rendered only when its balances or prices change."""
        # Keyed on the balances tuple, not the snapshot: the poller hands back the same tuple when
        # nothing changed, so an unchanged account costs no rendering however often it is polled.
        cached = self._accounts.get(snapshot.account)
        same_balances = cached is not None and cached.balances is snapshot.balances
        if cached and same_balances and cached.prices is prices:
            return cached.families
        families = (
            dict(cached.families)
            if cached and same_balances
            else balance_chunks(snapshot.account, snapshot.balances)
        )
        if prices is not None and index is not None:
            families.update(value_chunks(snapshot.account, snapshot.balances, index, self.settings))
        else:
            families.update({name: EMPTY for name, _ in VALUE_FAMILIES})
        for chunk in families.values():
            chunk.gz  # noqa: B018  # compressed here, on the publishing thread, not by a scrape
        self._accounts[snapshot.account] = _AccountChunks(snapshot.balances, prices, families)
        return families

    def tickers(self, prices: PriceSnapshot, index: PriceIndex, assets: frozenset[str]) -> dict[str, Chunk]:
        """The ticker families for the assets held, rendered again only when the prices or assets changed."""
        wanted = None if self.settings.export_all_pairs else assets
        cached = self._tickers
        # Identity for the snapshot: comparing hundreds of tickers by value would cost a render's worth.
        if cached is None or cached[0] is not prices or cached[1] != wanted:
            cached = (prices, wanted, ticker_chunks(self.settings, prices, index, assets))
            self._tickers = cached
        return cached[2]

    def keep_only(self, fresh: Sequence[AccountSnapshot]) -> None:
        """Forget accounts that are no longer rendered so their text can be freed."""
        for name in set(self._accounts) - {s.account for s in fresh}:
            del self._accounts[name]


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
        self._monotonic = monotonic
        self.live_metrics = LiveMetrics(live if live is not None else live_registry(), monotonic=monotonic)
        self._attached = False
        # One render at a time (several poller threads publish); once attached, scrapes never take it.
        self._render_lock = threading.Lock()
        # One cut-down body at a time when snapshots go stale between publishes.
        self._trim_lock = threading.Lock()
        # One health render per store change, however many scrapes arrive right after it.
        self._health_lock = threading.Lock()
        self._fragments = _Fragments(settings)
        self._body = _EMPTY_BODY
        self._trimmed: _Body | None = None
        self._health: tuple[View, Chunk] | None = None

    def attach(self, store: Store) -> None:
        """Render on every publish into `store`, on the publishing thread, starting now."""
        store.on_publish(self.refresh)
        self._attached = True
        self.refresh()

    def _fresh(self, taken_mono: float, now: float) -> bool:
        return now - taken_mono <= self.settings.max_staleness

    # --- rendering, on the publishing thread ------------------------------------------------------

    def _render(self, fresh: tuple[AccountSnapshot, ...], prices: PriceSnapshot | None) -> _Body:
        fragments = self._fragments
        index = fragments.price_index(prices) if prices is not None else None
        families = tuple(fragments.account(s, prices, index) for s in fresh)
        names = asset_names(fresh)
        tickers = None
        if prices is not None and index is not None:
            tickers = fragments.tickers(prices, index, frozenset(names))
        plain, gz = assemble(families, names, tickers)
        fragments.keep_only(fresh)
        fresh_until = _fresh_until(fresh, prices, self.settings.max_staleness)
        return _Body(fresh, families, prices, index, plain, gz, fresh_until)

    def refresh(self) -> None:
        """Render the body for the store's current fresh snapshots, unless that is the body already."""
        with self._render_lock:
            view = self._view()
            now = self._monotonic()
            snapshots = (view.snapshots.get(a) for a in view.accounts)
            fresh = tuple(s for s in snapshots if s is not None and self._fresh(s.taken_mono, now))
            prices = view.prices
            if prices is not None and not self._fresh(prices.taken_mono, now):
                prices = None
            body = self._body
            if body.prices is prices and len(body.accounts) == len(fresh):
                pairs = list(zip(body.accounts, fresh, strict=True))
                if all(old is new for old, new in pairs):
                    return
                if all(old.account == new.account and old.balances is new.balances for old, new in pairs):
                    # Re-polled, nothing changed: the same text, with the new snapshots' ages.
                    until = _fresh_until(fresh, prices, self.settings.max_staleness)
                    self._body = replace(body, accounts=fresh, fresh_until=until, source=None)
                    return
            self._body = self._render(fresh, prices)

    # --- serving, on the scrape's thread ----------------------------------------------------------

    def _trim(self, body: _Body, now: float) -> _Body:
        """`body` without the snapshots that went stale since it was rendered: a join of cached chunks."""
        with self._trim_lock:
            trimmed = self._trimmed
            if trimmed is not None and trimmed.source is body and now <= trimmed.fresh_until:
                return trimmed
            kept = [
                (s, f)
                for s, f in zip(body.accounts, body.families, strict=True)
                if self._fresh(s.taken_mono, now)
            ]
            accounts = tuple(s for s, _ in kept)
            families = tuple(f for _, f in kept)
            prices, index = body.prices, body.index
            if prices is None or index is None or not self._fresh(prices.taken_mono, now):
                prices = index = None
            names = asset_names(accounts)
            tickers = None
            if prices is not None and index is not None:
                tickers = ticker_chunks(self.settings, prices, index, frozenset(names))
            plain, gz = assemble(families, names, tickers)
            until = _fresh_until(accounts, prices, self.settings.max_staleness)
            trimmed = _Body(accounts, families, prices, index, plain, gz, until, source=body)
            self._trimmed = trimmed
            return trimmed

    def _current(self) -> _Body:
        if not self._attached:
            self.refresh()
        body = self._body
        now = self._monotonic()
        if now <= body.fresh_until:
            return body
        return self._trim(body, now)

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
