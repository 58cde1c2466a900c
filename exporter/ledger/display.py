"""How a computed money figure is shown: rounded once per record, half-even, to its currency's places.

The one rounding engine of `ledger export` and `ledger report`: the export rounds each row's
computed figures with shown_in(), and the report sums those same rounded figures, so its totals are
the sums of the export's rows to the last digit. The ledger and the replay keep every figure exact.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Context, Decimal
from functools import cache

# Decimal places a computed value is shown to, by valuation currency: TRY and USDT are priced in
# kuruş and cents; any other valuation currency (a crypto asset) to the 8 places BTCTurk gives
# crypto amounts. A proportional split of cost keeps 60 significant digits, which is exact for the
# ledger but no figure a person reads.
_PLACES = {"TRY": 2, "USDT": 2}
_OTHER_PLACES = 8
# quantize's own context is widened: a 2-place TRY figure of 30 integer digits would overflow 28.
_WIDE = Context(prec=200)


def display_places(currency: str) -> int:
    """The decimal places a computed figure in `currency` is shown to (2 for TRY and USDT, else 8)."""
    return _PLACES.get(currency.upper(), _OTHER_PLACES)


@cache  # one per currency name: a report or export rounds a million figures in a few currencies
def shown_in(currency: str) -> Callable[[Decimal], Decimal]:
    """How a figure in `currency` is shown: half-even to display_places, so rounding many rows biases
    no sum; its quantum found once."""
    quantum = Decimal(1).scaleb(-display_places(currency))

    def shown(amount: Decimal) -> Decimal:
        # Positional: quantize's keywords cost more than the rounding itself.
        return amount.quantize(quantum, ROUND_HALF_EVEN, _WIDE)

    return shown
