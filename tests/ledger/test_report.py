"""ledger report, holdings and lots as pure functions: a two-month history worked by hand."""

from __future__ import annotations

import io
import json
import zoneinfo
from datetime import datetime, timezone
from decimal import Decimal as D
from decimal import localcontext

import pytest
from costbasis_example import EXAMPLE_PRICES, EXAMPLE_TRADES, EXAMPLE_TRANSFERS, Prices

from exporter.api.records import Trade, Transfer
from exporter.ledger import export, lot_export, report, tables
from exporter.ledger.costbasis import CONTEXT, compute, order
from exporter.ledger.holdings import holdings, worth
from exporter.ledger.periods import bounds, iso_local, parse_moment, to_ms
from exporter.ledger.quantities import Quantities
from exporter.ledger.returns import Units

IST = zoneinfo.ZoneInfo("Europe/Istanbul")
UTC = timezone.utc


def ms(text: str) -> int:
    """Unix ms of an ISO time with its offset."""
    return to_ms(datetime.fromisoformat(text))


JAN1, FEB1, MAR1 = ms("2026-01-01T00:00+03:00"), ms("2026-02-01T00:00+03:00"), ms("2026-03-01T00:00+03:00")
SALE = ms("2026-01-31T22:30Z")  # 01:30 on 1 February in Istanbul, still January in UTC
OUT = ms("2026-02-15T12:00Z")


def history() -> tuple[list[Trade], list[Transfer]]:
    trades = [
        Trade(1, None, ms("2026-01-20T12:00Z"), "BTC", "TRY", "buy", D(5000), D(1), D(-5), D(-1)),
        Trade(2, None, SALE, "BTC", "TRY", "sell", D(6000), D("-0.5"), D(-3), D(0)),
    ]
    transfers = [
        Transfer("fiat", 3, ms("2026-01-10T12:00Z"), "deposit", "TRY", D(10000)),
        Transfer("fiat", 4, OUT, "withdrawal", "TRY", D(-1000)),
    ]
    return trades, transfers


PRICES = {("BTC", "TRY", FEB1): D(5500), ("BTC", "TRY", OUT): D(6500), ("BTC", "TRY", MAR1): D(7000)}


def monthly(zone: zoneinfo.ZoneInfo | timezone = IST, **kw: object) -> list[dict[str, object]]:
    trades, transfers = history()
    args = {"since_ms": None, "until_ms": MAR1, **kw}
    return report.report(
        "main", trades, transfers, ("TRY",), Prices(PRICES), "average", "month", zone, **args
    )  # type: ignore[arg-type]


def test_periods_are_named_and_cut_in_the_zone() -> None:
    assert bounds(SALE, "month", IST) == ("2026-02", FEB1, MAR1)
    assert bounds(SALE, "month", UTC)[0] == "2026-01"
    assert bounds(ms("2026-11-30T20:59Z"), "quarter", IST) == (
        "2026-Q4",
        ms("2026-10-01T00:00+03:00"),
        ms("2027-01-01T00:00+03:00"),
    )
    assert bounds(ms("2026-12-31T21:00Z"), "year", IST) == (
        "2027",
        ms("2027-01-01T00:00+03:00"),
        ms("2028-01-01T00:00+03:00"),
    )


def test_dates_are_read_in_the_zone_unless_marked_utc() -> None:
    assert parse_moment("2026-02-01", "--at", IST) == FEB1
    assert parse_moment("2026-01-31T22:30", "--at", UTC) == SALE
    assert parse_moment("2026-01-31T22:30:00Z", "--at", IST) == SALE
    with pytest.raises(ValueError, match=r"^--since: expected a date"):
        parse_moment("last week", "--since", IST)
    assert iso_local(FEB1, IST) == "2026-02-01T00:00:00+03:00"


