"""Which lots a sale consumes under each lot method (fifo, lifo, hifo): pure functions, no I/O.

A lot is what one receipt (a buy or a deposit) added: its time, quantity and cost in the valuation
currency. Giving away a quantity takes whole lots in the method's order and, from the last one, a
part of it at the same unit cost:

* `fifo`: the oldest lot first;
* `lifo`: the newest lot first;
* `hifo`: the lot of the highest unit cost (cost / quantity) first, the older one first on a tie.

`pick_*` only say what would be taken; `take` applies a pick to a holding's lots.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

LotMethod = Literal["fifo", "lifo", "hifo"]
LOT_METHODS: tuple[LotMethod, ...] = ("fifo", "lifo", "hifo")
_ZERO = Decimal(0)


@dataclass(slots=True)
class Lot:
    """What is left of one receipt; mutable so a partly sold lot shrinks in place."""

    acquired_ms: int
    quantity: Decimal
    cost: Decimal


@dataclass(frozen=True, slots=True)
class Taken:
    """A part of a lot that one sale or withdrawal consumed: `index` into the lots it was picked from."""

    index: int
    acquired_ms: int
    quantity: Decimal
    cost: Decimal


Order = Callable[[Sequence[Lot]], Sequence[int]]


def _fifo(lots: Sequence[Lot]) -> Sequence[int]:
    return range(len(lots))


def _lifo(lots: Sequence[Lot]) -> Sequence[int]:
    return range(len(lots) - 1, -1, -1)


def _hifo(lots: Sequence[Lot]) -> Sequence[int]:
    # A lot of no quantity (a receipt of zero with a cost) has an unbounded unit cost: it goes first.
    def unit(i: int) -> tuple[int, Decimal, int]:
        lot = lots[i]
        return (1, -(lot.cost / lot.quantity), i) if lot.quantity > 0 else (0, _ZERO, i)

    return sorted(range(len(lots)), key=unit)


ORDERS: dict[LotMethod, Order] = {"fifo": _fifo, "lifo": _lifo, "hifo": _hifo}


def _pick(lots: Sequence[Lot], quantity: Decimal, order: Order) -> list[Taken]:
    taken: list[Taken] = []
    for index in order(lots):
        if quantity <= 0:
            break
        lot = lots[index]
        if lot.quantity <= quantity:
            taken.append(Taken(index, lot.acquired_ms, lot.quantity, lot.cost))
            quantity -= lot.quantity
        else:
            taken.append(Taken(index, lot.acquired_ms, quantity, lot.cost * quantity / lot.quantity))
            quantity = _ZERO
    return taken


def pick_fifo(lots: Sequence[Lot], quantity: Decimal) -> list[Taken]:
    """The parts of `lots` (oldest first) that giving `quantity` takes, oldest lot first."""
    return _pick(lots, quantity, _fifo)


def pick_lifo(lots: Sequence[Lot], quantity: Decimal) -> list[Taken]:
    """The parts of `lots` (oldest first) that giving `quantity` takes, newest lot first."""
    return _pick(lots, quantity, _lifo)


def pick_hifo(lots: Sequence[Lot], quantity: Decimal) -> list[Taken]:
    """The parts of `lots` (oldest first) that giving `quantity` takes, highest unit cost first."""
    return _pick(lots, quantity, _hifo)


PICKS: dict[LotMethod, Callable[[Sequence[Lot], Decimal], list[Taken]]] = {
    "fifo": pick_fifo,
    "lifo": pick_lifo,
    "hifo": pick_hifo,
}


def take(lots: deque[Lot], quantity: Decimal, method: LotMethod) -> list[Taken]:
    """Remove `quantity` (at most what the lots hold) from `lots` by `method`; the parts taken."""
    taken = PICKS[method](lots, quantity)
    emptied = set()
    for part in taken:
        lot = lots[part.index]
        if part.quantity == lot.quantity:
            emptied.add(part.index)
        else:
            lot.quantity -= part.quantity
            lot.cost -= part.cost
    if method == "fifo":  # the emptied lots are the oldest ones: O(1) each
        for _ in emptied:
            lots.popleft()
    elif method == "lifo":
        for _ in emptied:
            lots.pop()
    elif emptied:
        kept = [lot for i, lot in enumerate(lots) if i not in emptied]
        lots.clear()
        lots.extend(kept)
    return taken
