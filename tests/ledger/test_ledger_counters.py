"""Ledger counters: trade fees only (not transfer fees), quantities per asset, keys as the labels."""

from __future__ import annotations

from decimal import Decimal as D

from costbasis_example import EXAMPLE_TRADES, EXAMPLE_TRANSFERS

from exporter.api.records import Trade, Transfer
from exporter.ledger.counters import LedgerCounters, count


def test_totals_by_hand() -> None:
    records = [
        Trade(1, None, 1, "BTC", "TRY", "buy", D(100), D("0.5"), D("-0.05"), D("-0.009")),
        Trade(2, None, 2, "BTC", "TRY", "sell", D(120), D("-0.2"), D("-0.024"), D("-0.00432")),
        Trade(3, None, 3, "BTC", "USDT", "buy", D(3), D("0.1"), D("-0.0003"), D(0)),
        Transfer("crypto", 4, 4, "withdrawal", "BTC", D("-0.1"), fee=D("-0.0005")),
        Transfer("fiat", 5, 5, "deposit", "TRY", D(1000)),
        Transfer("fiat", 6, 6, "deposit", None, D(7)),  # names no currency: counts nowhere
    ]
    assert count(records) == {
        "trades": {("BTCTRY", "buy"): 1, ("BTCTRY", "sell"): 1, ("BTCUSDT", "buy"): 1},
        "trade_fees": {("TRY",): D("0.074"), ("USDT",): D("0.0003")},  # the transfer fee is not here
        "trade_taxes": {("TRY",): D("0.01332"), ("USDT",): D(0)},
        "deposits": {("TRY",): D(1000)},
        "withdrawals": {("BTC",): D("0.1")},
    }


def test_the_worked_example_counts() -> None:
    """docs/cost-basis.md's worked example: its withdrawal's network fee (0.0005 BTC) is no trade fee."""
    assert count([*EXAMPLE_TRADES, *EXAMPLE_TRANSFERS]) == {
        "trades": {("BTCTRY", "buy"): 2, ("BTCTRY", "sell"): 1, ("USDTTRY", "buy"): 1, ("BTCUSDT", "buy"): 1},
        "trade_fees": {("TRY",): D("3740"), ("USDT",): D("3")},
        "trade_taxes": {("TRY",): D("673.2"), ("USDT",): D("0.54")},
        "deposits": {("TRY",): D("2000000"), ("BTC",): D("0.1")},
        "withdrawals": {("BTC",): D("0.09")},
    }


def test_start_at_zero_lists_every_key_before_it_counts() -> None:
    later = [Trade(1, None, 9, "ETH", "TRY", "sell", D(1), D(-1), D(0), D(0))]
    counters = LedgerCounters()
    counters.start_at_zero(later)
    assert counters.totals["trades"] == {("ETHTRY", "sell"): 0}
    assert counters.totals["trade_fees"] == {("TRY",): 0}
    counters.add(later[0])
    assert counters.totals["trades"] == {("ETHTRY", "sell"): 1}
