"""What an account held at a moment, its cost and its value at past prices: pure functions, no I/O.

A value is the quantity times the asset's price in the valuation currency at that moment, from the
caller's `price_at` (the ledger's price cache through pricing/history.py, which routes through the
inverse pair or a bridge currency itself). Where a held asset has no price the value is absent
(None), never guessed, and so is any sum it would be part of.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, localcontext

from exporter.api.records import Trade, Transfer
from exporter.ledger.costbasis import CONTEXT, Method, Position, PriceAt, compute
from exporter.ledger.tables import Cell

COLUMNS = ("at", "account", "asset", "currency", "quantity", "value", "cost_basis")
_ZERO = Decimal(0)


def rate(asset: str, currency: str, when_ms: int, price_at: PriceAt) -> Decimal | None:
    """One `asset` in `currency` at `when_ms`; 1 for the currency itself, None without a price."""
    if asset == currency:
        return Decimal(1)
    price = price_at(asset, currency, when_ms)
    return price if price is not None and price > 0 else None


def worth(
    positions: Mapping[str, Position], currency: str, when_ms: int, price_at: PriceAt
) -> Decimal | None:
    """The value of every position at `when_ms`; None when any held asset has no price then."""
    total = _ZERO
    with localcontext(CONTEXT):
        for asset, position in positions.items():
            if position.quantity == 0:
                continue
            price = rate(asset, currency, when_ms, price_at)
            if price is None:
                return None
            total += position.quantity * price
    return total


def holdings(
    account: str,
    trades: Iterable[Trade],
    transfers: Iterable[Transfer],
    currency: str,
    at_ms: int,
    at_text: str,
    price_at: PriceAt,
    method: Method,
) -> list[dict[str, Cell]]:
    """One row per asset held just before `at_ms` (records at or after it are not counted)."""
    before = [t for t in trades if t.timestamp_ms < at_ms], [t for t in transfers if t.timestamp_ms < at_ms]
    basis = compute(*before, currency, price_at, method)
    rows: list[dict[str, Cell]] = []
    for asset, position in basis.positions.items():
        if position.quantity == 0 and position.cost == 0:
            continue
        price = rate(asset, basis.currency, at_ms, price_at)
        with localcontext(CONTEXT):
            value = None if price is None else position.quantity * price
        rows.append(
            {
                "at": at_text,
                "account": account,
                "asset": asset,
                "currency": basis.currency,
                "quantity": position.quantity,
                "value": value,
                "cost_basis": position.cost,
            }
        )
    return rows
