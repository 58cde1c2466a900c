"""The ledger's running counters (trades, trade fees and taxes, deposits, withdrawals).

One definition for the live exporter and the backfill, so a counter never jumps where the two meet.
Totals are keyed by what they count (Counted); the metrics layer names the family each is exported as.
Within a counter, keys are the label values after `account` (`(pair, side)` for trades, `(asset,)`
for the others); fees and taxes are trade fees only, as positive amounts in the asset paid in (the
pair's quote, or the base of a buy on a pair that takes commission from the numerator: Trade.fee_asset);
deposits and withdrawals are quantities of the asset. A transfer naming no currency counts nowhere,
nor does an opening (the ledger's record of what was held at `since`, not a deposit the API made).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

from exporter.api.records import OPENING, Trade, Transfer

Counted = Literal["trades", "trade_fees", "trade_taxes", "deposits", "withdrawals"]
COUNTED: tuple[Counted, ...] = ("trades", "trade_fees", "trade_taxes", "deposits", "withdrawals")

Totals = dict[Counted, dict[tuple[str, ...], Decimal | int]]
"""What is counted -> label values (after `account`) -> running total."""

_ZERO = Decimal(0)


class LedgerCounters:
    """Running totals over records added in time order; `start_at_zero` lists keys before they count."""

    def __init__(self) -> None:
        self.totals: Totals = {counted: {} for counted in COUNTED}

    def start_at_zero(self, records: Iterable[Trade | Transfer]) -> None:
        """Give every key these records will count a zero now, so a series starts before its first rise."""
        totals = self.totals
        for r in records:
            if isinstance(r, Trade):
                totals["trades"].setdefault((r.pair, r.side), 0)
                totals["trade_fees"].setdefault((r.fee_asset,), _ZERO)
                totals["trade_taxes"].setdefault((r.fee_asset,), _ZERO)
            elif r.currency is not None and r.kind != OPENING:
                totals[_transfer(r)].setdefault((r.currency,), _ZERO)

    def add(self, r: Trade | Transfer) -> None:
        """Count one record."""
        totals = self.totals
        if isinstance(r, Trade):
            trades = totals["trades"]
            trades[r.pair, r.side] = trades.get((r.pair, r.side), 0) + 1
            fees, taxes = totals["trade_fees"], totals["trade_taxes"]
            paid_in = r.fee_asset
            fees[paid_in,] = fees.get((paid_in,), _ZERO) + r.fee.copy_abs()
            taxes[paid_in,] = taxes.get((paid_in,), _ZERO) + r.tax.copy_abs()
        elif r.currency is not None and r.kind != OPENING:
            moved = totals[_transfer(r)]
            moved[r.currency,] = moved.get((r.currency,), _ZERO) + r.quantity


def _transfer(r: Transfer) -> Counted:
    return "deposits" if r.balance_type == "deposit" else "withdrawals"


def count(records: Iterable[Trade | Transfer]) -> Totals:
    """Every counter's total over these records (what the live exporter shows for a ledger)."""
    counters = LedgerCounters()
    for record in records:
        counters.add(record)
    return counters.totals
