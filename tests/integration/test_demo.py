"""--demo is marked everywhere it can be seen, and never happens by accident."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from support import sample, samples, start_exporter

from exporter.config.activity_settings import parse_since
from exporter.demo import ACTIVITY_INTERVAL, start_demo
from exporter.ledger.store import Ledger
from exporter.simulator import Simulator, generate_keypair

BANNER = "DEMO DATA: made-up accounts from the built-in simulator"


def test_the_demo_is_marked_in_metrics_page_and_log(tmp_path: Path) -> None:
    exporter = start_exporter(tmp_path, None, "--demo", "--demo.poll-interval", "1s")
    try:
        assert sample(exporter.metrics(), "btcturk_exporter_demo") == 1
        assert BANNER in exporter.get("/").text
        warnings = [r for r in exporter.log_records() if r.get("level") == "warn"]
        assert any(r["msg"].startswith(BANNER) for r in warnings), exporter.log_text()
        [started] = [r for r in exporter.log_records() if r.get("msg") == "btcturk-exporter started"]
        assert started["demo"] is True and started["tls"] is False
    finally:
        assert exporter.terminate() == 0


def test_a_real_configuration_is_not_marked(tmp_path: Path) -> None:
    public, private = generate_keypair(seed=71)
    with Simulator() as sim:
        sim.add_account(public, private)
        config = {
            "api_url": sim.url,
            "poll_interval": "1s",
            "accounts": [{"name": "main", "public_key": public, "private_key": private}],
        }
        exporter = start_exporter(tmp_path, config)
        try:
            assert sample(exporter.metrics(), "btcturk_exporter_demo") == 0
            assert "DEMO" not in exporter.get("/").text
            assert "DEMO" not in exporter.log_text()
        finally:
            assert exporter.terminate() == 0


def test_the_demo_shows_months_of_activity_from_a_temporary_ledger(tmp_path: Path) -> None:
    """First start: the simulator's pre-generated history is backfilled, into a temporary directory."""
    exporter = start_exporter(tmp_path, None, "--demo", "--demo.poll-interval", "2s")
    try:
        m = exporter.wait_metrics(
            lambda m: samples(m, "btcturk_trades_total") and samples(m, "btcturk_asset_cost_basis"),
            timeout=180,
            what="the demo's activity",
        )
        assert sample(m, "btcturk_activity_up", account="main") == 1
        # The dashboards' returns: the first account, every holding priced, has a unit value once
        # two reads of its history agree with its balances; the others hold a token with no market.
        m = exporter.wait_metrics(
            lambda m: sample(m, "btcturk_portfolio_unit_value", account="main", currency="TRY"),
            timeout=10 * ACTIVITY_INTERVAL,
            what="the unit value of the demo's first account",
        )
        assert sample(m, "btcturk_unpriced_assets", account="main", currency="TRY") == 0
        assert sample(m, "btcturk_portfolio_unit_value", account="savings", currency="TRY") is None
        assert sample(m, "btcturk_unpriced_assets", account="savings", currency="TRY") == 1
        (started,) = [r for r in exporter.log_records() if r.get("msg") == "btcturk-exporter started"]
        ledger_file = Path(started["ledger"])
        assert ledger_file.parent.parent == Path(tempfile.gettempdir())
        with Ledger(ledger_file) as ledger:
            oldest = min(t.timestamp_ms for t in ledger.trades("main"))
        assert time.time() - oldest / 1000 > 90 * 86400, "months of history, not days"
    finally:
        assert exporter.terminate() == 0
    assert not ledger_file.parent.exists(), "the demo's temporary storage is removed at exit"


def test_one_demo_account_is_older_than_the_demos_since() -> None:
    """Its ledger gets openings (what it held at since), as tests/integration/test_openings_live.py
    shows through the exporter; the others are younger, and get none."""
    config, demo = start_demo(None, 5.0)
    try:
        since_ms = parse_since(config.activity.since, demo.simulator.now_ms())
        first = {
            account.name: min(t.timestamp for t in demo.simulator.history(account.public_key).trades)
            for account in config.accounts
        }
        assert [name for name, at in first.items() if at < since_ms] == ["savings"]
    finally:
        demo.stop()


def test_the_demo_never_writes_into_a_storage_path(tmp_path: Path) -> None:
    """Made-up records in a real ledger would be shown as real money: --storage.path is not used."""
    storage = tmp_path / "real-storage"
    storage.mkdir()
    exporter = start_exporter(tmp_path, None, "--demo", "--storage.path", str(storage))
    try:
        assert sample(exporter.metrics(), "btcturk_exporter_demo") == 1
        (started,) = [r for r in exporter.log_records() if r.get("msg") == "btcturk-exporter started"]
        assert not Path(started["ledger"]).is_relative_to(storage)
        assert any("temporary directory, not in --storage.path" in r["msg"] for r in exporter.log_records())
    finally:
        assert exporter.terminate() == 0
    assert list(storage.iterdir()) == []