def test_a_month_report_worked_by_hand() -> None:
    rows = monthly()
    jan = {r["asset"]: r for r in rows if r["period"] == "2026-01"}
    feb = {r["asset"]: r for r in rows if r["period"] == "2026-02"}
    assert set(jan) == {"BTC", "TRY"} and set(feb) == {"BTC", "TRY"}
    assert (jan["BTC"]["fees"], jan["BTC"]["taxes"], jan["BTC"]["realized_profit"]) == (5, 1, 0)
    assert jan["TRY"]["deposits"] == 10000
    # Held at the end of January: 4,994 TRY and 1 BTC at 5,500.
    assert (jan["TRY"]["value_start"], jan["TRY"]["value_end"]) == (0, D(10494))
    assert jan["BTC"]["time_weighted_return"] == D("0.0494")
    # The sale at 01:30 Istanbul time is February's: 2,997 received for half of 5,006.
    btc = feb["BTC"]
    assert (btc["realized_profit"], btc["proceeds"], btc["cost_of_sold"], btc["fees"]) == (494, 2997, 2503, 3)
    assert feb["TRY"]["withdrawals"] == 1000
    # At the withdrawal 7,991 TRY + 0.5 BTC at 6,500 = 11,241 were held: units 10,494 become
    # 10,494 x 10,241 / 11,241; at the end 6,991 TRY + 0.5 BTC at 7,000 = 10,491.
    assert btc["value_start"] == D(10494) and btc["value_end"] == D(10491)
    with localcontext(CONTEXT):
        expected = (D(10491) * D(11241) / (D(10494) * D(10241)) - 1).quantize(D("1e-10"))
    assert btc["time_weighted_return"] == expected == D("0.0973329215")
    assert all(set(r) == set(report.COLUMNS) for r in rows)


def test_utc_periods_put_the_sale_in_january() -> None:
    rows = monthly(UTC, until_ms=ms("2026-03-01T00:00Z"))
    jan = {r["asset"]: r for r in rows if r["period"] == "2026-01"}
    assert jan["BTC"]["realized_profit"] == 494


def test_totals_equal_the_sums_of_ledger_export() -> None:
    trades, transfers = history()
    basis = compute(trades, transfers, "TRY", Prices(PRICES), "average", keep_events=True)
    exported = export.rows("main", basis, Prices(PRICES))
    rows = monthly()
    assert sum(r["realized_profit"] for r in rows) == sum(r.realized or 0 for r in exported)  # type: ignore[misc]
    deposits = sum(r.value or 0 for r in exported if r.type == "deposit")
    withdrawals = sum(r.value or 0 for r in exported if r.type == "withdrawal")
    assert (sum(r["deposits"] for r in rows), sum(r["withdrawals"] for r in rows)) == (deposits, withdrawals)  # type: ignore[misc]
    assert sum(r["fees"] for r in rows) == sum(-(r.fee or 0) for r in exported)  # type: ignore[misc]


def test_a_missing_price_leaves_values_and_the_return_absent_not_guessed() -> None:
    trades, transfers = history()
    prices = {k: v for k, v in PRICES.items() if k[2] != OUT}  # no BTC price at the withdrawal
    rows = report.report(
        "main", trades, transfers, ("TRY",), Prices(prices), "average", "month", IST, None, MAR1
    )
    feb = [r for r in rows if r["period"] == "2026-02"]
    assert all(r["time_weighted_return"] is None for r in feb)
    assert all(r["value_end"] == D(10491) for r in feb)  # the end itself has its price
    # A TRY withdrawal needs no price: its value is known.
    assert {r["asset"]: r["withdrawals"] for r in feb}["TRY"] == 1000
    rows = report.report("main", trades, transfers, ("TRY",), Prices({}), "average", "month", IST, None, MAR1)
    assert all(r["value_end"] is None and r["time_weighted_return"] is None for r in rows)


def test_since_and_until_clip_the_periods() -> None:
    rows = monthly(since_ms=ms("2026-01-15T00:00+03:00"), until_ms=ms("2026-02-10T00:00+03:00"))
    assert sorted({r["period"] for r in rows}) == ["2026-01", "2026-02"]
    jan = {r["asset"]: r for r in rows if r["period"] == "2026-01"}
    assert jan["TRY"]["deposits"] == 0, "the deposit of 10 January is before --since"
    assert jan["TRY"]["value_start"] == 10000
    feb = [r for r in rows if r["period"] == "2026-02"]
    assert all(r["withdrawals"] == 0 for r in feb), "the withdrawal of 15 February is after --until"


