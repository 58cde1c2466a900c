"""Opening positions in the running exporter: an account whose history is older than `activity.since`.

The simulator's account opened empty 50 days ago and the exporter reads 30 of them. What it held at
`since` enters the ledger as openings, so profit, net deposits, BTC's cost basis and realized profit are
complete "since since". The expected figures come from the simulator's own record (its history, its
candles over HTTP, its ticker), replayed here by the README's rules, not by the exporter's code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
import requests
from support import activity_config, sample, samples, start_exporter

from exporter.ledger.store import Ledger
from exporter.simulator import Simulator, generate_keypair
from exporter.simulator.accounts import SimAsset
from exporter.simulator.ledger import History

OLD = generate_keypair(seed=171)
HELD = ("TRY", "BTC", "ETH", "USDT")  # every one with a TRY pair: each price is one candle's close
HOUR_S = 3600


def config(sim: Simulator, since: str) -> dict[str, Any]:
    return activity_config(sim, {"main": OLD}, since=since)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        assets = [SimAsset(a, a, 0, 0) for a in HELD]
        simulator.add_account(*OLD, assets=assets, history_days=50, seed=5)
        yield simulator


def close(sim: Simulator, asset: str, when_ms: int) -> Decimal:
    """The close of the simulator's hourly candle holding `when_ms`, asset in TRY (its graph API)."""
    if asset == "TRY":
        return Decimal(1)
    hour = when_ms // 1000 // HOUR_S * HOUR_S
    params: dict[str, str | int] = {"symbol": f"{asset}_TRY", "resolution": "60", "from": hour, "to": hour}
    answer = requests.get(f"{sim.url}/v1/klines/history", params=params, timeout=10)
    body = json.loads(answer.text, parse_float=Decimal, parse_int=Decimal)
    assert body["s"] == "ok" and body["t"] == [hour], body
    return Decimal(body["c"][0])


def expected(sim: Simulator, history: History, since_ms: int) -> dict[str, Decimal]:
    """Net deposits, and BTC's cost basis and realized profit (average cost), in TRY, since `since_ms`."""
    held: dict[str, Decimal] = {}
    for trade in history.trades:
        if trade.timestamp < since_ms:
            # The simulator's own record of what the fill moved (a numerator-fee pair's fee included).
            base, quote = trade.moved
            held[trade.numerator] = held.get(trade.numerator, Decimal(0)) + base
            held[trade.denominator] = held.get(trade.denominator, Decimal(0)) + quote
    for transfer in history.transfers:
        if transfer.timestamp < since_ms:
            held[transfer.currency] = held.get(transfer.currency, Decimal(0)) + transfer.amount
    assert held.get("BTC", Decimal(0)) > 0, "BTC was held at since (else this test shows nothing)"
    rank = {"deposit": 0, "trade": 1, "withdrawal": 2}
    events: list[tuple[int, int, int, Any]] = [
        (t.timestamp, rank["trade"], t.id, t) for t in history.trades if t.timestamp >= since_ms
    ]
    events += [(t.timestamp, rank[t.kind], t.id, t) for t in history.transfers if t.timestamp >= since_ms]
    events.sort(key=lambda e: e[:3])
    with localcontext() as ctx:
        ctx.prec = 60
        net = sum((q * close(sim, a, since_ms) for a, q in held.items() if q > 0), Decimal(0))
        quantity = held["BTC"]
        cost = quantity * close(sim, "BTC", since_ms)
        realized = Decimal(0)
        for when, _, _, record in events:
            if hasattr(record, "numerator"):
                assert record.denominator != "BTC", "no BTC-quoted pair in this market"
                if record.numerator != "BTC":
                    continue
                q = abs(record.amount)
                costs = abs(record.fee) + abs(record.tax)
                leg = q * record.price + costs if record.side == "buy" else q * record.price - costs
                value = leg * close(sim, record.denominator, when)
                if record.side == "buy":
                    quantity, cost = quantity + q, cost + value
                else:
                    removed = cost if q == quantity else cost * q / quantity
                    realized += value - removed
                    quantity, cost = quantity - q, cost - removed
            else:
                q = abs(record.amount)
                value = q * close(sim, record.currency, when)
                net += value if record.kind == "deposit" else -value
                if record.currency == "BTC":
                    if record.kind == "deposit":
                        quantity, cost = quantity + q, cost + value
                    else:
                        removed = cost if q == quantity else cost * q / quantity
                        quantity, cost = quantity - q, cost - removed
    return {"net_deposits": net, "btc_cost": cost, "btc_realized": realized}


