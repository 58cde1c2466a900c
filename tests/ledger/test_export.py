"""`ledger export` rendering: the worked example's rows as CSV and JSON, exact and spreadsheet-safe."""

from __future__ import annotations

import csv
import io
import json
from decimal import Context, localcontext
from decimal import Decimal as D
from pathlib import Path

import pytest
from costbasis_example import EXAMPLE_PRICES, EXAMPLE_TRADES, EXAMPLE_TRANSFERS, Prices, t, trade, transfer

from exporter.api.records import loads, parse_trades, parse_transfers
from exporter.ledger.costbasis import compute
from exporter.ledger.export import COLUMNS, Row, rows, write, write_csv, write_json
from exporter.ledger.store import Ledger


def example_rows() -> list[Row]:
    basis = compute(EXAMPLE_TRADES, EXAMPLE_TRANSFERS, "TRY", Prices(EXAMPLE_PRICES), keep_events=True)
    return rows("alice", basis, Prices(EXAMPLE_PRICES))


def test_csv_has_one_row_per_record_with_value_and_realised_profit() -> None:
    out = io.StringIO()
    write_csv(out, example_rows())
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(parsed) == 8
    assert [r["type"] for r in parsed] == [
        "deposit",
        "buy",
        "deposit",
        "buy",
        "sell",
        "buy",
        "buy",
        "withdrawal",
    ]
    sell = parsed[4]
    assert sell == {
        "account": "alice",
        "time": "2025-11-24T16:05:00.000Z",
        "timestamp_ms": str(t(5)),
        "kind": "trade",
        "id": "105",
        "order_id": "",
        "type": "sell",
        "asset": "BTC",
        "quote": "TRY",
        "amount": "-0.6",
        "price": "2500000",
        "fee": "-1500",
        "tax": "-270",
        "fee_currency": "TRY",
        "value": "1498230",
        "fee_value": "1500",
        "tax_value": "270",
        "realized": "230884.8",
        "currency": "TRY",
        "shortfall": "",
    }
    usdt_buy = parsed[6]
    assert (usdt_buy["asset"], usdt_buy["quote"], usdt_buy["value"], usdt_buy["realized"]) == (
        "BTC",
        "USDT",
        "105123.9",
        "2883.04",  # 2,883.0379752 in the ledger, shown to the kuruş
    )
    withdrawal = parsed[7]
    assert (withdrawal["kind"], withdrawal["asset"], withdrawal["amount"], withdrawal["fee"]) == (
        "crypto",
        "BTC",
        "-0.09",
        "-0.0005",
    )
    assert withdrawal["fee_currency"] == "BTC"
    assert (withdrawal["value"], withdrawal["realized"], withdrawal["price"]) == ("216000", "", "")
    # Its fee valued in TRY at the withdrawal's BTC price (2,400,000), as `ledger report` sums it;
    # no tax in the record: absent, not 0.
    assert (withdrawal["fee_value"], withdrawal["tax_value"]) == ("1200", "")
    # A fee paid in USDT, valued at USDT's price then (35), shown to the kuruş: 3 x 35, 0.54 x 35.
    assert (usdt_buy["fee_value"], usdt_buy["tax_value"]) == ("105", "18.9")
    # A TRY-quoted buy realises nothing: its cell is empty, not 0.
    assert parsed[1]["realized"] == ""


def test_json_keeps_every_amount_an_exact_string() -> None:
    out = io.StringIO()
    write_json(out, example_rows())
    data = json.loads(out.getvalue(), parse_float=lambda text: pytest.fail(f"float in export: {text}"))
    assert len(data) == 8
    assert list(data[0]) == list(COLUMNS)
    assert data[4]["realized"] == "230884.8"
    assert data[4]["timestamp_ms"] == t(5)
    assert data[4]["order_id"] is None
    assert data[0]["price"] is None
    assert data[0]["value"] == "2000000"


