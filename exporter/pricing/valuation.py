"""Value every balance in each valuation currency from one ticker snapshot, in exact Decimal arithmetic."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from exporter.api.parsing import Balance, Ticker
from exporter.pricing.routes import EXACT, Leg, Route, RouteTable, first_priced, route_table

PRICE_FIELDS = ("last", "bid", "mid", "ask")

_HALF = Decimal("0.5")
_ZERO = Decimal(0)

# A real sale of the asset along a leg: selling the pair's base fills at the bid; turning the quote
# into the base means buying the base, which fills at the ask. `ask` is the mirror image of `bid`.
_SIDE = {
    # field: (side on a direct leg, side on an inverse leg)
    "bid": ("bid", "ask"),
    "ask": ("ask", "bid"),
}


@dataclass(frozen=True, slots=True)
class AssetValue:
    """One asset's holdings expressed in one valuation currency."""

    asset: str
    currency: str
    balance: Decimal
    free: Decimal
    locked: Decimal


@dataclass(frozen=True, slots=True)
class Valuation:
    """Every priced asset's value, per-currency totals, and per-currency counts of unpriced assets."""

    values: tuple[AssetValue, ...]
    # Absent for a currency in which none of the non-zero holdings could be priced.
    totals: tuple[tuple[str, Decimal], ...]
    unpriced: tuple[tuple[str, int], ...]


def _check_field(field: str) -> None:
    if field not in PRICE_FIELDS:
        raise ValueError(f"price field must be one of {', '.join(PRICE_FIELDS)}, not {field!r}")


def _mid(ticker: Ticker) -> Decimal | None:
    # A one-sided book has no meaningful midpoint: half the ask is not a price anyone trades at.
    if ticker.bid == 0 or ticker.ask == 0:
        return None
    with localcontext(EXACT):
        # Multiplying by 0.5 rather than dividing by 2 keeps this in the never-rounding context.
        return (ticker.bid + ticker.ask) * _HALF


def _side_price(ticker: Ticker, field: str, inverse: bool) -> Decimal | None:
    """The pair's price (quote per base) that a conversion in this leg's direction would use."""
    if field == "mid":
        return _mid(ticker)
    side = _SIDE[field][inverse] if field in _SIDE else field
    chosen: Decimal = getattr(ticker, side)
    return chosen if chosen != 0 else None


def price(ticker: Ticker, field: str) -> Decimal | None:
    """Return the price of selling the pair's base for its quote by `field`, or None for an empty side (0)."""
    _check_field(field)
    return _side_price(ticker, field, inverse=False)


# --- a market: one ticker snapshot, indexed once -----------------------------------------------------


@dataclass(frozen=True, eq=False)
class Market:
    """One ticker snapshot indexed for valuation; build it once per snapshot and value every account.

    A pair listed twice (by name, or by base and quote) keeps its first row; `duplicates` names the
    rows left out.
    """

    tickers: tuple[Ticker, ...]
    by_pair: Mapping[str, Ticker]
    table: RouteTable
    duplicates: tuple[str, ...] = ()
    _rates: dict[tuple[str, str, str], tuple[Route | None, Decimal | None]] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def of(cls, tickers: Iterable[Ticker]) -> Market:
        """Index tickers, keeping the first row of any pair listed twice."""
        kept: dict[str, Ticker] = {}
        keys: set[tuple[str, str]] = set()
        duplicates: list[str] = []
        for ticker in tickers:
            if ticker.pair in kept or (ticker.base, ticker.quote) in keys:
                duplicates.append(ticker.pair)
                continue
            kept[ticker.pair] = ticker
            keys.add((ticker.base, ticker.quote))
        pairs = frozenset((t.pair, t.base, t.quote) for t in kept.values())
        return cls(tuple(kept.values()), kept, route_table(pairs), tuple(duplicates))

    def price_of(self, field: str) -> Callable[[Leg], Decimal | None]:
        """Each leg's price by `field` in its direction; None for an empty side or a pair not listed."""

        def price_of(leg: Leg) -> Decimal | None:
            ticker = self.by_pair.get(leg.pair)
            # A route from another snapshot may name a pair that has since been delisted.
            return None if ticker is None else _side_price(ticker, field, leg.inverse)

        return price_of

    def quote(self, asset: str, currency: str, field: str) -> tuple[Route | None, Decimal | None]:
        """The first candidate route with a price on every leg, and that rate; (first route, None) if none."""
        key = (asset, currency, field)
        cached = self._rates.get(key)
        if cached is not None:
            return cached
        found = first_priced(self.table.routes(asset, currency), self.price_of(field))
        self._rates[key] = found
        return found


