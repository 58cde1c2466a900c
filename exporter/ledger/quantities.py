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
        held = self.held.get(asset, _ZERO) + amount
        self.held[asset] = held if held >= 0 else _ZERO

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
        # What is given first, so a shortfall clips at zero before the receipt, as it did.
        if trade.side == "buy":
            self._move(trade.quote, quote)
            self._move(trade.base, base)
        else:
            self._move(trade.base, base)
            self._move(trade.quote, quote)

    def transfer(self, transfer: Transfer) -> None:
        """Move what a transfer moves, under CONTEXT (the caller's)."""
        if transfer.currency is not None:
            sign = 1 if transfer.balance_type == "deposit" else -1
            self._move(transfer.currency, sign * transfer.quantity)
