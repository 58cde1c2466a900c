"""A period's time-weighted return by units: pure arithmetic, no I/O.

At the period's start the account's value is split into units worth 1 each. An external flow (a
deposit, a withdrawal) issues or redeems units at the unit value of its moment, the value of what is
held just before it divided by the units outstanding; trades move value between assets inside the
account and issue nothing. The return is the unit value at the period's end minus 1, so money paid
in or taken out never counts as gain or loss.

Unknown stays unknown: a value or flow without a price, or value that appears with no units behind
it (records before the ledger's first one), ends the period's return as None.

The same units, over a whole history from its first record (`unit_steps`), give the unit value at
any moment as the portfolio's value divided by the units then outstanding: the
btcturk_portfolio_unit_value gauge, whose ratio between two moments is the time-weighted return.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from exporter.api.records import Trade, Transfer
from exporter.ledger.costbasis import CONTEXT, PriceAt, order
from exporter.ledger.holdings import rate, worth
from exporter.ledger.quantities import Quantities

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


# --- unit value: the units outstanding after each flow of a whole history (issue 17) -----------


@dataclass(frozen=True)
class UnitStep:
    """The units outstanding from `timestamp_ms` on; None once a flow could not be valued."""

    timestamp_ms: int
    units: Decimal | None


class UnitTrack:
    """The units of one account and currency over its whole history, fed record by record in
    costbasis.order(): units start at 0, so the unit value is 1 at the first flow. Trades issue
    nothing; once a flow or the value held just before it has no price, the units stay unknown."""

    __slots__ = ("_moves", "_units", "currency", "price_at", "quantities")

    def __init__(self, currency: str, price_at: PriceAt, quantities: Quantities | None = None) -> None:
        """With `quantities`, shared by the tracks of several currencies, the caller moves them once a
        record has been applied to every track (the quantities are the same in every currency)."""
        self.currency = currency.upper()
        self.price_at = price_at
        self._moves = quantities is None
        self.quantities = Quantities() if quantities is None else quantities
        self._units = Units(_ZERO)

    @property
    def units(self) -> Decimal | None:
        """The units outstanding now; None when unknown."""
        return self._units.units if self._units.known else None

    def apply(self, record: Trade | Transfer) -> UnitStep | None:
        """Move the units one record moves; the step when it is an external flow."""
        step = None
        if isinstance(record, Transfer) and record.currency is not None:
            when = record.timestamp_ms
            held_before = worth(self.quantities.held, self.currency, when, self.price_at)
            price = rate(record.currency, self.currency, when, self.price_at)
            deposit = record.balance_type == "deposit"
            with localcontext(CONTEXT):  # the sign too: a negation rounds to the context's precision
                amount = (
                    None
                    if price is None
                    else record.quantity * price
                    if deposit
                    else -record.quantity * price
                )
            self._units.flow(held_before, amount)
            step = UnitStep(when, self.units)
        if self._moves:
            self.quantities.apply(record)
        return step


def unit_steps(records: Iterable[Trade | Transfer], currency: str, price_at: PriceAt) -> list[UnitStep]:
    """One step per external flow of a whole history, from its first record (UnitTrack)."""
    track = UnitTrack(currency, price_at)
    return [step for record in order(records) if (step := track.apply(record)) is not None]


def units_at(steps: Sequence[UnitStep], at_ms: int) -> Decimal | None:
    """The units outstanding at `at_ms` (flows at or before it counted); None before the first flow."""
    found: Decimal | None = None
    for step in steps:
        if step.timestamp_ms > at_ms:
            break
        found = step.units
    return found


def unit_value(value: Decimal | None, units: Decimal | None) -> Decimal | None:
    """Portfolio value / units outstanding; None when either is unknown or no unit is outstanding."""
    if value is None or units is None or units <= 0:
        return None
    with localcontext(CONTEXT):
        return value / units
