"""Past prices for valuing records: fetched from graph-api once, kept in the ledger's price cache.

A price at a time is the close of the hourly candle holding it (`/v1/klines/history`, resolution 60);
where the hourly history has no candle, the close of that day's candle (`/v1/ohlcs`). Between two assets
the route is the direct pair, the inverse pair, or two legs through TRY or USDT, as the exchange lists
them. No price is ever made up: without candles `price_at` answers None and costbasis counts the record
as unpriced.

What has been fetched is kept per pair and resolution as one range of final candles
(`prices:<resolution>:<pair>` in the ledger's state), so a past price is fetched once; the candle still
open (this hour, this day) is fetched again once it has closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from exporter.api.candles import Candle
from exporter.api.records import Trade, Transfer
from exporter.api.transactions import DAILY, HOURLY
from exporter.ledger.store import Ledger

HOUR = 3600
DAY = 86400
STEP = {HOURLY: HOUR, DAILY: DAY}
# Candles asked for in one request: far under the simulator's 5,000 and any sane server's limit.
CHUNK = 500
BRIDGES = ("TRY", "USDT")

Leg = tuple[str, str, bool]  # (base, quote, inverted)
Pair = tuple[str, str]
# fetch(base, quote, resolution, from_s, to_s) -> candles starting in [from_s, to_s]
Fetch = Callable[[str, str, str, int, int], Sequence[Candle]]


class PriceHistory:
    """Routes, needs and cached closes for `price_at(asset, currency, when_ms)`; one thread at a time."""

    def __init__(self, ledger: Ledger, fetch: Fetch) -> None:
        self._ledger = ledger
        self._fetch = fetch
        self._pairs: frozenset[Pair] = frozenset()
        self._routes: dict[Pair, tuple[Leg, ...] | None] = {}
        self._closes: dict[tuple[str, str, int], Decimal | None] = {}

    def set_pairs(self, pairs: Iterable[Pair]) -> bool:
        """Use the exchange's pair list for routes; True when it changed."""
        pairs = frozenset(pairs)
        if pairs == self._pairs:
            return False
        self._pairs, self._routes = pairs, {}
        return True

    def _leg(self, a: str, b: str) -> Leg | None:
        if (a, b) in self._pairs:
            return (a, b, False)
        if (b, a) in self._pairs:
            return (b, a, True)
        return None

    def route(self, asset: str, currency: str) -> tuple[Leg, ...] | None:
        """The legs that turn one `asset` into `currency`; () for the same asset, None without a route."""
        key = (asset, currency)
        if key in self._routes:
            return self._routes[key]
        found: tuple[Leg, ...] | None = None
        if asset == currency:
            found = ()
        elif (leg := self._leg(asset, currency)) is not None:
            found = (leg,)
        else:
            for bridge in BRIDGES:
                if bridge in key:
                    continue
                first, second = self._leg(asset, bridge), self._leg(bridge, currency)
                if first is not None and second is not None:
                    found = (first, second)
                    break
        self._routes[key] = found
        return found

    def needs(
        self, trades: Iterable[Trade], transfers: Iterable[Transfer], currencies: Iterable[str]
    ) -> dict[Pair, set[int]]:
        """The hours (start, Unix s) of each pair that costbasis will ask about for these records."""
        out: dict[Pair, set[int]] = {}
        currencies = [c.upper() for c in currencies]

        def need(asset: str, currency: str, when_ms: int) -> bool:
            legs = self.route(asset, currency)
            if legs is None:
                return False
            hour = when_ms // 1000 // HOUR * HOUR
            for base, quote, _ in legs:
                out.setdefault((base, quote), set()).add(hour)
            return True

        for currency in currencies:
            for trade in trades:
                if currency not in (trade.base, trade.quote) and not need(
                    trade.quote, currency, trade.timestamp_ms
                ):
                    need(trade.base, currency, trade.timestamp_ms)
            for transfer in transfers:
                if transfer.currency is not None and transfer.currency != currency:
                    need(transfer.currency, currency, transfer.timestamp_ms)
        return out

    def prefetch(self, needs: dict[Pair, set[int]], now_s: float) -> float | None:
        """Fetch every needed candle not cached yet; return when a still-open candle closes (or None).

        ApiError from the fetch passes through; what was fetched before it is kept.
        """
        pending: float | None = None
        for (base, quote), hours in sorted(needs.items()):
            if not hours:
                continue
            open_at = self._ensure(base, quote, HOURLY, min(hours), max(hours) + HOUR, now_s)
            missing_days = {h // DAY * DAY for h in hours if self._close(base, quote, HOURLY, h) is None}
            if missing_days:
                daily = self._ensure(base, quote, DAILY, min(missing_days), max(missing_days) + DAY, now_s)
                open_at = daily if open_at is None else open_at if daily is None else min(open_at, daily)
            if open_at is not None:
                pending = open_at if pending is None else min(pending, open_at)
        return pending

    def _coverage(self, pair: str, resolution: str) -> tuple[int, int] | None:
        text = self._ledger.state(f"prices:{resolution}:{pair}")
        if not text:
            return None
        low, _, high = text.partition(":")
        return int(low), int(high)

    def _ensure(
        self, base: str, quote: str, resolution: str, low: int, high: int, now_s: float
    ) -> float | None:
        """Make candles starting in [low, high) cached; return when the open candle closes, if needed."""
        step = STEP[resolution]
        final = int(now_s) // step * step  # candles starting before this have closed
        pair = base + quote
        covered = self._coverage(pair, resolution)
        if covered is None:
            covered = (low, low)
        have_low, have_high = covered
        # Downwards from the covered range, then upwards: the range stays one contiguous piece.
        while low < have_low:
            start = max(low, have_low - CHUNK * step)
            self._get(base, quote, resolution, start, have_low)
            have_low = start
            self._save(pair, resolution, have_low, have_high)
        while high > have_high:
            stop = min(high, have_high + CHUNK * step)
            self._get(base, quote, resolution, have_high, stop)
            if stop > final:
                # The open candle is cached as it is now, but not yet counted as final.
                self._save(pair, resolution, have_low, max(have_high, final))
                return float(final + step)
            have_high = stop
            self._save(pair, resolution, have_low, have_high)
        return None

    def _save(self, pair: str, resolution: str, low: int, high: int) -> None:
        self._ledger.set_state(f"prices:{resolution}:{pair}", f"{low}:{high}")

    def _get(self, base: str, quote: str, resolution: str, start: int, stop: int) -> None:
        candles = [c for c in self._fetch(base, quote, resolution, start, stop - 1) if start <= c[0] < stop]
        self._ledger.prices.put(base + quote, resolution, candles)
        step = STEP[resolution]
        for when in range(start, stop, step):
            self._closes.pop((base + quote, resolution, when), None)
        for when, close in candles:
            if when % step == 0:
                self._closes[(base + quote, resolution, when)] = close

    def _close(self, base: str, quote: str, resolution: str, start: int) -> Decimal | None:
        key = (base + quote, resolution, start)
        if key not in self._closes:
            self._closes[key] = self._ledger.prices.close_at(base + quote, resolution, start)
        return self._closes[key]

    def price_at(self, asset: str, currency: str, when_ms: int) -> Decimal | None:
        """One `asset` in `currency` at a time, from cached candles; None when no route or candle."""
        legs = self.route(asset.upper(), currency.upper())
        if legs is None:
            return None
        seconds = when_ms // 1000
        price = Decimal(1)
        for base, quote, inverted in legs:
            close = self._close(base, quote, HOURLY, seconds // HOUR * HOUR)
            if close is None:
                close = self._close(base, quote, DAILY, seconds // DAY * DAY)
            if close is None or close <= 0:
                return None
            price = price / close if inverted else price * close
        return price