_market_lock = threading.Lock()
_last_market: tuple[tuple[Ticker, ...], Market] | None = None


def market_for(tickers: tuple[Ticker, ...]) -> Market:
    """The Market of a ticker snapshot, built once however many accounts and renders ask for it."""
    global _last_market
    with _market_lock:
        # Identity, not equality: comparing hundreds of tickers would cost what indexing does.
        if _last_market is not None and _last_market[0] is tickers:
            return _last_market[1]
        market = Market.of(tickers)
        _last_market = (tickers, market)
        return market


def _as_market(tickers: Market | Mapping[tuple[str, str], Ticker]) -> Market:
    return tickers if isinstance(tickers, Market) else Market.of(tickers.values())


def value_balances(
    balances: Iterable[Balance],
    tickers: Market | Mapping[tuple[str, str], Ticker],
    currencies: Sequence[str],
    field: str,
) -> Valuation:
    """Value every balance in every currency; a non-zero balance with no priced route counts as unpriced."""
    _check_field(field)
    market = _as_market(tickers)
    # A repeated currency would produce duplicate series downstream; keep the first occurrence.
    wanted = tuple(dict.fromkeys(currencies))
    totals = dict.fromkeys(wanted, _ZERO)
    unpriced = dict.fromkeys(wanted, 0)
    priced = dict.fromkeys(wanted, 0)
    values: list[AssetValue] = []
    for holding in balances:
        for currency in wanted:
            unit = market.quote(holding.asset, currency, field)[1]
            if unit is None:
                # An empty wallet for a delisted coin is not a gap in the valuation.
                if holding.balance != 0:
                    unpriced[currency] += 1
                continue
            with localcontext(EXACT):
                value = AssetValue(
                    asset=holding.asset,
                    currency=currency,
                    balance=holding.balance * unit,
                    free=holding.free * unit,
                    locked=holding.locked * unit,
                )
                totals[currency] += value.balance
            priced[currency] += holding.balance != 0
            values.append(value)
    # A currency that priced none of the account's holdings has no total: a portfolio "worth 0" beside
    # unpriced assets would be a made-up number (say, a currency the exchange has no market for).
    shown = {c: t for c, t in totals.items() if priced[c] or not unpriced[c]}
    return Valuation(
        values=tuple(values),
        totals=tuple(shown.items()),
        unpriced=tuple(unpriced.items()),
    )


def pairs_for_valuation(
    assets: Iterable[str],
    currencies: Sequence[str],
    tickers: Market | Mapping[tuple[str, str], Ticker],
) -> frozenset[str]:
    """Names of the pairs on every candidate route from each asset into each currency.

    Every candidate, not only the one that priced the asset: which route prices it depends on the
    book (an empty bid falls through to a bridge), and a pair that could value a held asset keeps its
    ticker series while its book is empty, so a price panel does not go blank.
    """
    market = _as_market(tickers)
    used: set[str] = set()
    wanted = tuple(dict.fromkeys(currencies))
    for asset in assets:
        for currency in wanted:
            for route in market.table.routes(asset, currency):
                used.update(leg.pair for leg in route.legs)
    return frozenset(used)
