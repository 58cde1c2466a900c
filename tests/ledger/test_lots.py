"""Lot methods: which lots a sale takes under fifo, lifo and hifo, worked by hand (docs/cost-basis.md)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from costbasis_example import (
    BTCTRY,
    EXAMPLE_PRICES,
    EXAMPLE_TRADES,
    EXAMPLE_TRANSFERS,
    Prices,
    t,
    trade,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.ledger.costbasis import Position, compute
from exporter.ledger.lots import PICKS, Lot, LotBook, Taken, pick_fifo, pick_hifo, pick_lifo

# Three buys of 1 BTC at 1,000, 3,000 and 2,000 TRY (docs/cost-basis.md, "Choosing lots").
LOTS = (Lot(t(1), D(1), D(1000)), Lot(t(2), D(1), D(3000)), Lot(t(3), D(1), D(2000)))
THREE_BUYS = [
    trade(1, BTCTRY, "buy", "1", "1000", "0", "0"),
    trade(2, BTCTRY, "buy", "1", "3000", "0", "0"),
    trade(3, BTCTRY, "buy", "1", "2000", "0", "0"),
    trade(4, BTCTRY, "sell", "-1.5", "2500", "0", "0"),  # proceeds 3,750
]


def test_fifo_takes_the_oldest_lot_first() -> None:
    assert pick_fifo(LOTS, D("1.5")) == [(0, Taken(t(1), D(1), D(1000))), (1, Taken(t(2), D("0.5"), D(1500)))]


def test_lifo_takes_the_newest_lot_first() -> None:
    assert pick_lifo(LOTS, D("1.5")) == [(2, Taken(t(3), D(1), D(2000))), (1, Taken(t(2), D("0.5"), D(1500)))]


def test_hifo_takes_the_highest_unit_cost_first() -> None:
    assert pick_hifo(LOTS, D("1.5")) == [(1, Taken(t(2), D(1), D(3000))), (2, Taken(t(3), D("0.5"), D(1000)))]


def test_hifo_takes_the_older_of_two_lots_of_one_unit_cost_first() -> None:
    lots = [Lot(t(1), D(2), D(4000)), Lot(t(2), D(1), D(2000)), Lot(t(3), D(1), D(1000))]
    assert pick_hifo(lots, D(1)) == [(0, Taken(t(1), D(1), D(2000)))]


def test_a_pick_leaves_the_lots_as_they_were() -> None:
    lots = [Lot(t(1), D(1), D(1000)), Lot(t(2), D(1), D(3000))]
    for pick in (pick_fifo, pick_lifo, pick_hifo):
        pick(lots, D("1.5"))
    assert lots == [Lot(t(1), D(1), D(1000)), Lot(t(2), D(1), D(3000))]


@pytest.mark.parametrize(
    ("method", "left"),
    [
        ("fifo", [Lot(t(2), D("0.5"), D(1500)), Lot(t(3), D(1), D(2000))]),
        ("lifo", [Lot(t(1), D(1), D(1000)), Lot(t(2), D("0.5"), D(1500))]),
        ("hifo", [Lot(t(1), D(1), D(1000)), Lot(t(3), D("0.5"), D(1000))]),
    ],
)
def test_a_lot_book_removes_what_was_picked_and_shrinks_the_last_lot(method: str, left: list[Lot]) -> None:
    book = LotBook(method)  # type: ignore[arg-type]
    for lot in LOTS:
        book.add(Lot(lot.acquired_ms, lot.quantity, lot.cost))
    parts: list[Taken] = []
    removed = book.take(D("1.5"), parts)
    assert parts == [part for _, part in PICKS[method](LOTS, D("1.5"))]  # type: ignore[index]
    assert removed == sum(part.cost for part in parts)
    assert book.lots() == left


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["fifo", "lifo", "hifo"]),
    st.lists(st.tuples(st.booleans(), st.integers(1, 5), st.integers(0, 9)), min_size=1, max_size=30),
)
def test_a_lot_book_takes_what_the_pick_rule_says(method: str, steps: list[tuple[bool, int, int]]) -> None:
    """Receipts and gives in any order: the book's fast structure takes the parts the rule names."""
    book, reference = LotBook(method), []  # type: ignore[arg-type]
    for n, (receive, quantity, unit) in enumerate(steps):
        if receive:
            lot = Lot(n, D(quantity), D(quantity * unit))
            book.add(Lot(lot.acquired_ms, lot.quantity, lot.cost))
            reference.append(lot)
            continue
        held = sum((lot.quantity for lot in reference), D(0))
        give = min(D(quantity) / 2, held)
        picked = PICKS[method](reference, give)  # type: ignore[index]
        parts: list[Taken] = []
        removed = book.take(give, parts)
        assert parts == [part for _, part in picked]
        assert removed == sum((part.cost for part in parts), D(0))
        for index, part in picked:
            reference[index].quantity -= part.quantity
            reference[index].cost -= part.cost
        reference = [lot for lot in reference if lot.quantity > 0 or lot.cost > 0]
        assert sorted(book.lots(), key=lambda lot: lot.acquired_ms) == reference


@pytest.mark.parametrize(
    ("method", "cost", "realized"),
    [
        # 6,000 for 3 BTC; 1.5 sold remove half: 3,000.
        ("average", D(3000), D(750)),
        ("fifo", D(3500), D(1250)),  # removes 1,000 + 1,500
        ("lifo", D(2500), D(250)),  # removes 2,000 + 1,500
        ("hifo", D(2000), D(-250)),  # removes 3,000 + 1,000
    ],
)
def test_each_method_on_three_buys_and_a_sale(method: str, cost: D, realized: D) -> None:
    btc = compute(THREE_BUYS, [], "TRY", Prices({}), method).positions["BTC"]  # type: ignore[arg-type]
    assert btc == Position("BTC", D("1.5"), cost, realized)


@pytest.mark.parametrize("method", ["lifo", "hifo"])
def test_the_worked_example_under_lifo_and_hifo(method: str) -> None:
    """In the doc's example both take lot C then B at step 5, and D then part of A at step 8."""
    result = compute(EXAMPLE_TRADES, EXAMPLE_TRANSFERS, "TRY", Prices(EXAMPLE_PRICES), method)  # type: ignore[arg-type]
    assert result.positions["BTC"] == Position("BTC", D("0.36"), D("720849.6"), D("186932"))
    assert result.positions["USDT"] == Position("USDT", D("6996.46"), D("238160.3379752"), D("2883.0379752"))
    assert result.realised == D("189815.0379752")
    held = sum(p.cost for p in result.positions.values())
    assert held == D("2214596.7379752") == D("2210000") - D("185218.3") + result.realised


def test_the_lots_a_sale_and_a_withdrawal_took_are_on_their_events() -> None:
    result = compute(
        EXAMPLE_TRADES, EXAMPLE_TRANSFERS, "TRY", Prices(EXAMPLE_PRICES), "lifo", keep_events=True
    )
    by_step = {e.record.timestamp_ms: e.lots for e in result.events if e.lots}
    assert [(p.acquired_ms, p.quantity, p.cost) for p in by_step[t(5)]] == [
        (t(4), D("0.5"), D("1101298")),
        (t(3), D("0.1"), D("210000")),
    ]
    assert [(p.acquired_ms, p.quantity, p.cost) for p in by_step[t(8)]] == [
        (t(7), D("0.05"), D("105123.9")),
        (t(2), D("0.04"), D("80094.4")),
    ]


def test_average_cost_takes_no_lots() -> None:
    result = compute(THREE_BUYS, [], "TRY", Prices({}), "average", keep_events=True)
    assert all(e.lots == () for e in result.events)
