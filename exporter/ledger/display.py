"""How a computed money figure is shown: rounded once per record, half-even, to its currency's places.

The one rounding engine of `ledger export` and `ledger report`: the export rounds each row's
computed figures with shown(), and the report sums those same rounded figures, so its totals are
the sums of the export's rows to the last digit. The ledger and the replay keep every figure exact.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

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


# The quantum of each currency's places, made once: a report rounds a million figures.
_QUANTA = {currency: Decimal(1).scaleb(-places) for currency, places in _PLACES.items()}
_OTHER_QUANTUM = Decimal(1).scaleb(-_OTHER_PLACES)


def shown(amount: Decimal, currency: str) -> Decimal:
    """`amount` in `currency` as shown: half-even to display_places, so rounding many rows biases no sum."""
    exponent = _QUANTA.get(currency) or _QUANTA.get(currency.upper(), _OTHER_QUANTUM)
    return amount.quantize(exponent, rounding=ROUND_HALF_EVEN, context=_WIDE)
