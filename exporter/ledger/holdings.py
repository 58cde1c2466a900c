"""What an account held at a moment, its cost and its value at past prices: pure functions, no I/O.

A value is the quantity times the asset's price in the valuation currency at that moment, from the
caller's `price_at` (the ledger's price cache through pricing/history.py, which routes through the
inverse pair or a bridge currency itself). Where a held asset has no price the value is absent
(None), never guessed, and so is any sum it would be part of.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, localcontext

from exporter.api.records import Trade, Transfer
from exporter.config.activity_settings import CostMethod
from exporter.ledger.costbasis import CONTEXT, PriceAt, Replay, order
from exporter.ledger.quantities import Quantities, advance
from exporter.ledger.tables import Cell

COLUMNS = ("at", "account", "asset", "currency", "quantity", "value", "cost_basis")
_ZERO = Decimal(0)
_ONE = Decimal(1)


def rate(asset: str, currency: str, when_ms: int, price_at: PriceAt) -> Decimal | None:
    """One `asset` in `currency` at `when_ms`; 1 for the currency itself, None without a price."""
    if asset == currency:
        return _ONE
    price = price_at(asset, currency, when_ms)
    return price if price is not None and price > 0 else None


def _at(amount: Decimal, price: Decimal | None) -> Decimal | None:
    """What a fee or tax of `amount` (positive) is worth at `price`, under the caller's CONTEXT: 0
    when nothing was paid, priced or not; None without a price."""
    if amount == 0:
        return _ZERO
    return None if price is None else amount * price


def paid(
    amount: Decimal | None, asset: str, currency: str, when_ms: int, price_at: PriceAt
) -> Decimal | None:
    """A fee or tax paid in `asset`, valued in `currency` at `when_ms` (positive); None without a price."""
    if amount is None or amount == 0:  # nothing paid: no price looked up
        return _ZERO
    price = rate(asset, currency, when_ms, price_at)
    with localcontext(CONTEXT):
        return _at(amount.copy_abs(), price)


def in_quote(trade: Trade) -> tuple[Decimal, Decimal]:
    """A trade's fee and tax as amounts of its quote (positive), under the caller's CONTEXT: one taken
    from the base (a buy on a pair with commissionFromNumerator) at the trade's own price. The same in
    every valuation currency, so a caller valuing a trade in several computes it once (quote_paid)."""
    fee, tax = trade.fee, trade.tax
    if trade.fee_asset != trade.quote:
        price = trade.price
        fee, tax = fee * price, tax * price
    return fee.copy_abs(), tax.copy_abs()


def quote_paid(
    costs: tuple[Decimal, Decimal], trade: Trade, currency: str, price_at: PriceAt
) -> tuple[Decimal | None, Decimal | None]:
    """A trade's fee and tax, in_quote(trade) as `costs`, valued in `currency` at its time (positive),
    under the caller's CONTEXT: the quote's rate looked up once for both, and not at all when neither
    was paid."""
    fee, tax = costs
    if fee == 0 and tax == 0:
        return _ZERO, _ZERO
    price = rate(trade.quote, currency, trade.timestamp_ms, price_at)
    return _at(fee, price), _at(tax, price)


def trade_paid(trade: Trade, currency: str, price_at: PriceAt) -> tuple[Decimal | None, Decimal | None]:
    """A trade's fee and tax valued in `currency` at its time (positive): quote_paid() of in_quote()."""
    with localcontext(CONTEXT):
        return quote_paid(in_quote(trade), trade, currency, price_at)


def worth(held: Mapping[str, Decimal], currency: str, when_ms: int, price_at: PriceAt) -> Decimal | None:
    """The value of every quantity held at `when_ms`; None when any held asset has no price then."""
    total = _ZERO
    with localcontext(CONTEXT):
        for asset, quantity in held.items():
            if quantity == 0:
                continue
            price = rate(asset, currency, when_ms, price_at)
            if price is None:
                return None
            total += quantity * price
    return total


def touched(record: Trade | Transfer) -> tuple[str, ...]:
    """The assets a record moves."""
    if isinstance(record, Trade):
        return (record.base, record.quote)
    return () if record.currency is None else (record.currency,)


def holdings(
    account: str,
    trades: Iterable[Trade],
    transfers: Iterable[Transfer],
    currencies: Sequence[str],
    at_ms: int,
    at_text: str,
    price_at: PriceAt,
    method: CostMethod,
) -> list[dict[str, Cell]]:
    """One row per asset held just before `at_ms` and currency (records at or after it are not counted).

    The cost basis of an asset that a record the replay could not value moved is absent: the replay
    left that record out, so its cost is not the cost of what is held. One pass over the records for
    every currency: what is held is the same in each (Quantities).
    """
    if isinstance(currencies, str):
        raise TypeError("currencies: a sequence of currency names, not one name")
    replays = [Replay(currency, price_at, method) for currency in currencies]
    quantities = Quantities()
    unknown_cost: list[set[str]] = [set() for _ in replays]
    with localcontext(CONTEXT):  # once for the history, not once per record and currency
        for record in order([*trades, *transfers]):
            if record.timestamp_ms >= at_ms:
                break
            for valued, unknown in zip(advance(record, replays, quantities), unknown_cost, strict=True):
                if valued.value is None:
                    unknown.update(touched(record))
    rows: list[dict[str, Cell]] = []
    for replay, unknown in zip(replays, unknown_cost, strict=True):
        for asset, quantity in sorted(quantities.held.items()):
            if quantity == 0:
                continue
            price = rate(asset, replay.currency, at_ms, price_at)
            position = replay.position(asset)
            with localcontext(CONTEXT):
                value = None if price is None else quantity * price
            rows.append(
                {
                    "at": at_text,
                    "account": account,
                    "asset": asset,
                    "currency": replay.currency,
                    "quantity": quantity,
                    "value": value,
                    "cost_basis": None if asset in unknown or position is None else position[1],
                }
            )
    return rows
