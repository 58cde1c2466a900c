"""The unit-value engine (ledger/returns.py: unit_steps) against the README's worked example."""

from __future__ import annotations

import re
from decimal import Decimal as D
from pathlib import Path

from costbasis_example import Prices

from exporter.api.records import Trade, Transfer
from exporter.ledger.holdings import worth
from exporter.ledger.quantities import Quantities
from exporter.ledger.returns import UnitStep, unit_steps, unit_value, units_at

README = Path(__file__).resolve().parents[2] / "README.md"
T1, T2, T3, T4 = 1_000_000, 2_000_000, 3_000_000, 4_000_000


def readme_rows() -> list[list[str]]:
    """The worked example's table rows under 'Time-weighted return: the unit value', as text cells."""
    section = README.read_text().split("#### Time-weighted return: the unit value", 1)[1]
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if re.match(r"\| \d ", line)
    ]


def example() -> list[Trade | Transfer]:
    return [
        Transfer("fiat", 1, T1, "deposit", "TRY", D(10000)),
        Trade(2, None, T1 + 1, "BTC", "TRY", "buy", D(10000), D(1), D(0), D(0)),
        Transfer("fiat", 3, T2, "deposit", "TRY", D(6000)),
        Transfer("fiat", 4, T3, "withdrawal", "TRY", D(-3000)),
    ]


def test_the_readme_example_to_the_last_digit() -> None:
    rows = readme_rows()
    assert [row[0] for row in rows] == ["1", "2", "3", "4"]
    moments = (T1, T2, T3, T4)
    prices = Prices({("BTC", "TRY", when): D(row[1]) for when, row in zip(moments, rows, strict=True)})
    records = example()
    steps = unit_steps(records, "TRY", prices)
    assert steps == [UnitStep(T1, D(10000)), UnitStep(T2, D(15000)), UnitStep(T3, D(12000))]
    for when, row in zip(moments, rows, strict=True):
        held = Quantities()
        for record in records:
            if record.timestamp_ms < when:
                held.apply(record)
        before = worth(held.held, "TRY", when, prices)
        assert before == D(row[3]), row
        # the unit value of a flow's moment is the value just before it over the units before it
        units_before = units_at(steps, when - 1) if when != T1 else None
        value = D(1) if units_before is None else unit_value(before, units_before)
        assert value == D(row[4]), row
        assert units_at(steps, when) == D(row[5]), row
    assert unit_value(D(16500), units_at(steps, T4)) == D("1.375")


def test_an_unpriced_flow_leaves_the_unit_value_unknown_from_then_on() -> None:
    records = [
        *example(),
        Transfer("crypto", 5, T4, "deposit", "BTC", D(1)),
        Transfer("fiat", 6, T4 + 1, "deposit", "TRY", D(5)),
    ]
    prices = Prices({("BTC", "TRY", T2): D(12000), ("BTC", "TRY", T3): D(9000)})
    steps = unit_steps(records, "TRY", prices)
    assert [s.units for s in steps] == [D(10000), D(15000), D(12000), None, None]
    assert unit_value(D(20000), units_at(steps, T4 + 5)) is None
    assert units_at(steps, T1 - 1) is None, "before the first flow there are no units"


def test_trades_issue_no_units_and_a_full_withdrawal_then_a_deposit_continue_the_unit_value() -> None:
    records: list[Trade | Transfer] = [
        Transfer("fiat", 1, T1, "deposit", "TRY", D(100)),
        Trade(2, None, T1 + 1, "BTC", "TRY", "buy", D(100), D(1), D(0), D(0)),
        Trade(3, None, T2, "BTC", "TRY", "sell", D(150), D(1), D(0), D(0)),
        Transfer("fiat", 4, T3, "withdrawal", "TRY", D(-150)),
        Transfer("fiat", 5, T4, "deposit", "TRY", D(300)),
    ]
    steps = unit_steps(records, "TRY", Prices({}))
    assert [s.units for s in steps] == [D(100), D(0), D(200)], (
        "the new deposit buys at the last unit value, 1.5"
    )
    assert unit_value(D(300), units_at(steps, T4)) == D("1.5")
    assert unit_value(D(0), units_at(steps, T3)) is None, "no unit outstanding: no unit value"
