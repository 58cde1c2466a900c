"""Value every balance in each valuation currency from one ticker snapshot, in exact Decimal arithmetic."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal, localcontext

from exporter.parsing import Balance, Ticker

PRICE_FIELDS = ("last", "bid", "mid")
# Tried in this order: USDT and TRY have the deepest books on BTCTurk, BTC is the fallback.
BRIDGES = ("USDT", "TRY", "BTC")

# Decimal128's precision; only 1/price ever rounds, everything else runs in _EXACT.
DIVISION_PRECISION = 34

# With MAX_PREC, products and sums of finite Decimals are never rounded, so values stay exact
# whatever the number of digits in balances and prices. Division must never run in this context:
# a non-terminating quotient would try to fill MAX_PREC digits.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_EVEN)
_DIVISION = Context(prec=DIVISION_PRECISION, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_EVEN)
_HALF = Decimal("0.5")
_ONE = Decimal(1)
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Leg:
    """One conversion step through a pair; inverse means the pair is quoted the other way, so divide."""

    pair: str
    inverse: bool


@dataclass(frozen=True, slots=True)
class Route:
    """The legs that turn one unit of an asset into a currency; no legs means the asset is the currency."""

    legs: tuple[Leg, ...]


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
    totals: tuple[tuple[str, Decimal], ...]
    unpriced: tuple[tuple[str, int], ...]


def _check_field(field: str) -> None:
    if field not in PRICE_FIELDS:
        raise ValueError(f"price field must be one of {', '.join(PRICE_FIELDS)}, not {field!r}")


def price(ticker: Ticker, field: str) -> Decimal | None:
    """Return the ticker's last, bid or mid price, or None when that side of the market is empty (0)."""
    _check_field(field)
    if field == "mid":
        # A one-sided book has no meaningful midpoint: half the ask is not a price anyone trades at.
        if ticker.bid == 0 or ticker.ask == 0:
            return None
        with localcontext(_EXACT):
            # Multiplying by 0.5 rather than dividing by 2 keeps this in the never-rounding context.
            return (ticker.bid + ticker.ask) * _HALF
    chosen: Decimal = getattr(ticker, field)
    return chosen if chosen != 0 else None


def _leg(base: str, quote: str, tickers: Mapping[tuple[str, str], Ticker]) -> Leg | None:
    """Find the step from base to quote: the pair itself, else the pair quoted the other way round."""
    direct = tickers.get((base, quote))
    if direct is not None:
        return Leg(direct.pair, inverse=False)
    inverse = tickers.get((quote, base))
    if inverse is not None:
        return Leg(inverse.pair, inverse=True)
    return None


def find_route(asset: str, currency: str, tickers: Mapping[tuple[str, str], Ticker]) -> Route | None:
    """Pick the route from asset to currency: same symbol, direct, inverse, then bridges in BRIDGES order."""
    if asset == currency:
        return Route(())
    single = _leg(asset, currency, tickers)
    if single is not None:
        return Route((single,))
    for bridge in BRIDGES:
        if bridge in (asset, currency):
            continue
        first = _leg(asset, bridge, tickers)
        if first is None:
            continue
        second = _leg(bridge, currency, tickers)
        if second is not None:
            return Route((first, second))
    return None


def _by_pair(tickers: Mapping[tuple[str, str], Ticker]) -> dict[str, Ticker]:
    return {ticker.pair: ticker for ticker in tickers.values()}


def _rate(route: Route, by_pair: Mapping[str, Ticker], field: str) -> Decimal | None:
    result = _ONE
    for leg in route.legs:
        ticker = by_pair.get(leg.pair)
        # A route from another snapshot may name a pair that has since been delisted.
        leg_price = price(ticker, field) if ticker is not None else None
        if leg_price is None:
            return None
        if leg.inverse:
            with localcontext(_DIVISION):
                leg_price = _ONE / leg_price
        with localcontext(_EXACT):
            result = result * leg_price
    return result


def rate(route: Route, tickers: Mapping[tuple[str, str], Ticker], field: str) -> Decimal | None:
    """Return the price of one unit along the route, or None if any leg has no price."""
    _check_field(field)
    return _rate(route, _by_pair(tickers), field)


def index_tickers(tickers: Iterable[Ticker]) -> dict[tuple[str, str], Ticker]:
    """Key tickers by (base, quote); a later duplicate replaces an earlier one."""
    return {(ticker.base, ticker.quote): ticker for ticker in tickers}


def value_balances(
    balances: Iterable[Balance],
    tickers: Mapping[tuple[str, str], Ticker],
    currencies: Sequence[str],
    field: str,
) -> Valuation:
    """Value every balance in every currency; a non-zero balance with no price counts as unpriced."""
    _check_field(field)
    # A repeated currency would produce duplicate series downstream; keep the first occurrence.
    wanted = tuple(dict.fromkeys(currencies))
    by_pair = _by_pair(tickers)
    totals = dict.fromkeys(wanted, _ZERO)
    unpriced = dict.fromkeys(wanted, 0)
    values: list[AssetValue] = []
    for holding in balances:
        for currency in wanted:
            route = find_route(holding.asset, currency, tickers)
            unit = _rate(route, by_pair, field) if route is not None else None
            if unit is None:
                # An empty wallet for a delisted coin is not a gap in the valuation.
                if holding.balance != 0:
                    unpriced[currency] += 1
                continue
            with localcontext(_EXACT):
                value = AssetValue(
                    asset=holding.asset,
                    currency=currency,
                    balance=holding.balance * unit,
                    free=holding.free * unit,
                    locked=holding.locked * unit,
                )
                totals[currency] += value.balance
            values.append(value)
    return Valuation(
        values=tuple(values),
        totals=tuple(totals.items()),
        unpriced=tuple(unpriced.items()),
    )


def pairs_for_valuation(
    assets: Iterable[str], currencies: Sequence[str], tickers: Mapping[tuple[str, str], Ticker]
) -> frozenset[str]:
    """Return the names of the pairs used by the route of every asset into every currency."""
    used: set[str] = set()
    wanted = tuple(dict.fromkeys(currencies))
    for asset in assets:
        for currency in wanted:
            route = find_route(asset, currency, tickers)
            if route is not None:
                used.update(leg.pair for leg in route.legs)
    return frozenset(used)
