"""A pair that takes a buy's fee from the asset bought, through the real exporter and simulator: no
phantom holding. The ledger holds what the simulator's balance holds, the reconciliation says match,
and the cost basis is the hand computation from the simulator's own records, live and offline."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from support import activity_config, sample, samples, start_exporter

from exporter.activity.reconcile import STATES
from exporter.ledger.costbasis import order
from exporter.ledger.quantities import Quantities
from exporter.ledger.store import Ledger
from exporter.simulator import Simulator, generate_keypair
from exporter.simulator import activity as act
from exporter.simulator.accounts import SimAsset

FEES = generate_keypair(seed=71)
HISTORY = generate_keypair(seed=72)
HOUR_MS = 3_600_000


def reconciled(m: dict, account: str, state: str) -> set[str]:
    """The assets of `account` whose ledger holding is in `state`."""
    return {
        dict(k)["asset"]
        for k, v in samples(m, "btcturk_ledger_reconciled").items()
        if dict(k)["account"] == account and dict(k)["state"] == state and v == 1
    }


def settled(m: dict) -> bool:
    """A cost basis, and both accounts' ETH reconciled, whichever the state (two polls agreeing)."""
    if sample(m, "btcturk_asset_cost_basis", account="fees", asset="ETH", currency="TRY") is None:
        return False
    return all(any("ETH" in reconciled(m, a, s) for s in STATES) for a in ("fees", "history"))


def hand_cost(sim: Simulator) -> tuple[Fraction, Fraction]:
    """ETH held and its average cost in TRY, from the simulator's records alone: a buy adds amount +
    fee + tax ETH at cost amount x price, a sale removes cost in proportion to what was held."""
    held, cost = Fraction(0), Fraction(0)
    for trade in sim.history(FEES[0]).trades:
        assert trade.numerator + trade.denominator == "ETHTRY"
        if trade.side == "buy":
            held += Fraction(trade.amount + trade.fee + trade.tax)
            cost += Fraction(trade.amount * trade.price)
        else:
            cost -= cost * Fraction(-trade.amount) / held
            held += Fraction(trade.amount)
    return held, cost


def offline(storage: Path, account: str) -> dict[str, Decimal]:
    """What the ledger file alone (no network, no configuration) says the account holds."""
    with Ledger.read_only(storage / "ledger.db") as ledger:
        quantities = Quantities()
        for record in order([*ledger.trades(account), *ledger.transfers(account)]):
            quantities.apply(record)
    return quantities.held


def test_a_buy_paying_its_fee_in_the_asset_bought_leaves_no_phantom_holding(tmp_path: Path) -> None:
    with Simulator() as sim:
        assert sim.market.pairs["ETHTRY"].commission_from_numerator
        sim.add_account(
            *FEES, [SimAsset("TRY", "Türk Lirası", 0, 0, precision=2), SimAsset("ETH", "Ethereum", 0, 0)]
        )
        # Seeded months of history, which buy on ETHTRY among other pairs.
        sim.add_account(*HISTORY, history_days=20, seed=5)
        assert any(t.fee_in_numerator for t in sim.history(HISTORY[0]).trades)
        with sim.lock:
            account, pair, start = (
                sim.accounts[FEES[0]],
                sim.market.pairs["ETHTRY"],
                sim.now_ms() - 5 * HOUR_MS,
            )
            assert act.deposit(account, "TRY", Decimal(2_000_000), start, sim.ids) is not None
            for n, (side, amount) in enumerate(
                (("buy", "3"), ("buy", "2.5"), ("sell", "1.2"), ("buy", "0.7"))
            ):
                assert act.trade(account, pair, side, Decimal(amount), start + (n + 1) * HOUR_MS, sim.ids)
        trades = sim.history(FEES[0]).trades
        assert all(t.fee_in_numerator == (t.side == "buy") for t in trades) and all(t.fee < 0 for t in trades)
        eth = next(a for a in sim.assets(FEES[0]) if a.asset == "ETH").balance
        held, cost = hand_cost(sim)
        assert held == Fraction(eth) and eth < Decimal("5")  # 3 + 2.5 - 1.2 + 0.7, less the fees in ETH

        storage = tmp_path / "storage"
        keys = {"fees": FEES, "history": HISTORY}
        config = activity_config(sim, keys, poll_interval="2s")
        exporter = start_exporter(tmp_path, config, f"--storage.path={storage}")
        try:
            m = exporter.wait_metrics(settled, timeout=90, what="both accounts reconciled")
            # Main's code, the fee taken from TRY, showed ETH in `mismatch`: more held than the balance.
            for name in keys:
                assert not reconciled(m, name, "mismatch") and not reconciled(m, name, "incomplete"), name
            assert reconciled(m, "fees", "match") == {"ETH", "TRY"}
            assert "ETH" in reconciled(m, "history", "match")
            basis = sample(m, "btcturk_asset_cost_basis", account="fees", asset="ETH", currency="TRY")
            assert basis is not None and abs(basis - float(cost)) <= 1e-9 * float(cost)
            # The ETH fees are counted in ETH, the sale's in TRY.
            paid = {dict(k)["asset"]: v for k, v in samples(m, "btcturk_trade_fees_total").items()
                    if dict(k)["account"] == "fees"}  # fmt: skip
            assert paid["ETH"] == float(-sum(t.fee for t in trades if t.side == "buy"))
            assert paid["TRY"] == float(-sum(t.fee for t in trades if t.side == "sell"))
        finally:
            assert exporter.terminate() == 0

        # Offline, from the ledger file alone, the same holdings: the flag was kept with the records.
        for name, key in keys.items():
            ledger_eth = offline(storage, name).get("ETH", Decimal(0))
            assert ledger_eth == next(a for a in sim.assets(key[0]) if a.asset == "ETH").balance, name
        moment = "2100-01-01T00:00:00Z"
        done = subprocess.run(
            [sys.executable, "-m", "exporter", "ledger", "holdings", f"--storage.path={storage}",
             f"--at={moment}", "--account=fees", "--format=json"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        rows = {(r["asset"], r["currency"]): r for r in json.loads(done.stdout)}
        assert Decimal(rows["ETH", "TRY"]["quantity"]) == eth
        assert abs(Fraction(Decimal(rows["ETH", "TRY"]["cost_basis"])) - cost) < Fraction(1, 10**30)
