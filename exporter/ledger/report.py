"""`ledger report`: per period, account, asset and valuation currency, what was realized, paid and moved.

Pure over records: one account's history is replayed from its first record (cost needs all of it),
and each period's window, cut in a time zone and clipped to `since`/`until`, sums the records in it:

* `realized_profit`, `proceeds`, `cost_of_sold` on the asset given away (a sale's base, the quote
  of a buy paid in an asset other than the valuation currency), as the replay realized them;
  `proceeds` is the part matched against holdings, so realized = proceeds - cost_of_sold;
* `fees`, `taxes` on the traded asset (a trade's base, a transfer's currency), each valued at the
  price of the asset it was paid in at its time; a buy's fee taken from the base (a pair that takes
  commission from the numerator) is valued at the trade's own price, as quote, then as a quote fee;
* `deposits`, `withdrawals` (positive) on the moved asset, each valued at its time;
* per account and currency, repeated on each of its rows: `value_start`, `value_end` (holdings at
  the window's edges at past prices) and `time_weighted_return` (returns.Units).

Each record's part of a sum is rounded first, by the rounding `ledger export` shows its rows with
(ledger/display.py): the sums are the sums of the export's rounded figures, to the last digit, and
`realized_profit` = `proceeds` - `cost_of_sold` holds exactly in every row.

A column is absent (None) when a record it sums, or a holding it values, has no price.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from decimal import Decimal, localcontext

from exporter.api.records import Trade, Transfer
from exporter.config.activity_settings import CostMethod
from exporter.ledger.costbasis import CONTEXT, PriceAt, Replay, Valued, order
from exporter.ledger.display import shown
from exporter.ledger.holdings import paid, trade_paid, worth
from exporter.ledger.periods import Period, bounds
from exporter.ledger.quantities import Quantities
from exporter.ledger.returns import Units
from exporter.ledger.tables import Cell

SUMS = ("realized_profit", "proceeds", "cost_of_sold", "fees", "taxes", "deposits", "withdrawals")
COLUMNS = (
    "period",
    "account",
    "asset",
    "currency",
    *SUMS,
    "value_start",
    "value_end",
    "time_weighted_return",
)
_ZERO = Decimal(0)


@dataclass
class _Sums:
    """One row's sums of rounded parts; a None is a sum with an unpriced part, which stays None."""

    currency: str
    values: dict[str, Decimal | None] = field(default_factory=lambda: dict.fromkeys(SUMS, _ZERO))

    def add(self, name: str, amount: Decimal | None) -> None:
        """Add one record's `amount`, rounded as `ledger export` shows it; under costbasis.CONTEXT."""
        self.add_shown(name, None if amount is None else shown(amount, self.currency))

    def add_shown(self, name: str, amount: Decimal | None) -> None:
        """Add an `amount` already rounded by shown() (rounding it again changes nothing); under CONTEXT."""
        held = self.values[name]
        self.values[name] = None if held is None or amount is None else held + amount


@dataclass(frozen=True)
class Window:
    """The part of one period a report covers: [start_ms, end_ms)."""

    name: str
    start_ms: int
    end_ms: int


def windows(first_ms: int, until_ms: int, period: Period, zone: tzinfo) -> Iterator[Window]:
    """The periods from the one holding `first_ms` up to `until_ms`, clipped to [first_ms, until_ms)."""
    start = first_ms
    while start < until_ms:
        name, _, end = bounds(start, period, zone)
        yield Window(name, start, min(end, until_ms))
        start = min(end, until_ms)


