"""Simulated accounts change only through recorded trades, deposits and withdrawals."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
from support import VECTOR_PRIVATE, VECTOR_PUBLIC, FakeClock, signed_get

from exporter.simulator import SimAsset, Simulator, demo_assets
from exporter.simulator import activity as act
from exporter.simulator.ledger import FIRST_TRADE_ID


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(clock=clock, seed=2) as simulator:
        simulator.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE)
        simulator.quirks.exact()
        yield simulator


def places(value: Decimal) -> int:
    return max(0, -int(value.as_tuple().exponent))


def run(sim: Simulator, clock: FakeClock, steps: int, seconds: float = 5.0) -> None:
    for _ in range(steps):
        clock.now += seconds
        sim.drift()


def test_balances_equal_opening_plus_recorded_history(sim: Simulator, clock: FakeClock) -> None:
    opening = {a.asset: a.balance for a in demo_assets(2)}
    run(sim, clock, 600)
    history = sim.history(VECTOR_PUBLIC)
    assert len(history.trades) > 50 and history.crypto() and history.fiat()
    assert {t.kind for t in history.transfers} == {"deposit", "withdrawal"}
    change = history.net_change()
    for asset in sim.assets(VECTOR_PUBLIC):
        assert asset.balance == opening[asset.asset] + change.get(asset.asset, Decimal(0)), asset.asset
        assert asset.free >= 0 and asset.locked >= 0 and asset.request_fund >= 0
    # Assets with no market never trade, and a zero asset stays zero unless bought or deposited.
    assert "OLDTOKEN" not in {t.numerator for t in history.trades}


def test_recorded_amounts_respect_each_assets_precision(sim: Simulator, clock: FakeClock) -> None:
    run(sim, clock, 400)
    precision = {a.asset: a.precision for a in sim.assets(VECTOR_PUBLIC)}
    history = sim.history(VECTOR_PUBLIC)
    for trade in history.trades:
        assert places(trade.amount) <= precision[trade.numerator]
        assert places(trade.price) <= sim.market.pairs[trade.numerator + trade.denominator].scale
        # The denominator moves by exactly amount x price, fee and tax (at most 8 places) on top.
        assert trade.total == -trade.amount * trade.price
        assert places(trade.fee) <= 8 and places(trade.tax) <= 8
    for transfer in history.transfers:
        assert places(transfer.amount) <= precision[transfer.currency]


def test_trade_records_have_the_vendors_shape_and_signs(sim: Simulator, clock: FakeClock) -> None:
    run(sim, clock, 300)
    trades = sim.history(VECTOR_PUBLIC).trades
    assert {t.side for t in trades} == {"buy", "sell"}
    for trade in trades:
        item = trade.to_json()
        assert item["id"] >= FIRST_TRADE_ID > 2**53  # past what a float holds exactly
        assert Decimal(item["fee"]) < 0 and Decimal(item["tax"]) <= 0
        assert (Decimal(item["amount"]) < 0) == (item["orderType"] == "sell")
        assert set(item) >= {"id", "orderId", "timestamp", "price", "numeratorSymbol", "denominatorSymbol"}
        assert isinstance(item["price"], str) and isinstance(item["amount"], str)
    assert len({t.id for t in trades}) == len(trades)


def test_a_pending_withdrawal_sits_in_request_fund_then_completes(sim: Simulator, clock: FakeClock) -> None:
    account = sim.accounts[VECTOR_PUBLIC]
    before = sim.assets(VECTOR_PUBLIC)
    btc_before = next(a for a in before if a.asset == "BTC")
    now = sim.now_ms()
    pending = act.request_withdrawal(
        account, "BTC", Decimal("0.0123456789"), Decimal("-0.0001"), now, now + 180_000
    )
    assert pending is not None and pending.amount == Decimal("0.01234567")  # cut to BTC's 8 places
    row = next(r for r in signed_get(sim).json()["data"] if r["asset"] == "BTC")
    assert Decimal(row["requestFund"]) == pending.amount
    assert Decimal(row["balance"]) == btc_before.balance  # still the account's money while it waits
    assert Decimal(row["free"]) == btc_before.free - pending.amount
    assert not account.history.transfers
    assert act.settle(account, now + 179_999, sim.ids) == []
    (done,) = act.settle(account, now + 180_000, sim.ids)
    assert (done.kind, done.currency, done.amount, done.fee) == (
        "withdrawal",
        "BTC",
        Decimal("-0.01224567"),
        Decimal("-0.0001"),
    )
    btc = next(a for a in sim.assets(VECTOR_PUBLIC) if a.asset == "BTC")
    assert btc.request_fund == 0 and btc.balance == btc_before.balance - pending.amount


def test_the_demo_shows_pending_withdrawals_now_and_then(sim: Simulator, clock: FakeClock) -> None:
    runs, current = [], 0
    for _ in range(1500):
        clock.now += 5
        sim.drift()
        if any(a.request_fund > 0 for a in sim.assets(VECTOR_PUBLIC)):
            current += 1
        elif current:
            runs, current = [*runs, current], 0
    assert len(runs) >= 2, "a withdrawal should wait in requestFund every few minutes"
    # Each wait outlasts the pending-withdrawal alert's one minute (12 steps of 5 s).
    assert min(runs) > 12
    assert any(t.kind == "withdrawal" for t in sim.history(VECTOR_PUBLIC).transfers)


def test_a_trade_the_account_cannot_afford_is_not_made(sim: Simulator) -> None:
    sim.set_assets(
        VECTOR_PUBLIC,
        [SimAsset("TRY", "Türk Lirası", 10, 0, precision=2), SimAsset("BTC", "Bitcoin", 0, 0)],
    )
    account = sim.accounts[VECTOR_PUBLIC]
    pair = sim.market.pairs["BTCTRY"]
    assert act.trade(account, pair, "buy", Decimal("1"), sim.now_ms(), sim.ids) is None
    assert act.trade(account, pair, "sell", Decimal("1"), sim.now_ms(), sim.ids) is None
    bought = act.trade(account, pair, "buy", Decimal("0.000001"), sim.now_ms(), sim.ids)
    assert bought is not None and bought.amount == Decimal("0.000001")
    try_left = next(a for a in sim.assets(VECTOR_PUBLIC) if a.asset == "TRY").free
    assert try_left == Decimal(10) - bought.amount * bought.price + bought.fee + bought.tax


def test_served_items_stand_in_for_hide_and_reorder_records(sim: Simulator, clock: FakeClock) -> None:
    run(sim, clock, 200)
    path = "/api/v1/users/transactions/trade"
    recorded = signed_get(sim, path=path).json()["data"]
    assert len(recorded) >= 3
    changed = {**recorded[0], "fee": "-0.1"}
    extra = {**recorded[0], "id": 1, "timestamp": 86_400_000}  # served whatever the window
    body = {"endpoint": path, "items": [changed, extra], "hidden": [recorded[1]["id"]]}
    assert requests.post(sim.url + "/_sim/items", json=body, timeout=5).status_code == 200
    served = signed_get(sim, path=path).json()["data"]
    assert served == [changed, *recorded[2:], extra]
    sim.serve_items(path, reverse=True)
    assert signed_get(sim, path=path).json()["data"] == recorded[::-1]
    assert requests.delete(sim.url + "/_sim/items", timeout=5).status_code == 200
    assert signed_get(sim, path=path).json()["data"] == recorded
