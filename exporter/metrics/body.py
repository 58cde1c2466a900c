"""The balance, value and ticker part of a scrape: rendered once per publish, cut down when snapshots age.

Balance, value and ticker series only change when a poll lands, so their text is rendered on the
thread that publishes the snapshot, from per-account fragments rendered once per snapshot. Each
fragment is also kept as its own gzip member: a gzip stream may hold several members back to back, so
a compressed scrape is a join, not a compression of megabytes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from exporter.api.parsing import Balance
from exporter.metrics.exposition import EMPTY, Chunk
from exporter.metrics.families import VALUE_FAMILIES
from exporter.metrics.series import (
    PriceIndex,
    Settings,
    assemble,
    asset_names,
    balance_chunks,
    price_index,
    ticker_chunks,
    value_chunks,
)
from exporter.poll.snapshot import AccountSnapshot, PriceSnapshot, View


@dataclass(frozen=True)
class _AccountChunks:
    balances: tuple[Balance, ...]
    prices: PriceSnapshot | None
    families: dict[str, Chunk]


@dataclass(frozen=True, eq=False)
class Body:
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
    source: Body | None = None


EMPTY_BODY = Body((), (), None, None, b"", b"", math.inf)


def _fresh_until(
    accounts: Sequence[AccountSnapshot], prices: PriceSnapshot | None, max_staleness: float
) -> float:
    taken = [s.taken_mono for s in accounts]
    if prices is not None:
        taken.append(prices.taken_mono)
    return min(taken, default=math.inf) + max_staleness


class _Fragments:
    """The per-account and ticker chunks of the last render, reused while their inputs are the same ones.

    Used only under the body renderer's render lock.
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


class BodyRenderer:
    """Keeps the body for the store's fresh snapshots: refresh() renders it, current() serves it.

    refresh() runs on the publishing thread (one render at a time); current() runs on a scrape's
    thread and takes the body last rendered, cut down if one of its snapshots has gone stale since.
    """

    def __init__(self, settings: Settings, view: Callable[[], View], monotonic: Callable[[], float]) -> None:
        self.settings = settings
        self._view = view
        self._monotonic = monotonic
        # One render at a time (several poller threads publish); scrapes never take it.
        self._render_lock = threading.Lock()
        # One cut-down body at a time when snapshots go stale between publishes.
        self._trim_lock = threading.Lock()
        self._fragments = _Fragments(settings)
        self._body = EMPTY_BODY
        self._trimmed: Body | None = None

    def _fresh(self, taken_mono: float, now: float) -> bool:
        return now - taken_mono <= self.settings.max_staleness

    # --- rendering, on the publishing thread ------------------------------------------------------

    def _render(self, fresh: tuple[AccountSnapshot, ...], prices: PriceSnapshot | None) -> Body:
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
        return Body(fresh, families, prices, index, plain, gz, fresh_until)

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

    def _trim(self, body: Body, now: float) -> Body:
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
            trimmed = Body(accounts, families, prices, index, plain, gz, until, source=body)
            self._trimmed = trimmed
            return trimmed

    def current(self) -> Body:
        """The latest rendered body, cut down to the snapshots still fresh; never waits for a render."""
        body = self._body
        now = self._monotonic()
        if now <= body.fresh_until:
            return body
        return self._trim(body, now)
