"""Account activity in the running exporter: real processes against the simulator on loopback.

The ledger in --storage.path, counters served at the ledger's totals once backfilled, a key without
the activity permission, `activity.enabled: false` making no activity call and no file, an unusable
storage path said once while balances are served, live_since_ms recorded once, and the ledger
kept across a reload.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import (
    ExporterProcess,
    activity_config,
    require_binary,
    sample,
    samples,
    start_exporter,
    wait_for,
)

from exporter.commands.common import cached_pairs
from exporter.ledger.counters import count
from exporter.ledger.returns import unit_steps
from exporter.ledger.store import Ledger
from exporter.pricing.history import PriceHistory
from exporter.pricing.routes import BRIDGES
from exporter.simulator import Simulator, generate_keypair
from exporter.simulator.accounts import SimAsset

MAIN = generate_keypair(seed=61)
NOKEY = generate_keypair(seed=62)
ACTIVITY_PATHS = (
    "/api/v1/users/transactions/trade",
    "/api/v1/users/transactions/crypto",
    "/api/v1/users/transactions/fiat",
    "/api/v2/server/exchangeinfo",
    "/v1/klines/history",
    "/v1/ohlcs",
)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_account(*MAIN, history_days=20, seed=3)
        simulator.add_account(*NOKEY, can_read_activity=False)
        yield simulator


def config(sim: Simulator, *names: str, interval: str | None = None, **activity: Any) -> dict[str, Any]:
    """The accounts named (main if none), the activity interval left at its default unless given."""
    keys = {"main": MAIN, "nokey": NOKEY}
    return activity_config(sim, {n: keys[n] for n in names or ("main",)}, interval=interval, **activity)


def activity_calls(sim: Simulator) -> int:
    return sum(sim.count(path) for path in ACTIVITY_PATHS)


def test_counters_appear_at_the_ledgers_totals_once_backfilled(sim: Simulator, tmp_path: Path) -> None:
    storage = tmp_path / "new" / "storage"
    exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
    try:
        m = exporter.wait_metrics(
            lambda m: samples(m, "btcturk_trades_total") and samples(m, "btcturk_asset_cost_basis"),
            timeout=60,
            what="the activity counters",
        )
        assert (storage / "ledger.db").is_file()
        assert sample(m, "btcturk_activity_up", account="main") == 1
        assert sample(m, "btcturk_up", account="main") == 1
        with Ledger.open(storage) as ledger:
            trades, transfers = ledger.trades("main"), ledger.transfers("main")
            assert trades, "the simulator's 20 days of history reached the ledger"
            totals = count([*trades, *transfers])
            live_since = ledger.state("live_since_ms")
        served = {
            dict(k)["pair"] + "/" + dict(k)["side"]: v for k, v in samples(m, "btcturk_trades_total").items()
        }
        assert served == {f"{pair}/{side}": n for (pair, side), n in totals["trades"].items()}
        assert sample(m, "btcturk_ledger_records", account="main", kind="trade") == len(trades)
        assert live_since is not None and int(live_since) > 0
        assert samples(m, "btcturk_market_trading")
        # Every activity family at once passes promtool's lint.
        lint = subprocess.run(
            [require_binary("promtool"), "check", "metrics"],
            input=exporter.get("/metrics").content,
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout.decode() + lint.stderr.decode()
        # A reload keeps the ledger (opened once per process) and live_since_ms is never overwritten.
        exporter.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in exporter.log_text(), what="the reload")
        m = exporter.wait_metrics(lambda m: samples(m, "btcturk_trades_total"), what="counters after reload")
        assert sample(m, "btcturk_ledger_records", account="main", kind="trade") == len(trades)
        with Ledger.open(storage) as ledger:
            assert ledger.state("live_since_ms") == live_since
    finally:
        assert exporter.terminate() == 0


def test_a_key_without_the_activity_permission(sim: Simulator, tmp_path: Path) -> None:
    exporter = start_exporter(tmp_path, config(sim, "nokey"))
    try:
        wait_for(lambda: sim.count("/api/v1/users/transactions/trade", 401) >= 1, what="a refused read")
        m = exporter.wait_metrics(
            lambda m: sample(
                m,
                "btcturk_activity_sync_failures_total",
                account="nokey",
                endpoint="/api/v1/users/transactions/trade",
                reason="auth",
            ),
            what="the refusal counted",
        )
        assert sample(m, "btcturk_up", account="nokey") == 1
        assert samples(m, "btcturk_balance")
        assert sample(m, "btcturk_activity_up", account="nokey") == 0
        assert sample(m, "btcturk_activity_state", account="nokey", state="no_permission") == 1
        wait_for(lambda: sim.count("/api/v1/users/transactions/fiat", 401) >= 1, what="every endpoint tried")
        warnings = [
            r for r in exporter.log_records() if "activity of account nokey is off" in str(r.get("msg"))
        ]
        assert len(warnings) == 1 and warnings[0]["level"] == "warn", warnings
        # It names the permission as BTCTurk's key page does, and the start said what each key reads.
        assert "the key lacks the Account permission" in warnings[0]["msg"]
        said = [r for r in exporter.log_records() if r.get("account") == "nokey" and "reads" in r["msg"]]
        assert [r["msg"] for r in said] == [
            "reads balances with the key's Total Funds permission, and trades, deposits and withdrawals "
            "with its Account permission"
        ]
    finally:
        assert exporter.terminate() == 0


def test_activity_disabled_makes_no_activity_call_and_no_ledger(sim: Simulator, tmp_path: Path) -> None:
    storage = tmp_path / "unused"
    exporter = start_exporter(tmp_path, config(sim, enabled=False), f"--storage.path={storage}")
    try:
        polls = sim.count("/api/v1/users/balances")
        wait_for(lambda: sim.count("/api/v1/users/balances") >= polls + 3, what="three more balance polls")
        m = exporter.metrics()
        assert activity_calls(sim) == 0
        assert not storage.exists()
        assert samples(m, "btcturk_activity_up") == {}
        # Only the state, saying why the activity dashboard is empty.
        assert sample(m, "btcturk_activity_state", account="main", state="off") == 1
        assert sample(m, "btcturk_activity_state", account="main", state="on") == 0
        assert sample(m, "btcturk_up", account="main") == 1
    finally:
        assert exporter.terminate() == 0


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "--web.listen-address", "127.0.0.1:0", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_an_unusable_storage_path_keeps_balances_and_is_one_line(sim: Simulator, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    # Balances never depend on the ledger: they are served, activity is off, and the log says why.
    exporter = start_exporter(tmp_path, config(sim), f"--storage.path={blocker}/ledger")
    try:
        metrics = exporter.wait_metrics(lambda m: sample(m, "btcturk_up", account="main") == 1)
        assert sample(metrics, "btcturk_activity_state", account="main", state="off") == 1
        lines = [r for r in exporter.log_records() if f"{blocker}/ledger" in str(r.get("msg", ""))]
        assert len(lines) == 1, exporter.log_text()
        assert "balances are served" in lines[0]["msg"]
        assert activity_calls(sim) == 0
    finally:
        assert exporter.terminate() == 0
    # With activity off, the same path does not matter: the exporter runs, never opens it, says nothing.
    off = config(sim)
    off["activity"]["enabled"] = False
    exporter = start_exporter(tmp_path, off, f"--storage.path={blocker}/ledger")
    try:
        exporter.wait_metrics(lambda m: sample(m, "btcturk_up", account="main") == 1)
        assert not [r for r in exporter.log_records() if f"{blocker}/ledger" in str(r.get("msg", ""))]
    finally:
        assert exporter.terminate() == 0


def test_the_ledger_file_holds_no_secret(sim: Simulator, tmp_path: Path) -> None:
    storage = tmp_path / "s"
    exporter: ExporterProcess = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
    try:
        exporter.wait_metrics(lambda m: samples(m, "btcturk_trades_total"), timeout=60, what="counters")
    finally:
        assert exporter.terminate() == 0
    data = b"".join(p.read_bytes() for p in storage.iterdir())
    assert MAIN[1].encode() not in data and MAIN[0].encode() not in data
    with sqlite3.connect(storage / "ledger.db") as db:
        assert db.execute("SELECT count(*) FROM trades").fetchone()[0] > 0


# --- unit value (issue 17) ---


PRICED = generate_keypair(seed=63)


def test_the_unit_value_is_the_portfolio_value_over_the_ledgers_units(tmp_path: Path) -> None:
    """An account whose every flow has a price (no airdropped token without a market, which leaves
    the units unknown from its deposit on): the unit value served is value / the ledger's units."""
    storage = tmp_path / "storage"
    held = [SimAsset(a, a, 0, 0) for a in ("TRY", "BTC", "ETH", "USDT")]
    with Simulator() as priced:
        priced.add_account(*PRICED, assets=held, history_days=20, seed=3)
        doc = config(priced, interval="1s")  # re-read often: the balances reconcile after two reads
        doc["accounts"] = [{"name": "main", "public_key": PRICED[0], "private_key": PRICED[1]}]
        exporter = start_exporter(tmp_path, doc, f"--storage.path={storage}")
        try:
            m = exporter.wait_metrics(
                lambda m: samples(m, "btcturk_portfolio_unit_value"), timeout=60, what="the unit value"
            )
            served = sample(m, "btcturk_portfolio_unit_value", account="main", currency="TRY")
            value = sample(m, "btcturk_portfolio_value", account="main", currency="TRY")
        finally:
            assert exporter.terminate() == 0
    with Ledger.open(storage) as ledger:
        trades, transfers = ledger.trades("main"), ledger.transfers("main")
        assets = {a for t in trades for a in (t.base, t.quote)} | {
            t.currency for t in transfers if t.currency
        }
        prices = PriceHistory(ledger, lambda *_: ())
        prices.set_pairs(cached_pairs(ledger, assets, {*assets, *BRIDGES, "TRY"}))
        steps = unit_steps([*trades, *transfers], "TRY", prices.price_at)
    units = steps[-1].units
    assert units is not None and units > 0
    # the same units the exporter counted, from the same cached prices: value / units to float precision
    assert served == pytest.approx(value / float(units), rel=1e-9)