def test_units_redeem_at_the_unit_value_and_a_full_withdrawal_keeps_the_return() -> None:
    units = Units(D(100))
    units.flow(D(110), D(-110))  # everything out at a unit value of 1.1
    assert units.units == 0
    assert units.result(D(0)) == D("0.1")
    assert Units(D(0)).result(D(0)) is None, "nothing invested: no return"
    gap = Units(D(0))
    gap.flow(D(50), D(10))  # 50 held with no units behind it
    assert gap.result(D(60)) is None


def test_holdings_at_a_moment_value_what_was_held_then() -> None:
    trades, transfers = history()
    rows = holdings("main", trades, transfers, ("TRY",), FEB1, "2026-02-01", Prices(PRICES), "fifo")
    assert [(r["asset"], r["quantity"], r["value"], r["cost_basis"]) for r in rows] == [
        ("BTC", D(1), D(5500), D(5006)),
        ("TRY", D(4994), D(4994), D(4994)),
    ]
    unpriced = holdings("main", trades, transfers, ("TRY",), OUT - 1, "x", Prices({}), "fifo")
    assert {r["asset"]: r["value"] for r in unpriced} == {"BTC": None, "TRY": D(7991)}
    assert worth({"BTC": D("0.5"), "TRY": D(6991)}, "TRY", MAR1, Prices(PRICES)) == D(10491)
    assert worth({"BTC": D("0.5"), "TRY": D(6991)}, "TRY", OUT - 1, Prices(PRICES)) is None


def test_quantities_held_do_not_wait_for_prices() -> None:
    """In USDT nothing here has a price: cost is unknown, but what was held is not."""
    trades, transfers = history()
    rows = holdings("main", trades, transfers, ("USDT",), MAR1, "x", Prices({}), "average")
    assert [(r["asset"], r["quantity"], r["value"], r["cost_basis"]) for r in rows] == [
        ("BTC", D("0.5"), None, None),
        ("TRY", D(6991), None, None),
    ]
    quantities = Quantities()
    for record in order([*trades, *transfers]):
        quantities.apply(record)
    assert quantities.held == {"TRY": D(6991), "BTC": D("0.5")}
    quantities.apply(Trade(9, None, MAR1, "BTC", "TRY", "sell", D(1), D(-2), D(0), D(0)))
    assert quantities.held["BTC"] == 0, "selling more than held leaves zero, never less"


def test_lot_rows_name_each_lot_a_sale_took() -> None:
    basis = compute(
        EXAMPLE_TRADES, EXAMPLE_TRANSFERS, "TRY", Prices(EXAMPLE_PRICES), "hifo", keep_events=True
    )
    rows = lot_export.rows("alice", basis)
    sale = [(r["acquired_ms"], r["quantity"], r["cost"]) for r in rows if r["id"] == "105"]
    step = {t.id: t.timestamp_ms for t in EXAMPLE_TRADES} | {t.id: t.timestamp_ms for t in EXAMPLE_TRANSFERS}
    assert sale == [(step[104], D("0.5"), D("1101298")), (step[203], D("0.1"), D("210000"))]
    assert {r["type"] for r in rows} == {"sell", "buy", "withdrawal"}  # the USDT-paid buy gave USDT lots


@pytest.mark.parametrize("fmt", tables.FORMATS)
def test_tables_write_exact_amounts_and_absent_cells(fmt: tables.Format) -> None:
    out = io.StringIO()
    tables.write(
        out,
        ("name", "n", "amount"),
        [{"name": "=x", "n": 3, "amount": D("1.50")}, {"name": "b", "n": 4, "amount": None}],
        fmt,
    )
    text = out.getvalue()
    if fmt == "json":
        assert json.loads(text) == [
            {"name": "=x", "n": 3, "amount": "1.5"},
            {"name": "b", "n": 4, "amount": None},
        ]
    elif fmt == "csv":
        assert text == "name,n,amount\n'=x,3,1.5\nb,4,\n"
    else:
        assert text.splitlines() == ["name  n  amount", "=x    3     1.5", "b     4       -"]


def test_the_table_rounds_long_amounts_for_reading_and_csv_keeps_them() -> None:
    third = D(1) / D(3)
    for fmt, expected in (("text", "0.33333333"), ("csv", str(third))):
        out = io.StringIO()
        tables.write(out, ("amount",), [{"amount": third}], fmt)  # type: ignore[arg-type]
        assert out.getvalue().splitlines()[1].strip() == expected
