"""Which lots a sale consumes under each lot method (fifo, lifo, hifo): pure functions, no I/O.

A lot is what one receipt (a buy or a deposit) added: its time, quantity and cost in the valuation
currency. Giving away a quantity takes whole lots in the method's order and, from the last one, a
part of it at the same unit cost:

* `fifo`: the oldest lot first;
* `lifo`: the newest lot first;
* `hifo`: the lot of the highest unit cost (cost / quantity) first, the older one first on a tie.

`pick_*` state the rule: what giving a quantity would take from a list of lots, oldest first.
`LotBook` is what a replay keeps per asset; it takes the same parts, but in O(log n) a lot for hifo
(a heap) and O(1) for fifo and lifo (a deque), so a history of 100,000 trades stays fast.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import count
from typing import Literal, NamedTuple

LotMethod = Literal["fifo", "lifo", "hifo"]
LOT_METHODS: tuple[LotMethod, ...] = ("fifo", "lifo", "hifo")
_ZERO = Decimal(0)
_FIRST = Decimal("-Infinity")


@dataclass(slots=True)
class Lot:
    """What is left of one receipt; mutable so a partly sold lot shrinks in place."""

    acquired_ms: int
    quantity: Decimal
    cost: Decimal


class Taken(NamedTuple):
    """A part of a lot that one sale or withdrawal consumed (a NamedTuple: cheap to make, as records)."""

    acquired_ms: int
    quantity: Decimal
    cost: Decimal


def _part(lot: Lot, quantity: Decimal) -> Taken:
    """`quantity` (at most the lot's) of `lot` at its unit cost; the whole lot's cost when all of it."""
    if lot.quantity <= quantity:
        return Taken(lot.acquired_ms, lot.quantity, lot.cost)
    return Taken(lot.acquired_ms, quantity, _share(lot, quantity))


def _share(lot: Lot, quantity: Decimal) -> Decimal:
    """The cost of `quantity` (less than the lot holds) of `lot`, at its unit cost."""
    return lot.cost * quantity / lot.quantity


def _take_part(lot: Lot, quantity: Decimal, parts: list[Taken] | None) -> Decimal:
    """Take `quantity` (less than the lot holds) off `lot` at its unit cost, the part appended to
    `parts` unless None; the cost taken. The lot keeps the rest."""
    cost = _share(lot, quantity)
    if parts is not None:
        parts.append(Taken(lot.acquired_ms, quantity, cost))
    lot.quantity -= quantity
    lot.cost -= cost
    return cost


def _hifo_key(lot: Lot, seq: int) -> tuple[Decimal, int]:
    # A lot of no quantity (a receipt of zero with a cost) has an unbounded unit cost: it goes first.
    # Flat and numeric, as the heap compares it on every push and pop.
    return (-(lot.cost / lot.quantity) if lot.quantity > 0 else _FIRST, seq)


def _pick(lots: Sequence[Lot], quantity: Decimal, order: Sequence[int]) -> list[tuple[int, Taken]]:
    taken: list[tuple[int, Taken]] = []
    for index in order:
        if quantity <= 0:
            break
        part = _part(lots[index], quantity)
        taken.append((index, part))
        quantity -= part.quantity
    return taken


def pick_fifo(lots: Sequence[Lot], quantity: Decimal) -> list[tuple[int, Taken]]:
    """(index, part) of `lots` (oldest first) that giving `quantity` takes, oldest lot first."""
    return _pick(lots, quantity, range(len(lots)))


def pick_lifo(lots: Sequence[Lot], quantity: Decimal) -> list[tuple[int, Taken]]:
    """(index, part) of `lots` (oldest first) that giving `quantity` takes, newest lot first."""
    return _pick(lots, quantity, range(len(lots) - 1, -1, -1))


def pick_hifo(lots: Sequence[Lot], quantity: Decimal) -> list[tuple[int, Taken]]:
    """(index, part) of `lots` (oldest first) that giving `quantity` takes, highest unit cost first."""
    return _pick(lots, quantity, sorted(range(len(lots)), key=lambda i: _hifo_key(lots[i], i)))


PICKS: dict[LotMethod, Callable[[Sequence[Lot], Decimal], list[tuple[int, Taken]]]] = {
    "fifo": pick_fifo,
    "lifo": pick_lifo,
    "hifo": pick_hifo,
}


class LotBook:
    """The lots of one asset in a replay, taken by one method."""

    __slots__ = ("_heap", "_lots", "_seq", "method")

    def __init__(self, method: LotMethod) -> None:
        self.method = method
        self._lots: deque[Lot] = deque()  # fifo, lifo: oldest first
        self._heap: list[tuple[Decimal, int, Lot]] = []  # hifo: (-unit cost, seq, lot)
        self._seq = count()

    def add(self, lot: Lot) -> None:
        """A receipt's lot."""
        if self.method == "hifo":
            heapq.heappush(self._heap, (*_hifo_key(lot, next(self._seq)), lot))
        else:
            self._lots.append(lot)

    def lots(self) -> list[Lot]:
        """Every lot, oldest first."""
        if self.method == "hifo":
            return [lot for _, _, lot in sorted(self._heap, key=lambda entry: entry[1])]
        return list(self._lots)

    def clear(self) -> list[Taken]:
        """Take every lot (a give of more than is held); the parts, oldest first."""
        taken = [Taken(lot.acquired_ms, lot.quantity, lot.cost) for lot in self.lots()]
        self._lots.clear()
        self._heap.clear()
        return taken

    def take(self, quantity: Decimal, parts: list[Taken] | None = None) -> Decimal:
        """Remove `quantity` (at most what the lots hold) by the method; the cost removed. With
        `parts`, the parts taken are appended to it, in order (a replay keeping no events passes none,
        and no part is made)."""
        # One loop per store, whole lots inlined: this runs once per sale of a 100,000-trade replay (a
        # part of a lot, _take_part, ends the take).
        removed = _ZERO
        if self.method == "hifo":
            heap = self._heap
            while quantity > 0:
                lot = heap[0][2]
                if lot.quantity <= quantity:
                    heapq.heappop(heap)
                    if parts is not None:
                        parts.append(Taken(lot.acquired_ms, lot.quantity, lot.cost))
                    quantity -= lot.quantity
                    removed += lot.cost
                else:  # the unit cost stays, so does the lot's place in the heap
                    return removed + _take_part(lot, quantity, parts)
            return removed
        lots = self._lots
        newest = self.method == "lifo"
        while quantity > 0:
            lot = lots[-1] if newest else lots[0]
            if lot.quantity <= quantity:
                if newest:
                    lots.pop()
                else:
                    lots.popleft()
                if parts is not None:
                    parts.append(Taken(lot.acquired_ms, lot.quantity, lot.cost))
                quantity -= lot.quantity
                removed += lot.cost
            else:
                return removed + _take_part(lot, quantity, parts)
        return removed