def test_empty_exports_are_valid() -> None:
    out = io.StringIO()
    write(out, [], "json")
    assert json.loads(out.getvalue()) == []
    out = io.StringIO()
    write(out, [], "csv")
    assert out.getvalue() == ",".join(COLUMNS) + "\n"


def test_unpriced_records_and_big_ids() -> None:
    big = trade(1, ("ETH", "BTC"), "buy", "1", "0.05", "0", "0")
    big = big._replace(id=2**64 + 1)
    basis = compute([big], [transfer(2, "fiat", None, "5")], "TRY", Prices({}), keep_events=True)
    out = io.StringIO()
    write_json(out, rows("bob", basis, Prices({})))
    data = json.loads(out.getvalue())
    assert data[0]["id"] == str(2**64 + 1)
    assert data[0]["value"] is None and data[0]["realized"] is None
    assert data[1]["asset"] is None and data[1]["fee_currency"] is None


def test_text_a_spreadsheet_would_run_is_neutralised() -> None:
    hostile = trade(1, ("=HYPERLINK(1)", "TRY"), "buy", "1", "1", "0", "0")
    basis = compute([hostile], [], "TRY", Prices({}), keep_events=True)
    out = io.StringIO()
    write_csv(out, rows("@acct", basis, Prices({})))
    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert row["asset"] == "'=HYPERLINK(1)"
    assert row["account"] == "'@acct"
    assert row["amount"] == "1"  # numbers are left as they are, minus signs included


def test_time_is_integer_exact_at_the_last_millisecond() -> None:
    basis = compute([], [transfer(0, "fiat", "TRY", "1")], "TRY", Prices({}), keep_events=True)
    row = rows("a", basis, Prices({}))[0]
    edge = Row(**{**{k: getattr(row, k) for k in row.__slots__}, "timestamp_ms": 1764000059999})
    assert edge.time == "2025-11-24T16:00:59.999Z"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown export format 'xml'"):
        write(io.StringIO(), [], "xml")  # type: ignore[arg-type]


def test_rows_carry_the_valuation_currency() -> None:
    assert {r.currency for r in example_rows()} == {"TRY"}
    assert example_rows()[0].value == D("2000000")


@pytest.mark.parametrize(
    ("computed", "shown"),
    [
        (D("1498230.0"), "1498230"),
        (D("-0.000"), "0"),
        (D("0E-8"), "0"),
        (D("1E+3"), "1000"),
        (D("-2.50"), "-2.5"),
    ],
)
def test_computed_amounts_drop_only_trailing_zeros(computed: D, shown: str) -> None:
    row = example_rows()[4]
    changed = Row(**{**{k: getattr(row, k) for k in row.__slots__}, "value": computed, "realized": computed})
    out = io.StringIO()
    write_json(out, [changed])
    (data,) = json.loads(out.getvalue())
    assert (data["value"], data["realized"]) == (shown, shown)
    assert data["amount"] == "-0.6"


