"""The ledger's running counters (trades, trade fees and taxes, deposits, withdrawals), keyed as exported.

One definition for the live exporter and the backfill, so a counter never jumps where the two meet:
keys are the label values after `account`, as in activity_metrics (`(pair, side)` for trades, `(asset,)`
for the others); fees and taxes are trade fees only, as positive amounts in the pair's quote asset;
deposits and withdrawals are quantities of the asset. A transfer naming no currency counts nowhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from exporter.api.records import Trade, Transfer
from exporter.metrics.activity_families import (
    COUNTER_FAMILIES,
    DEPOSITS,
    TRADE_FEES,
    TRADE_TAXES,
    TRADES,
    WITHDRAWALS,
)

Totals = dict[str, dict[tuple[str, ...], Decimal | int]]
"""Family name -> label values (after `account`) -> running total."""

_ZERO = Decimal(0)


class LedgerCounters:
    """Running totals over records added in time order; `start_at_zero` lists keys before they count."""

    def __init__(self) -> None:
        self.totals: Totals = {family.name: {} for family in COUNTER_FAMILIES}

    def start_at_zero(self, records: Iterable[Trade | Transfer]) -> None:
        """Give every key these records will count a zero now, so a series starts before its first rise."""
        totals = self.totals
        for r in records:
            if isinstance(r, Trade):
                totals[TRADES.name].setdefault((r.pair, r.side), 0)
                totals[TRADE_FEES.name].setdefault((r.quote,), _ZERO)
                totals[TRADE_TAXES.name].setdefault((r.quote,), _ZERO)
            elif r.currency is not None:
                family = DEPOSITS.name if r.balance_type == "deposit" else WITHDRAWALS.name
                totals[family].setdefault((r.currency,), _ZERO)

    def add(self, r: Trade | Transfer) -> None:
        """Count one record."""
        totals = self.totals
        if isinstance(r, Trade):
            trades = totals[TRADES.name]
            trades[r.pair, r.side] = trades.get((r.pair, r.side), 0) + 1
            fees, taxes = totals[TRADE_FEES.name], totals[TRADE_TAXES.name]
            fees[r.quote,] = fees.get((r.quote,), _ZERO) + r.fee.copy_abs()
            taxes[r.quote,] = taxes.get((r.quote,), _ZERO) + r.tax.copy_abs()
        elif r.currency is not None:
            family = totals[DEPOSITS.name if r.balance_type == "deposit" else WITHDRAWALS.name]
            family[r.currency,] = family.get((r.currency,), _ZERO) + r.quantity


def count(records: Iterable[Trade | Transfer]) -> Totals:
    """Every counter's total over these records (what the live exporter shows for a ledger)."""
    counters = LedgerCounters()
    for record in records:
        counters.add(record)
    return counters.totals
