"""How much of each asset an account holds, record by record, whatever could be priced.

The cost-basis replay leaves out a record it cannot value (costbasis.py: `unpriced`), so its
positions are not what was held. Valuing holdings needs the quantities themselves, moved by the same
rules: a trade moves its base and quote as Trade.moves() says (fee and tax off the quote, or off the
base a buy receives on a pair that takes commission from the numerator), a sale whose costs exceed
its proceeds gives quote too, transfer fees are not taken, and giving more than is held (history
before the first record) leaves zero, never a negative quantity.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from exporter.api.records import Trade, Transfer
from exporter.ledger.costbasis import CONTEXT

_ZERO = Decimal(0)


class Quantities:
    """The quantity of each asset after the records applied so far, in costbasis.order()."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held: dict[str, Decimal] = {}

    def _move(self, asset: str, amount: Decimal) -> None:
        self.held[asset] = max(self.held.get(asset, _ZERO) + amount, _ZERO)

    def apply(self, record: Trade | Transfer) -> None:
        """Move the quantities one record moves."""
        with localcontext(CONTEXT):
            self.step(record)

    def step(self, record: Trade | Transfer) -> None:
        """apply() under the caller's decimal context, which must be CONTEXT (entered once for many)."""
        if isinstance(record, Trade):
            self.trade(record, record.moves())
        else:
            self.transfer(record)

    def trade(self, trade: Trade, moves: tuple[Decimal, Decimal]) -> None:
        """Move what a trade whose Trade.moves() are `moves` moves, under CONTEXT (the caller's)."""
        base, quote = moves
        held = self.held
        # What is given first, so a shortfall clips at zero before the receipt, as it did.
        if trade.side == "buy":
            held[trade.quote] = max(held.get(trade.quote, _ZERO) + quote, _ZERO)
            held[trade.base] = max(held.get(trade.base, _ZERO) + base, _ZERO)
        else:
            held[trade.base] = max(held.get(trade.base, _ZERO) + base, _ZERO)
            held[trade.quote] = max(held.get(trade.quote, _ZERO) + quote, _ZERO)

    def transfer(self, transfer: Transfer) -> None:
        """Move what a transfer moves, under CONTEXT (the caller's)."""
        if transfer.currency is not None:
            sign = 1 if transfer.balance_type == "deposit" else -1
            self._move(transfer.currency, sign * transfer.quantity)