def test_from_api_answers_through_the_ledger_to_the_export(tmp_path: Path) -> None:
    """The whole path a sync and `ledger export` will take: JSON text -> records -> SQLite -> rows."""
    fixtures = Path(__file__).parents[1] / "fixtures" / "activity"
    answers = {name: loads((fixtures / f"{name}.json").read_bytes()) for name in ("trades", "crypto", "fiat")}
    with Ledger.open(tmp_path) as ledger:
        ledger.upsert_trades("alice", parse_trades(answers["trades"]))
        ledger.upsert_transfers("alice", parse_transfers(answers["crypto"], "crypto"))
        ledger.upsert_transfers("alice", parse_transfers(answers["fiat"], "fiat"))
        basis = compute(
            ledger.trades("alice"),
            ledger.transfers("alice"),
            "TRY",
            lambda asset, currency, when: D("2200000") if asset == "BTC" else None,
            keep_events=True,
        )
    out = io.StringIO()
    write_csv(out, rows("alice", basis, lambda asset, currency, when: None))
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["kind"], r["type"]) for r in parsed] == [
        ("fiat", "deposit"),
        ("fiat", "withdrawal"),
        ("crypto", "deposit"),
        ("trade", "buy"),
        ("trade", "buy"),
        ("crypto", "withdrawal"),
        ("trade", "sell"),
    ]
    assert parsed[-1]["id"] == "9223372036854775809"
    assert parsed[1]["asset"] == "" and parsed[1]["value"] == ""  # no currency: unattributed
    # 0.02 BTC deposited + 0.0125 bought - 0.001 withdrawn - 0.00512 sold.
    assert basis.positions["BTC"].quantity == D("0.02638")
    assert basis.unattributed == 1
    # The sell's realized profit: 11,520 - 27.1872 of fees and tax, less average cost of 0.00512 BTC.
    sell = parsed[-1]
    assert D(sell["value"]) == D("11492.81")  # 11,492.8128, shown to the kuruş
    assert basis.events[-1].value == D("11492.8128")
    with localcontext(Context(prec=60)):
        exact = D("11492.8128") - average_cost_of_the_sale()
        assert basis.events[-1].realised == exact
        assert D(sell["realized"]) == exact.quantize(D("0.01"))


def average_cost_of_the_sale() -> D:
    """By hand: the BTC cost just before the sale, in proportion to the 0.00512 sold."""
    with localcontext(Context(prec=60)):
        deposit = D("0.02") * D("2200000")  # 44,000
        bought = D("5600") + D("11.2") + D("2.016") + D("22400") + D("44.8") + D("8.064")  # 28,066.08
        held, cost = D("0.0325"), deposit + bought
        cost_after_withdrawal = cost - cost * D("0.001") / held
        return cost_after_withdrawal * D("0.00512") / (held - D("0.001"))


def test_a_sale_after_buys_at_uneven_prices_shows_kurus_not_sixty_digits() -> None:
    """Average cost 1000/3 TRY a BTC: the replay keeps 60 digits, the export shows what a person reads."""
    buys = [
        trade(1, ("BTC", "TRY"), "buy", "1", "100", "0", "0"),
        trade(2, ("BTC", "TRY"), "buy", "1", "200", "0", "0"),
        trade(3, ("BTC", "TRY"), "buy", "1", "700", "0", "0"),
    ]
    sale = trade(4, ("BTC", "TRY"), "sell", "-1", "500", "0", "0")
    basis = compute([*buys, sale], [], "TRY", Prices({}), keep_events=True)
    exact = basis.events[-1].realised
    assert exact is not None and len(format(exact, "f").split(".")[1]) > 50  # the ledger's figure is exact
    out = io.StringIO()
    write_csv(out, rows("alice", basis, Prices({})))
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert parsed[-1]["realized"] == "166.67"
    assert parsed[-1]["value"] == "500"


def test_other_valuation_currencies_show_eight_places() -> None:
    row = example_rows()[4]
    btc = Row(**{**{k: getattr(row, k) for k in row.__slots__}, "value": D(1) / D(3), "currency": "BTC"})
    out = io.StringIO()
    write_json(out, [btc])
    assert json.loads(out.getvalue())[0]["value"] == "0.33333333"


def test_a_withdrawal_beyond_the_holding_shows_its_shortfall() -> None:
    """0.3 BTC deposited, 0.5 withdrawn (0.2 came in before the ledger's first record)."""
    deposit = transfer(1, "crypto", "BTC", "0.3")
    withdrawal = transfer(2, "crypto", "BTC", "-0.5")
    prices = Prices({("BTC", "TRY", t(1)): D("2000000"), ("BTC", "TRY", t(2)): D("2000000")})
    basis = compute([], [deposit, withdrawal], "TRY", prices, keep_events=True)
    out = io.StringIO()
    write_csv(out, rows("alice", basis, prices))
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["type"], r["shortfall"]) for r in parsed] == [("deposit", ""), ("withdrawal", "0.2")]