def export_rows(storage: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "ledger",
            "export",
            "--storage.path",
            str(storage),
            "--format=json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def served_once_reconciled(sim: Simulator, tmp_path: Path, since: str) -> tuple[dict, Path]:
    storage = tmp_path / "storage"
    exporter = start_exporter(tmp_path, config(sim, since), f"--storage.path={storage}")
    try:
        # The unit value is served once every holding reconciles (with the openings, for this account)
        # and the cost basis over them is published.
        m = exporter.wait_metrics(
            lambda m: samples(m, "btcturk_portfolio_unit_value"), timeout=120, what="the unit value"
        )
    finally:
        assert exporter.terminate() == 0
    return m, storage


def test_an_account_older_than_since_is_complete_since_since(sim: Simulator, tmp_path: Path) -> None:
    m, storage = served_once_reconciled(sim, tmp_path, "30d")
    with Ledger.open(storage) as ledger:
        since_ms = int(ledger.state("activity:origin:main") or 0)
        openings = ledger.openings("main")
    history = sim.history(OLD[0])
    assert min(t.timestamp for t in history.trades) < since_ms - 15 * 86_400_000, "history older than since"
    want = expected(sim, history, since_ms)
    net = sample(m, "btcturk_net_deposits", account="main", currency="TRY")
    assert net == pytest.approx(float(want["net_deposits"]), rel=1e-12)
    cost = sample(m, "btcturk_asset_cost_basis", account="main", asset="BTC", currency="TRY")
    assert cost == pytest.approx(float(want["btc_cost"]), rel=1e-12)
    realized = sample(m, "btcturk_asset_realized_profit", account="main", asset="BTC", currency="TRY")
    assert realized == pytest.approx(float(want["btc_realized"]), rel=1e-9, abs=1e-6)
    # Profit is value minus net deposits: the value at the simulator's own balances and ticker.
    balances = {a.asset: a.free + a.locked for a in sim.assets(OLD[0])}
    value_now = sum(
        (q * (Decimal(1) if a == "TRY" else sim.market.pairs[a + "TRY"].last) for a, q in balances.items()),
        Decimal(0),
    )
    value = sample(m, "btcturk_portfolio_value", account="main", currency="TRY")
    assert value == pytest.approx(float(value_now), rel=1e-12)
    assert value - net == pytest.approx(float(value_now - want["net_deposits"]), rel=1e-9)
    assert sample(m, "btcturk_ledger_reconciled", account="main", asset="BTC", state="match") == 1
    # `ledger export`: one row of kind opening per asset held at since, columns as for a deposit.
    rows = [r for r in export_rows(storage) if r["kind"] == "opening" and r["currency"] == "TRY"]
    assert {r["asset"] for r in rows} == {o.currency for o in openings} and "BTC" in {
        r["asset"] for r in rows
    }
    btc = next(r for r in rows if r["asset"] == "BTC")
    assert btc["type"] == "deposit" and btc["timestamp_ms"] == since_ms and btc["id"] == str(since_ms)
    assert Decimal(btc["value"]) == round(Decimal(btc["amount"]) * close(sim, "BTC", since_ms), 2), (
        "valued at the candle's close at since"
    )


def test_an_account_younger_than_since_gets_no_opening(sim: Simulator, tmp_path: Path) -> None:
    m, storage = served_once_reconciled(sim, tmp_path, "60d")
    with Ledger.open(storage) as ledger:
        assert ledger.openings("main") == []
    assert not [r for r in export_rows(storage) if r["kind"] == "opening"]
    history = sim.history(OLD[0])
    net = sample(m, "btcturk_net_deposits", account="main", currency="TRY")
    assert net == pytest.approx(float(expected_all(sim, history)), rel=1e-12)


def expected_all(sim: Simulator, history: History) -> Decimal:
    """Net deposits over the whole history, each transfer at its candle's close."""
    with localcontext() as ctx:
        ctx.prec = 60
        total = Decimal(0)
        for t in history.transfers:
            value = abs(t.amount) * close(sim, t.currency, t.timestamp)
            total += value if t.kind == "deposit" else -value
    return total
