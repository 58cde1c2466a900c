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
  the window's edges at past prices) and `time_weighted_return` (returns.Units). A window that
  starts before the ledger's history of the account does (`activity.since`, where its openings are
  stamped) has neither `value_start` nor a return: what was held then is not in the ledger. Its sums
  are those of its records, all at or after that start.

Each record's part of a sum is rounded first, by the rounding `ledger export` shows its rows with
(ledger/display.py): the sums are the sums of the export's rounded figures, to the last digit, and
`realized_profit` = `proceeds` - `cost_of_sold` holds exactly in every row.

A column is absent (None) when a record it sums, or a holding it values, has no price.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from decimal import Decimal, localcontext

from exporter.api.records import Trade, Transfer
from exporter.config.activity_settings import CostMethod
from exporter.ledger.costbasis import CONTEXT, PriceAt, Replay, order
from exporter.ledger.display import shown_in
from exporter.ledger.holdings import in_quote, paid, quote_paid, worth
from exporter.ledger.periods import Period, bounds
from exporter.ledger.quantities import Quantities, advance
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


# A row's sums, in SUMS order: one list per asset, added to by index in the report's hottest loop.
_REALIZED, _PROCEEDS, _COST_OF_SOLD, _FEES, _TAXES, _DEPOSITS, _WITHDRAWALS = range(len(SUMS))
Sums = list[Decimal | None]
"""One row's sums of rounded parts, in SUMS order; a None is a sum with an unpriced part, which stays None."""


def _plus(held: Decimal | None, part: Decimal | None) -> Decimal | None:
    """A sum with one more rounded part; None once either is unknown. Under costbasis.CONTEXT."""
    return None if held is None or part is None else held + part


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
        self.shown = shown_in(self.currency)
        self.value_start: Decimal | None = None
        self.units = Units(None)
        self.sums: dict[str, Sums] = {}

    def _worth(self, when_ms: int) -> Decimal | None:
        return worth(self.quantities.held, self.currency, when_ms, self.price_at)

    def _row(self, asset: str) -> Sums:
        found = self.sums.get(asset)
        if found is None:
            found = self.sums[asset] = [_ZERO] * len(SUMS)
        return found

    def open(self, window: Window, begins_ms: int | None) -> None:
        """Start a window: its value at the start (unknown before the history begins at `begins_ms`),
        its units, a row for every asset held."""
        before = begins_ms is not None and window.start_ms < begins_ms
        self.value_start = None if before else self._worth(window.start_ms)
        self.units = Units(self.value_start)
        self.sums = {asset: [_ZERO] * len(SUMS) for asset, held in self.quantities.held.items() if held}

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
                **dict(zip(SUMS, row, strict=True)),
                "value_start": self.value_start,
                "value_end": value_end,
                "time_weighted_return": twr,
            }
            for asset, row in sorted(self.sums.items())
        ]

    def trade(self, trade: Trade, moves: tuple[Decimal, Decimal], costs: tuple[Decimal, Decimal]) -> None:
        """Apply one trade of the window whose Trade.moves() are `moves` and holdings.in_quote() `costs`
        (each computed once for every currency), before the quantities move by it, and sum it. The
        report's hottest code, run per trade and currency: the sums are added to inline."""
        currency, replay, shown = self.currency, self.replay, self.shown
        base, quote = trade.base, trade.quote
        given = base if trade.side == "sell" else quote
        before = None if given == currency else replay.position(given)
        valued = replay.trade(trade, moves)
        row = self._row(base)
        if quote not in self.sums:
            self._row(quote)
        fee, tax = quote_paid(costs, trade, currency, self.price_at)
        held = row[_FEES]
        row[_FEES] = None if held is None or fee is None else held + shown(fee)
        held = row[_TAXES]
        row[_TAXES] = None if held is None or tax is None else held + shown(tax)
        if given == currency:
            return
        disposed = self.sums[given]
        value = valued.value
        if value is None:  # left out of the cost basis: what it realized is unknown
            disposed[_REALIZED] = disposed[_PROCEEDS] = disposed[_COST_OF_SOLD] = None
            return
        realized = valued.realised if valued.realised is not None else _ZERO
        if valued.shortfall is None:
            proceeds = value  # all held: the proceeds are the record's value, the export's `value`
        else:  # a shortfall realizes only the held part's
            after = replay.position(given)
            removed = (_ZERO if before is None else before[1]) - (_ZERO if after is None else after[1])
            proceeds = realized + removed
        # cost_of_sold from the two rounded figures, so realized = proceeds - cost_of_sold exactly.
        realized, proceeds = shown(realized), shown(proceeds)
        # Only here are these three written, all at once: they are unknown together or not at all.
        held, got, cost = disposed[_REALIZED], disposed[_PROCEEDS], disposed[_COST_OF_SOLD]
        if held is not None and got is not None and cost is not None:
            disposed[_REALIZED] = held + realized
            disposed[_PROCEEDS] = got + proceeds
            disposed[_COST_OF_SOLD] = cost + (proceeds - realized)

    def transfer(self, transfer: Transfer) -> None:
        """Apply one transfer of the window, before the quantities move by it, and sum it."""
        replay = self.replay
        asset = transfer.currency
        if asset is None:  # unattributed: the replay leaves it out too
            replay.transfer(transfer)
            return
        when = transfer.timestamp_ms
        held_before = self._worth(when)
        value = replay.transfer(transfer).value
        row = self._row(asset)
        for index, amount in (
            (_FEES, paid(transfer.fee, asset, self.currency, when, self.price_at)),
            (_TAXES, paid(transfer.tax, asset, self.currency, when, self.price_at)),
        ):
            row[index] = _plus(row[index], None if amount is None else self.shown(amount))
        deposit = transfer.balance_type == "deposit"
        row[_DEPOSITS if deposit else _WITHDRAWALS] = _plus(
            row[_DEPOSITS if deposit else _WITHDRAWALS], None if value is None else self.shown(value)
        )
        self.units.flow(held_before, None if value is None else value if deposit else -value)


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
    begins_ms: int | None = None,
) -> list[dict[str, Cell]]:
    """The report rows of one account in each of `currencies`, period by period; [] without records.

    `begins_ms`: where the ledger's history of the account begins (None: from its first record). One
    pass over the records for every currency: what is held is the same in each (Quantities).
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
        replays = [state.replay for state in states]
        while index < count and records[index].timestamp_ms < first:
            advance(records[index], replays, quantities)
            index += 1
        for window in windows(first, until_ms, period, zone):
            for state in states:
                state.open(window, begins_ms)
            while index < count and (record := records[index]).timestamp_ms < window.end_ms:
                # The quantities move after every currency's: a transfer is valued against what was
                # held before it.
                if isinstance(record, Trade):
                    moves, costs = record.moves(), in_quote(record)  # once for every currency
                    for state in states:
                        state.trade(record, moves, costs)
                    quantities.trade(record, moves)
                else:
                    for state in states:
                        state.transfer(record)
                    quantities.transfer(record)
                index += 1
            for state in states:
                rows += state.close(window)
    return rows
