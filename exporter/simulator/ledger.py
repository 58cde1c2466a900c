"""Account history: the trade, crypto and fiat records that are the only way a simulated balance changes.

Records carry the vendor's shapes (btcturk-activity-api.md) so that they can be served as they are.
Every amount is already rounded to its asset's precision when it is recorded; `apply_*` then moves
exactly that much, so an account's balances always equal its opening balances plus its history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exporter.simulator.amounts import ZERO, format_amount

# Trade ids on the live API exceed 2**53; starting above it keeps float-parsing clients honest.
FIRST_TRADE_ID = 2**53 + 1
FIAT = frozenset({"TRY"})


@dataclass(frozen=True)
class Trade:
    """One fill: `amount` in the numerator (negative for a sell); the denominator moves by
    `total` (= -amount x price) + fee + tax, or, on a buy with `fee_in_numerator` (its pair's
    commissionFromNumerator), the denominator by `total` and the numerator by amount + fee + tax."""

    id: int
    order_id: int
    timestamp: int
    numerator: str
    denominator: str
    side: str  # "buy" / "sell"
    price: Decimal
    amount: Decimal
    total: Decimal  # signed change of the denominator before fee and tax
    fee: Decimal  # negative or zero, in the denominator (the numerator when fee_in_numerator)
    tax: Decimal  # negative or zero, likewise
    fee_in_numerator: bool = False

    @property
    def moved(self) -> tuple[Decimal, Decimal]:
        """What the fill did to the (numerator, denominator) balances."""
        if self.fee_in_numerator:
            return self.amount + self.fee + self.tax, self.total
        return self.amount, self.total + self.fee + self.tax

    def to_json(self) -> dict[str, Any]:
        """The item of /api/v1/users/transactions/trade."""
        return {
            "price": format_amount(self.price),
            "numeratorSymbol": self.numerator,
            "denominatorSymbol": self.denominator,
            "orderType": self.side,
            "orderId": self.order_id,
            "id": self.id,
            "timestamp": self.timestamp,
            "amount": format_amount(self.amount),
            "preciseAmount": float(self.amount),
            "fee": format_amount(self.fee),
            "tax": format_amount(self.tax),
        }


@dataclass(frozen=True)
class Transfer:
    """A deposit or withdrawal: the balance moves by amount + fee + tax (withdrawals negative)."""

    id: int
    timestamp: int
    kind: str  # "deposit" / "withdrawal"
    currency: str
    amount: Decimal
    fee: Decimal = ZERO
    tax: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.amount + self.fee + self.tax

    @property
    def fiat(self) -> bool:
        return self.currency in FIAT

    def to_json(self) -> dict[str, Any]:
        """The item of /api/v1/users/transactions/crypto or /fiat."""
        return {
            "balanceType": self.kind,
            "currencySymbol": self.currency,
            "id": self.id,
            "timestamp": self.timestamp,
            "funds": format_amount(self.net),
            "orderFund": None,
            "amount": format_amount(self.amount),
            "fee": format_amount(self.fee),
            "tax": format_amount(self.tax),
        }


@dataclass
class Pending:
    """A withdrawal held in requestFund until `due` (ms)."""

    currency: str
    amount: Decimal  # what leaves the account, fee included (positive)
    fee: Decimal  # negative or zero
    due: int


@dataclass
class History:
    """An account's records in the order they happened, and its withdrawals still pending."""

    trades: list[Trade] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)

    def crypto(self) -> list[Transfer]:
        """Deposits and withdrawals of crypto assets."""
        return [t for t in self.transfers if not t.fiat]

    def fiat(self) -> list[Transfer]:
        """Deposits and withdrawals of TRY."""
        return [t for t in self.transfers if t.fiat]

    def net_change(self) -> dict[str, Decimal]:
        """How much each asset moved in all recorded history."""
        change: dict[str, Decimal] = {}
        for trade in self.trades:
            numerator, denominator = trade.moved
            change[trade.numerator] = change.get(trade.numerator, ZERO) + numerator
            change[trade.denominator] = change.get(trade.denominator, ZERO) + denominator
        for transfer in self.transfers:
            change[transfer.currency] = change.get(transfer.currency, ZERO) + transfer.net
        return change
