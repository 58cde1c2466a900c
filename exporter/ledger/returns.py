"""A period's time-weighted return by units: pure arithmetic, no I/O.

At the period's start the account's value is split into units worth 1 each. An external flow (a
deposit, a withdrawal) issues or redeems units at the unit value of its moment, the value of what is
held just before it divided by the units outstanding; trades move value between assets inside the
account and issue nothing. The return is the unit value at the period's end minus 1, so money paid
in or taken out never counts as gain or loss.

Unknown stays unknown: a value or flow without a price, or value that appears with no units behind
it (records before the ledger's first one), ends the period's return as None.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from exporter.ledger.costbasis import CONTEXT

_ZERO = Decimal(0)
_ONE = Decimal(1)
# A ratio, not an amount: rounded half-even at the tenth decimal place (0.0000000001 = 1e-8 %).
PLACES = Decimal("1e-10")


class Units:
    """The unit ledger of one account, currency and period."""

    __slots__ = ("issued", "known", "unit_value", "units")

    def __init__(self, start_value: Decimal | None) -> None:
        self.known = start_value is not None and start_value >= 0
        self.units = start_value if start_value is not None and start_value > 0 else _ZERO
        self.issued = self.units > 0
        self.unit_value = _ONE

    def flow(self, held_before: Decimal | None, amount: Decimal | None) -> None:
        """A deposit (`amount` > 0) or withdrawal (< 0) when `held_before` was held; None: unknown."""
        if not self.known:
            return
        if held_before is None or amount is None:
            self.known = False
            return
        with localcontext(CONTEXT):
            if self.units > 0:
                if held_before <= 0:  # units outstanding and nothing to show for them: a gap
                    self.known = False
                    return
                self.unit_value = held_before / self.units
                # units x (value after / value before): a withdrawal of everything leaves exactly 0.
                self.units = self.units * (held_before + amount) / held_before
            elif held_before > 0:
                self.known = False  # value held without units: history before the ledger began
                return
            else:
                self.units = amount / self.unit_value
        if self.units < 0:
            self.known = False
        self.issued = self.issued or self.units > 0

    def result(self, end_value: Decimal | None) -> Decimal | None:
        """The period's return given the value at its end; None when unknown or nothing was invested."""
        if not self.known or end_value is None or not self.issued:
            return None
        with localcontext(CONTEXT):
            if self.units > 0:
                unit_value = end_value / self.units
            elif end_value > 0:
                return None  # value held once every unit was redeemed: not this ledger's to explain
            else:
                unit_value = self.unit_value  # all redeemed: the return is where the last one left
            return (unit_value - _ONE).quantize(PLACES)
