"""Past prices for valuing records, from candles fetched once and kept in the ledger (`candlecache`).

A price at a time is the close of the hourly candle holding it (`/v1/klines/history`, resolution 60);
where the hourly history has no candle, the close of that day's candle (`/v1/ohlcs`). Between two
assets the route is the one `routes` gives live prices too, over the pairs the exchange lists: the
first candidate route with a candle on every leg. No price is ever made up: without candles
`price_at` answers None and costbasis counts the record as unpriced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from exporter.api.candles import DAILY, HOURLY
from exporter.api.errors import ApiError
from exporter.api.records import Trade, Transfer
from exporter.ledger.pricememo import BucketMemo
from exporter.ledger.store import Ledger
from exporter.pricing.candlecache import DAY, HOUR, CandleCache, Fetch, Pair
from exporter.pricing.routes import Leg, PriceOf, Route, RouteTable, price_of_route, route_rate, table_of

Want = tuple[str, str]  # (asset, currency)
# report(pair, hours, error): one pair's prefetch done, or failed with `error`
Report = Callable[[Pair, int, "ApiError | None"], None]


class PriceHistory:
    """`price_at(asset, currency, when_ms)` over cached candles, and the prefetch that fills them."""

    def __init__(self, ledger: Ledger, fetch: Fetch) -> None:
        self._candles = CandleCache(ledger, fetch)
        self._pairs: frozenset[Pair] = frozenset()
        self._table: RouteTable = table_of(())
        self._pair_lists = 0  # how many times set_pairs changed the routes

    def set_pairs(self, pairs: Iterable[Pair]) -> bool:
        """Use the exchange's (base, quote) pair list for routes; True when it changed."""
        pairs = frozenset(pairs)
        if pairs == self._pairs:
            return False
        self._pairs, self._table = pairs, table_of(pairs)
        self._pair_lists += 1
        return True

    def finals_only(self) -> None:
        """Price only by candles that had closed when fetched: for a reader that prints what it values
        (the ledger commands), where a close still moving would be shown as the price."""
        self._candles.finals_only()

    @property
    def version(self) -> int:
        """A number that grows whenever price_at may answer otherwise: candles fetched, pairs changed."""
        return self._candles.version + self._pair_lists

    @property
    def pairs(self) -> frozenset[Pair]:
        """The (base, quote) pairs routes are made of (set_pairs)."""
        return self._pairs

    def routes(self, asset: str, currency: str) -> tuple[Route, ...]:
        """The candidate routes from `asset` to `currency`, in the order they are tried."""
        return self._table.routes(asset.upper(), currency.upper())

    def needs(
        self, trades: Iterable[Trade], transfers: Iterable[Transfer], currencies: Iterable[str]
    ) -> dict[Want, set[int]]:
        """The hours (start, Unix s) at which costbasis will ask for each (asset, currency)."""
        out: dict[Want, set[int]] = {}
        # Whether a route exists depends on the assets only, never the time: the trades are grouped by
        # pair and each pair's hours taken at once (a full replay asks this of 100,000 trades).
        by_pair: dict[tuple[str, str], list[int]] = {}
        for trade in trades:
            by_pair.setdefault((trade.base, trade.quote), []).append(trade.timestamp_ms)
        by_asset: dict[str, list[int]] = {}
        for transfer in transfers:
            if transfer.currency is not None:
                by_asset.setdefault(transfer.currency, []).append(transfer.timestamp_ms)
        for currency in (c.upper() for c in currencies):
            for (base, quote), times in by_pair.items():
                # costbasis values a trade by its quote leg, else by its base quantity.
                if currency not in (base, quote):
                    for asset in (quote, base):
                        if self._table.routes(asset, currency):
                            out.setdefault((asset, currency), set()).update(hours_of(times))
                            break
            for asset, times in by_asset.items():
                if asset != currency and self._table.routes(asset, currency):
                    out.setdefault((asset, currency), set()).update(hours_of(times))
        return out

    def prefetch(
        self, wants: Mapping[Want, set[int]], now_s: float, report: Report | None = None
    ) -> float | None:
        """Fetch the candles these hours are priced by; return when a still-open candle closes (or None).

        The preferred route's candles first; for the hours where a leg has none, the next candidate's,
        as price_at falls through. ApiError from the fetch passes through, unless `report` takes it (the
        pair's prices are then left out and the rest fetched); what was fetched before it is kept.
        """
        # The callers' sets, not copies: a year of hourly steps is some 17,000 hours per asset.
        pending: Mapping[Want, set[int]] = {(a.upper(), c.upper()): h for (a, c), h in wants.items() if h}
        opens: float | None = None
        rank = 0
        while pending:
            needs: dict[Pair, set[int]] = {}
            for (asset, currency), hours in pending.items():
                for leg in _nth(self._table.routes(asset, currency), rank):
                    needs.setdefault((leg.base, leg.quote), set()).update(hours)
            if not needs:
                break
            for pair, hours in sorted(needs.items()):
                try:
                    open_at = self._candles.prefetch(pair, hours, now_s)
                except ApiError as exc:
                    if report is None:
                        raise
                    report(pair, len(hours), exc)
                    continue
                if report is not None:
                    report(pair, len(hours), None)
                if open_at is not None:
                    opens = open_at if opens is None else min(opens, open_at)
            pending = self._unpriced(pending, rank)
            rank += 1
        return opens

    def _unpriced(self, pending: Mapping[Want, set[int]], rank: int) -> dict[Want, set[int]]:
        """The hours whose candidate route of this rank has no price, by want."""
        left = {}
        for want, hours in pending.items():
            candidates = self._table.routes(*want)
            if rank + 1 >= len(candidates):
                continue
            route = candidates[rank]
            missing = {h for h in hours if route_rate(route, self._closes(h, h // DAY * DAY)) is None}
            if missing:
                left[want] = missing
        return left

    def _closes(self, hour_s: int, day_s: int) -> PriceOf:
        def price_of(leg: Leg) -> Decimal | None:
            close = self._candles.close(leg.base, leg.quote, HOURLY, hour_s)
            return close if close is not None else self._candles.close(leg.base, leg.quote, DAILY, day_s)

        return price_of

    def price_in(self, asset: str, currency: str, hour_s: int, day_s: int) -> Decimal | None:
        """One `asset` in `currency` by the hourly candles starting at `hour_s`, else the daily at `day_s`."""
        return price_of_route(self._table, asset.upper(), currency.upper(), self._closes(hour_s, day_s))

    def price_at(self, asset: str, currency: str, when_ms: int) -> Decimal | None:
        """One `asset` in `currency` by the candles holding the time; None when no route has candles."""
        seconds = when_ms // 1000
        return self.price_in(asset, currency, seconds // HOUR * HOUR, seconds // DAY * DAY)


_HOUR_MS = HOUR * 1000


def hours_of(times_ms: Iterable[int]) -> set[int]:
    """The hours (start, Unix s) holding these times: the hourly candles price_at reads for them."""
    return {when // 1000 // HOUR * HOUR for when in times_ms}


class HourMemo:
    """`PriceHistory.price_at` remembered per (asset, currency, hour) (ledger.pricememo), for a run that
    values many records; forgotten when the history changes (candles fetched, another pair list), so
    it answers as price_at does at every moment."""

    __slots__ = ("_history", "_memo", "_version")

    def __init__(self, history: PriceHistory) -> None:
        self._history = history
        self._memo = BucketMemo(history.price_at, _HOUR_MS)
        self._version = history.version

    def price_at(self, asset: str, currency: str, when_ms: int) -> Decimal | None:
        """What `PriceHistory.price_at(asset, currency, when_ms)` answers, looked up once per hour."""
        if self._history.version != self._version:
            self.clear()
        return self._memo.price_at(asset, currency, when_ms)

    def clear(self) -> None:
        """Forget every answer (they are looked up again as asked) and every miss."""
        self._memo.clear()
        self._version = self._history.version


def _nth(candidates: tuple[Route, ...], rank: int) -> tuple[Leg, ...]:
    return candidates[rank].legs if rank < len(candidates) else ()
