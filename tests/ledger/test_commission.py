"""A buy's fee taken from the asset bought (exchangeinfo's commissionFromNumerator): worked by hand,
moved the same by every part, and remembered by the ledger for replays without network."""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

from costbasis_example import BTCTRY, t, trade, transfer

from exporter.activity.reconcile import compare
from exporter.api.parsing import Balance
from exporter.api.records import Trade
from exporter.backfill.timeline import deltas
from exporter.ledger import export
from exporter.ledger.costbasis import compute, order
from exporter.ledger.counters import count
from exporter.ledger.quantities import Quantities
from exporter.ledger.report import report
from exporter.ledger.store import Ledger


def no_price(asset: str, currency: str, when_ms: int) -> D | None:
    return None


# 1,000,000 TRY in; 1 BTC bought at 1,000,000 TRY on a pair that takes commission from the numerator,
# fee 0.001 BTC, no tax; then 0.5 BTC sold at 1,200,000 TRY, fee 600 and tax 108 TRY (in TRY: a sale).
DEPOSIT = transfer(0, "fiat", "TRY", "1000000")
BUY = trade(1, BTCTRY, "buy", "1", "1000000", "-0.001", "0")._replace(commission_from_numerator=True)
SELL = trade(2, BTCTRY, "sell", "-0.5", "1200000", "-600", "-108")._replace(commission_from_numerator=True)


def close(value: D, exact: Fraction) -> bool:
    """Within the 60-digit rounding of a proportional split."""
    return abs(Fraction(value) - exact) < Fraction(1, 10**40)


def test_a_buy_paying_its_fee_in_the_asset_bought_holds_what_it_received_at_what_it_paid() -> None:
    basis = compute([BUY], [DEPOSIT], "TRY", no_price)
    btc = basis.positions["BTC"]
    # Received 1 - 0.001 = 0.999 BTC, paid 1 x 1,000,000 TRY and not a lira more.
    assert btc.quantity == D("0.999") and btc.cost == D("1000000")
    # The unit cost rises by the fee: 1,000,000 / 0.999 = 1,001,001.001001...
    assert Fraction(btc.cost) / Fraction(btc.quantity) == Fraction(1_000_000_000, 999)
    assert str(btc.cost / btc.quantity).startswith("1001001.001001001")
    assert basis.positions["TRY"].quantity == 0 and basis.positions["TRY"].cost == 0


def test_the_sale_after_it_pays_in_the_quote_and_removes_cost_of_what_was_held() -> None:
    basis = compute([BUY, SELL], [DEPOSIT], "TRY", no_price)
    btc, lira = basis.positions["BTC"], basis.positions["TRY"]
    # Receives 0.5 x 1,200,000 - 600 - 108 = 599,292 TRY; removes 1,000,000 x 0.5 / 0.999 of cost.
    removed = Fraction(1_000_000) * Fraction(1, 2) / Fraction(999, 1000)  # 500,500.5005005...
    assert lira.quantity == D("599292") and lira.cost == D("599292")
    assert btc.quantity == D("0.499")
    assert close(btc.cost, Fraction(1_000_000) - removed)  # 499,499.4994994...
    assert close(btc.realised, Fraction(599_292) - removed)  # 98,791.4994994...


def test_the_same_buy_without_the_flag_follows_the_notes_rule_fees_in_the_quote() -> None:
    # A pair never seen with the flag: fee in TRY.
    plain = BUY._replace(fee=D("-1000"), commission_from_numerator=False)
    basis = compute([plain], [DEPOSIT._replace(amount=D("1001000"))], "TRY", no_price)
    assert basis.positions["BTC"].quantity == D("1") and basis.positions["BTC"].cost == D("1001000")
    assert plain.moves() == (D("1"), D("-1001000")) and plain.fee_asset == "TRY"


