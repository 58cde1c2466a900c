"""How much of each asset an account holds, record by record, whatever could be priced.

The cost-basis replay leaves out a record it cannot value (costbasis.py: `unpriced`), so its
positions are not what was held. Valuing holdings needs the quantities themselves, moved by the same
rules: a trade moves its base and quote as Trade.moves() says (fee and tax off the quote, or off the
base a buy receives on a pair that takes commission from the numerator), a sale whose costs exceed
its proceeds gives quote too, transfer fees are not taken, and giving more than is held (history
before the first record) leaves zero, never a negative quantity.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext

from exporter.api.records import Trade, Transfer
from exporter.ledger.costbasis import CONTEXT, Replay, Valued

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
        # What is given first, so a shortfall clips at zero before the receipt, as it did. Inlined
        # _move: this runs once per trade replayed.
        held = self.held
        if trade.side == "buy":
            first, first_move, then, then_move = trade.quote, moves[1], trade.base, moves[0]
        else:
            first, first_move, then, then_move = trade.base, moves[0], trade.quote, moves[1]
        left = held.get(first, _ZERO) + first_move
        held[first] = left if left >= 0 else _ZERO
        left = held.get(then, _ZERO) + then_move
        held[then] = left if left >= 0 else _ZERO

    def transfer(self, transfer: Transfer) -> None:
        """Move what a transfer moves, under CONTEXT (the caller's)."""
        if transfer.currency is not None:
            sign = 1 if transfer.balance_type == "deposit" else -1
            self._move(transfer.currency, sign * transfer.quantity)


def advance(record: Trade | Transfer, replays: Sequence[Replay], quantities: Quantities) -> list[Valued]:
    """Step one record, the next in order(), through every currency's replay and the quantities, under
    CONTEXT (the caller's); each replay's Valued. A trade's moves are computed once for all of them."""
    if isinstance(record, Trade):
        moves = record.moves()
        valued = [replay.trade(record, moves) for replay in replays]
        quantities.trade(record, moves)
    else:
        valued = [replay.transfer(record) for replay in replays]
        quantities.transfer(record)
    return valued