class _AccountReport:
    """The replay of one account in one currency, read window by window; the quantities held are the
    caller's, shared by every currency's report and moved by it after each record."""

    def __init__(
        self, account: str, currency: str, price_at: PriceAt, method: CostMethod, quantities: Quantities
    ) -> None:
        self.account = account
        self.currency = currency.upper()
        self.price_at = price_at
        self.replay = Replay(currency, price_at, method)
        self.quantities = quantities
        self.value_start: Decimal | None = None
        self.units = Units(None)
        self.sums: dict[str, _Sums] = {}

    def _apply(self, record: Trade | Transfer) -> Valued:
        return self.replay.step(record)  # report() runs under CONTEXT

    def _worth(self, when_ms: int) -> Decimal | None:
        return worth(self.quantities.held, self.currency, when_ms, self.price_at)

    def _paid(self, amount: Decimal | None, asset: str, when_ms: int) -> Decimal | None:
        return paid(amount, asset, self.currency, when_ms, self.price_at)

    def _sums(self, sums: dict[str, _Sums], asset: str) -> _Sums:
        found = sums.get(asset)
        if found is None:
            found = sums[asset] = _Sums(self.currency)
        return found

    def skip(self, record: Trade | Transfer) -> None:
        """Apply a record before the first window."""
        self._apply(record)

    def open(self, window: Window) -> None:
        """Start a window: its value at the start, its units, a row for every asset held."""
        self.value_start = self._worth(window.start_ms)
        self.units = Units(self.value_start)
        self.sums = {
            asset: _Sums(self.currency) for asset, quantity in self.quantities.held.items() if quantity
        }

    def record(self, record: Trade | Transfer) -> None:
        """Apply one record of the window (before the quantities move by it) and sum it."""
        self._record(record, self.sums, self.units)

    def close(self, window: Window) -> list[dict[str, Cell]]:
        """The rows of the window opened, once its records are applied."""
        value_end = self._worth(window.end_ms)
        twr = self.units.result(value_end)
        return [
            {
                "period": window.name,
                "account": self.account,
                "asset": asset,
                "currency": self.currency,
                **row.values,
                "value_start": self.value_start,
                "value_end": value_end,
                "time_weighted_return": twr,
            }
            for asset, row in sorted(self.sums.items())
        ]

    def _record(self, record: Trade | Transfer, sums: dict[str, _Sums], units: Units) -> None:
        when = record.timestamp_ms
        if isinstance(record, Trade):
            given = record.base if record.side == "sell" else record.quote
            before = self.replay.position(given)
            valued = self._apply(record)
            row = self._sums(sums, record.base)
            self._sums(sums, record.quote)
            row.add("fees", trade_paid(record.fee, record, self.currency, self.price_at))
            row.add("taxes", trade_paid(record.tax, record, self.currency, self.price_at))
            if given == self.currency:
                return
            disposed = sums[given]
            if valued.value is None:  # left out of the cost basis: what it realized is unknown
                for name in ("realized_profit", "proceeds", "cost_of_sold"):
                    disposed.add(name, None)
                return
            after = self.replay.position(given)
            removed = (_ZERO if before is None else before[1]) - (_ZERO if after is None else after[1])
            realized = valued.realised if valued.realised is not None else _ZERO
            # All held: the proceeds are the record's value, the export's `value`; a shortfall
            # realizes only the held part's.
            proceeds = valued.value if valued.shortfall is None else realized + removed
            # cost_of_sold from the two rounded figures, so realized = proceeds - cost_of_sold exactly.
            realized, proceeds = shown(realized, self.currency), shown(proceeds, self.currency)
            disposed.add_shown("realized_profit", realized)
            disposed.add_shown("proceeds", proceeds)
            disposed.add_shown("cost_of_sold", proceeds - realized)
            return
        if record.currency is None:  # unattributed: the replay leaves it out too
            self._apply(record)
            return
        held_before = self._worth(when)
        valued = self._apply(record)
        row = self._sums(sums, record.currency)
        row.add("fees", self._paid(record.fee, record.currency, when))
        row.add("taxes", self._paid(record.tax, record.currency, when))
        deposit = record.balance_type == "deposit"
        row.add("deposits" if deposit else "withdrawals", valued.value)
        flow = None if valued.value is None else valued.value if deposit else -valued.value
        units.flow(held_before, flow)


def report(
    account: str,
    trades: Iterable[Trade],
    transfers: Iterable[Transfer],
    currencies: Sequence[str],
    price_at: PriceAt,
    method: CostMethod,
    period: Period,
    zone: tzinfo,
    since_ms: int | None,
    until_ms: int,
) -> list[dict[str, Cell]]:
    """The report rows of one account in each of `currencies`, period by period; [] without records.

    One pass over the records for every currency: what is held is the same in each (Quantities).
    """
    if isinstance(currencies, str):
        raise TypeError("currencies: a sequence of currency names, not one name")
    records = order([*trades, *transfers])
    if not records:
        return []
    first = bounds(records[0].timestamp_ms, period, zone)[1] if since_ms is None else since_ms
    quantities = Quantities()
    states = [_AccountReport(account, currency, price_at, method, quantities) for currency in currencies]
    rows: list[dict[str, Cell]] = []
    index, count = 0, len(records)
    # One context for the whole replay, not one per sum: every figure is computed under it.
    with localcontext(CONTEXT):
        while index < count and records[index].timestamp_ms < first:
            for state in states:
                state.skip(records[index])
            quantities.step(records[index])
            index += 1
        for window in windows(first, until_ms, period, zone):
            for state in states:
                state.open(window)
            while index < count and records[index].timestamp_ms < window.end_ms:
                record = records[index]
                for state in states:
                    state.record(record)
                # After every currency's: a transfer is valued against what was held before it.
                quantities.step(record)
                index += 1
            for state in states:
                rows += state.close(window)
    return rows
