"""Price routes: which pairs turn an asset into a currency, in which order, and when a route falls through.

One table, one bridge order and one fall-through rule for every price the exporter shows or keeps: the
live gauges (ticker books, `valuation`), the past prices of records (candles, `history`), the backfill's
steps (`steps`) and through them the cost basis, the backfill and `ledger export`. So one asset at one
moment is valued by one route whatever path asks.

The candidates between an asset and a currency, in order: the same symbol (1); the pair itself; the pair
quoted the other way (inverted); then two legs through each bridge in BRIDGES order, each leg direct
before inverse. The first candidate with a usable price on every leg wins; a leg without one (no ticker
or candle, an empty book, a price of zero) makes its route fall through to the next candidate.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal, localcontext

# The order only matters for a currency that is neither TRY nor USDT (EUR, BTC): valuing in TRY skips
# the TRY bridge, valuing in USDT the USDT one. USDT first because its books are BTCTurk's deepest after
# TRY's and a stablecoin leg moves least between two prices; BTC last, for assets listed against it only.
# It is the order the live gauges have always used, so live values do not move; past prices (which
# tried TRY, USDT and never BTC) now price what live prices.
BRIDGES = ("USDT", "TRY", "BTC")

# Decimal128's precision; only 1/price ever rounds, everything else runs in EXACT.
DIVISION_PRECISION = 34

# With MAX_PREC, products of finite Decimals are never rounded, so rates stay exact whatever the number
# of digits in the prices. Division must never run in this context: a non-terminating quotient would
# try to fill MAX_PREC digits.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_EVEN)
DIVISION = Context(prec=DIVISION_PRECISION, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_EVEN)
_ONE = Decimal(1)

# (pair, base, quote) of a listed pair: routes depend on nothing else.
PairKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Leg:
    """One conversion step through a pair; inverse means the pair is quoted the other way, so divide."""

    pair: str
    base: str
    quote: str
    inverse: bool


@dataclass(frozen=True, slots=True)
class Route:
    """The legs that turn one unit of an asset into a currency; no legs means the asset is the currency."""

    legs: tuple[Leg, ...]


PriceOf = Callable[[Leg], "Decimal | None"]
"""The pair's price (quote per base) for a conversion in the leg's direction, or None when it has none."""


class RouteTable:
    """Every candidate route between two symbols over one set of pairs, computed once and kept."""

    def __init__(self, pairs: frozenset[PairKey]) -> None:
        # Sorted, so a (base, quote) listed under two names resolves the same way every time.
        self._by_key = {(key[1], key[2]): key for key in sorted(pairs)}
        self._routes: dict[tuple[str, str], tuple[Route, ...]] = {}

    def _legs(self, base: str, quote: str) -> list[Leg]:
        """The steps from base to quote: the pair itself first, then the pair quoted the other way."""
        legs = []
        direct = self._by_key.get((base, quote))
        if direct is not None:
            legs.append(Leg(*direct, inverse=False))
        inverse = self._by_key.get((quote, base))
        if inverse is not None:
            legs.append(Leg(*inverse, inverse=True))
        return legs

    def routes(self, asset: str, currency: str) -> tuple[Route, ...]:
        """Candidates in order: same symbol, direct, inverse, then bridges in BRIDGES order."""
        key = (asset, currency)
        found = self._routes.get(key)
        if found is None:
            found = self._compute(asset, currency)
            # Racing threads compute the same tuple; either may win.
            self._routes[key] = found
        return found

    def _compute(self, asset: str, currency: str) -> tuple[Route, ...]:
        if asset == currency:
            return (Route(()),)
        candidates = [Route((leg,)) for leg in self._legs(asset, currency)]
        for bridge in BRIDGES:
            if bridge in (asset, currency):
                continue
            for first in self._legs(asset, bridge):
                candidates.extend(Route((first, second)) for second in self._legs(bridge, currency))
        return tuple(candidates)


@functools.lru_cache(maxsize=8)
def route_table(pairs: frozenset[PairKey]) -> RouteTable:
    """The route table for a set of pairs, shared while the listing stays the same."""
    return RouteTable(pairs)


def table_of(pairs: Iterable[tuple[str, str]]) -> RouteTable:
    """The route table of (base, quote) pairs named base + quote, as graph-api and the ledger name them."""
    return route_table(frozenset((base + quote, base, quote) for base, quote in pairs))


def leg_rate(price: Decimal | None, inverse: bool) -> Decimal | None:
    """Units of the leg's target per unit of its source; None when the price is not usable (absent, <= 0)."""
    if price is None or price <= 0:
        return None
    if not inverse:
        return price
    with localcontext(DIVISION):
        return _ONE / price


def route_rate(route: Route, price_of: PriceOf) -> Decimal | None:
    """One unit along the route: the product of its legs' rates, or None if any leg has no usable price."""
    result = _ONE
    for leg in route.legs:
        unit = leg_rate(price_of(leg), leg.inverse)
        if unit is None:
            return None
        with localcontext(EXACT):
            result = result * unit
    return result


def first_priced(candidates: tuple[Route, ...], price_of: PriceOf) -> tuple[Route | None, Decimal | None]:
    """The first candidate priced on every leg and its rate; (first candidate, None) when none is."""
    for route in candidates:
        # A route is only as good as its prices: a pair with no usable price must not hide a bridge.
        unit = route_rate(route, price_of)
        if unit is not None:
            return route, unit
    return (candidates[0] if candidates else None), None


def price_of_route(table: RouteTable, asset: str, currency: str, price_of: PriceOf) -> Decimal | None:
    """One unit of `asset` in `currency` by the first priced candidate route; None when none is priced."""
    return first_priced(table.routes(asset, currency), price_of)[1]