def test_every_part_moves_the_trade_as_one_engine_says() -> None:
    """Cost basis, quantities, reconciliation, the backfill's walk and the counters agree."""
    assert BUY.moves() == (D("0.999"), D("-1000000")) and BUY.fee_asset == "BTC"
    assert SELL.moves() == (D("-0.5"), D("599292")) and SELL.fee_asset == "TRY"
    quantities = Quantities()
    for record in order([BUY, SELL, DEPOSIT]):
        quantities.apply(record)
    assert quantities.held == {"TRY": D("599292"), "BTC": D("0.499")}
    assert deltas(BUY) == (("BTC", D("0.999")), ("TRY", D("-1000000")))
    held = [
        Balance("BTC", "Bitcoin", D("0.499"), D("0.499"), D(0), D(0), D(0)),
        Balance("TRY", "Türk Lirası", D("599292"), D("599292"), D(0), D(0), D(0)),
    ]
    assert compare([BUY, SELL], [DEPOSIT], held, t(3)) == {"BTC": "match", "TRY": "match"}
    # Main's reading, 1 BTC received, would have the records hold more than the balance.
    phantom = [BUY._replace(commission_from_numerator=False), SELL]
    assert compare(phantom, [DEPOSIT], held, t(3))["BTC"] == "mismatch"
    totals = count([BUY, SELL, DEPOSIT])
    assert totals["trade_fees"] == {("BTC",): D("0.001"), ("TRY",): D("600")}
    assert totals["trade_taxes"] == {("BTC",): D("0"), ("TRY",): D("108")}


def test_export_and_report_name_and_value_the_fee_where_it_was_taken() -> None:
    basis = compute([BUY, SELL], [DEPOSIT], "TRY", no_price, keep_events=True)
    buy_row = next(r for r in export.rows("main", basis, no_price) if r.id == BUY.id)
    assert (buy_row.fee, buy_row.fee_currency, buy_row.value) == (D("-0.001"), "BTC", D("1000000"))
    assert buy_row.fee_value == D("1000")  # 0.001 BTC at the trade's own price, 1,000,000 TRY
    rows = report(
        "main", [BUY, SELL], [DEPOSIT], ("TRY",), no_price, "average", "year", ZoneInfo("UTC"), None, t(4)
    )
    btc = next(r for r in rows if r["asset"] == "BTC")
    # 0.001 BTC valued at the trade's own price, 1,000 TRY; the sale's 600 TRY beside it.
    assert btc["fees"] == D("1600") and btc["taxes"] == D("108")


def test_the_ledger_remembers_the_flag_and_a_pair_never_seen_follows_the_notes(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    stored = [
        BUY._replace(commission_from_numerator=False),
        trade(3, ("ETH", "TRY"), "buy", "1", "1", "0", "0"),
    ]
    with Ledger(path) as ledger:
        ledger.upsert_trades("main", stored)
        assert not any(t.commission_from_numerator for t in ledger.trades("main"))
        assert ledger.remember_commission({"BTCTRY": True, "USDTTRY": False}) is True
        assert ledger.remember_commission({"BTCTRY": True}) is False  # nothing new: no replay due
        flags = {t.pair: t.commission_from_numerator for t in ledger.trades("main")}
        assert flags == {"BTCTRY": True, "ETHTRY": False}  # ETHTRY never stated: the notes' rule
        assert ledger.trades("main")[0] == BUY
        # The trades are stored as the API gave them; one served again is no changed record.
        changed: list[Trade] = []
        assert ledger.upsert_trades("main", stored, changed) == 0 and changed == []
    # Read back without network or a write, as `ledger export` does.
    with Ledger.read_only(path) as copy:
        assert copy.trades("main")[0].commission_from_numerator is True
    with Ledger(path) as ledger:
        # An answer that leaves the pair out keeps its last stated flag; one that says false clears it.
        assert ledger.remember_commission({"ETHTRY": False}) is True
        assert ledger.trades("main")[0].commission_from_numerator is True
        assert ledger.remember_commission({"BTCTRY": False}) is True
        assert ledger.trades("main")[0].commission_from_numerator is False
