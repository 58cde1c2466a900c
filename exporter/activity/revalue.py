"""Recompute one account's cost basis from the ledger, fetching the past prices its records need.

A full replay reads the history a 30-day chunk at a time, so 100,000 trades are never all in memory;
each chunk's prices are fetched before it is fed to the account's ReplayState (ledger/replay.py),
which is kept: the next pass feeds it only the records added since, with their prices.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

from exporter.activity.state import Kept, SyncHealth
from exporter.api.errors import ApiError
from exporter.api.records import Trade, Transfer
from exporter.config.activity_settings import MAX_WINDOW_MS, ActivitySettings
from exporter.ledger.cursors import origin_key
from exporter.ledger.replay import ReplayState, tail
from exporter.ledger.store import Ledger
from exporter.pricing.candlecache import GAPS, HOUR
from exporter.pricing.history import PriceHistory, Want, hours_of

log = logging.getLogger(__name__)
_ZERO = Decimal(0)


def chunks(ledger: Ledger, name: str, now_ms: int) -> Iterator[tuple[int | None, int | None]]:
    """[since, until) ranges covering all time: open-ended first and last, 30 days between."""
    origin = ledger.state(origin_key(name))
    if origin is None:
        yield None, None
        return
    edge = int(origin)
    yield None, edge
    while edge < now_ms:
        yield edge, edge + MAX_WINDOW_MS
        edge += MAX_WINDOW_MS
    yield edge, None


def revalue(
    ledger: Ledger,
    prices: PriceHistory,
    health: SyncHealth,
    settings: ActivitySettings,
    now: float,
    now_ms: int,
) -> None:
    """Set `health.cost_basis`, `units` and `last_trade_ms`; a price failure is counted and tried again
    later (the sync's price history says so in the log, once for a host that stays unreachable), and
    leaves the figures as they were, marked stale (`health.stale`) until a replay has every price.

    New records after the last one replayed are fed onto the kept replay (ledger/replay.py); the
    history is replayed in full when there is none, or it was made for other settings, routes or
    file, or a record landed behind it, or a price it missed (or took from a still-open candle) is
    known now, or a price fetch failed during it.
    """
    kept = health.replay
    opened = tuple(ledger.openings(health.name))
    reopened = health.prices_open_until is not None and now >= health.prices_open_until
    new = None
    if (
        kept is not None
        and not kept.failed
        and not reopened
        and _made_for(kept, ledger, prices, settings, opened)
    ):
        new = tail(ledger, health.name, kept.state.cursor, openings=True)
        if new is not None and kept.state.priced_since(prices.price_at):
            new = None
    failed: list[ApiError] = []
    if kept is None or new is None:
        health.prices_open_until = None
        kept = Kept(
            ReplayState(settings.currencies, prices.price_at, settings.cost_basis, HOUR * 1000),
            settings.cost_basis,
            tuple(settings.currencies),
            prices.pairs,
            ledger.rebuilds,
            opened,
            set(),
            failed=False,
        )
        for trades, transfers in _chunked(ledger, health.name, now_ms):
            _fetch(prices, health, settings, kept, trades, transfers, now, failed)
            kept.state.feed([*trades, *transfers])
    elif new:
        trades = [r for r in new if isinstance(r, Trade)]
        transfers = [r for r in new if isinstance(r, Transfer)]
        _fetch(prices, health, settings, kept, trades, transfers, now, failed)
        kept.state.feed(new)
    if failed:
        kept = replace(kept, failed=True)
    health.replay = kept
    if failed:
        # A needed price could not be fetched: figures over it would be wrong, not early (unpriced
        # deposits left out, sales looking short). The last complete ones stay served, marked stale.
        # A record graph-api has no price for (no route, or a gap confirmed as quiet hours) is not
        # this: it is counted unpriced and the figures are published.
        _mark_stale(health, failed[0])
        health.failed(None, failed[0].endpoint, failed[0].reason)
        health.changed = True  # try the missing prices again on the next pass
        if not failed[0].transient and failed[0].reason != GAPS:  # those are the sync's one warning
            log.warning("price history for account %s: %s", health.name, failed[0])
        return
    figures = kept.state.figures()
    health.cost_basis = figures.cost_basis
    health.last_trade_ms = figures.last_trade_ms
    health.units = figures.units
    if health.stale:
        health.stale = False
        log.warning("account %s: cost basis and profit are current again", health.name)
    _log_new_shortfalls(health)


def _mark_stale(health: SyncHealth, error: ApiError) -> None:
    """One warning when the account's figures go stale (btcturk_ledger_figures_stale 1)."""
    if health.stale:
        return
    health.stale = True
    kept = "the last complete ones are served" if health.cost_basis else "none are served yet"
    log.warning(
        "account %s: cost basis and profit are stale, a price they need is missing (%s); %s, marked by "
        "btcturk_ledger_figures_stale",
        health.name,
        error,
        kept,
    )


def _made_for(
    kept: Kept, ledger: Ledger, prices: PriceHistory, settings: ActivitySettings, opened: tuple[Transfer, ...]
) -> bool:
    """Whether the kept replay was made by the same rules, routes, file and openings as a replay now
    would be (openings are replaced as a set, at the history's start: behind any cursor)."""
    return (
        kept.method == settings.cost_basis
        and kept.currencies == tuple(settings.currencies)
        and kept.pairs == prices.pairs
        and kept.rebuilds == ledger.rebuilds
        and kept.openings == opened
    )


def _chunked(ledger: Ledger, name: str, now_ms: int) -> Iterator[tuple[list[Trade], list[Transfer]]]:
    """The account's whole history, openings included, a chunk (chunks()) at a time."""
    for since, until in chunks(ledger, name, now_ms):
        yield ledger.trades(name, since, until), ledger.history_transfers(name, since, until)


def _fetch(
    prices: PriceHistory,
    health: SyncHealth,
    settings: ActivitySettings,
    kept: Kept,
    trades: list[Trade],
    transfers: list[Transfer],
    now: float,
    failed: list[ApiError],
) -> None:
    """Fetch the past prices these records need before they are replayed; after a failure, none."""
    if failed:
        return
    try:
        wants = prices.needs(trades, transfers, settings.currencies)
        _flow_needs(wants, trades, transfers, kept.assets, settings.currencies)
        opens = prices.prefetch(wants, now)
    except ApiError as exc:
        failed.append(exc)
    else:
        if opens is not None:
            health.prices_open_until = min(opens, health.prices_open_until or opens)


def _log_new_shortfalls(health: SyncHealth) -> None:
    """One warning per asset the first time its records give away more than they show held."""
    short: dict[str, tuple[Decimal, int]] = {}
    for basis in health.cost_basis.values():
        for asset, position in basis.positions.items():
            # The largest over the currencies: a record unpriced in one is left out of its replay.
            if position.shortfall_quantity > short.get(asset, (_ZERO, 0))[0]:
                short[asset] = (position.shortfall_quantity, position.shortfalls)
    for asset in sorted(short.keys() - health.shortfalls_logged):
        quantity, count = short[asset]
        health.shortfalls_logged.add(asset)
        log.warning(
            "account %s: %s %s given away beyond the ledger's holding by %d record(s), history before "
            "the first record is missing (btcturk_asset_shortfall)",
            health.name,
            format(quantity, "f"),
            asset,
            count,
        )


def _flow_needs(
    wants: dict[Want, set[int]],
    trades: list[Trade],
    transfers: list[Transfer],
    assets: set[str],
    currencies: tuple[str, ...],
) -> None:
    """Add the hours the unit value asks for: at each flow, every asset the history has touched so
    far (a superset of what is held then), in each currency; `assets` grows with the chunk."""
    for pair in {(t.base, t.quote) for t in trades}:  # a chunk's thousands of trades are a few pairs
        assets.update(pair)
    assets.update(t.currency for t in transfers if t.currency is not None)
    hours = hours_of(t.timestamp_ms for t in transfers if t.currency is not None)
    for asset in assets if hours else ():
        for currency in currencies:
            if asset.upper() != currency.upper():
                wants.setdefault((asset.upper(), currency.upper()), set()).update(hours)
