"""The service runs the activity sync beside the poller: one ledger per process, kept across swaps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from support import wait_for

from exporter.api.account import Account, Secret
from exporter.config.activity_settings import ActivitySettings
from exporter.config.loader import Config
from exporter.ledger.cursors import LIVE_SINCE
from exporter.ledger.store import Ledger
from exporter.service import ReloadStatus, Service, build_pipeline, live_registry
from exporter.simulator import Simulator, generate_keypair
from exporter.web.server import start_server

MAIN = generate_keypair(seed=71)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_account(*MAIN, history_days=5, seed=2)
        yield simulator


def config(sim: Simulator, **activity: object) -> Config:
    settings = ActivitySettings(since="6d", graph_api_url=sim.url, **activity)  # type: ignore[arg-type]
    account = Account("main", MAIN[0], Secret(MAIN[1]))
    return Config(accounts=(account,), api_url=sim.url, poll_interval=1.0, timeout=0.5, activity=settings)


def test_without_a_ledger_there_is_no_sync(sim: Simulator) -> None:
    pipeline = build_pipeline(config(sim), live_registry(ReloadStatus()))
    assert pipeline.activity is None


def test_the_sync_runs_beside_the_poller_and_survives_a_swap(sim: Simulator, tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        status = ReloadStatus()
        live = live_registry(status)
        first = config(sim)
        pipeline = build_pipeline(first, live, ledger=ledger)
        assert pipeline.activity is not None
        server, _ = start_server("127.0.0.1:0", pipeline.renderer, pipeline.store.view)
        second = replace(first, poll_interval=2.0)
        service = Service(server, pipeline, status, live, load=lambda: second, ledger=ledger)
        service.start()
        try:
            since = wait_for(lambda: ledger.state(LIVE_SINCE), what="live_since_ms")
            wait_for(
                lambda: "btcturk_trades_total{" in service.pipeline.renderer.scrape().decode(),
                timeout=30,
                what="counters before the swap",
            )
            old_sync = service.pipeline.activity
            assert service.reload()
            # The very first scrape after the swap: no blink of activity_up, no gap in the counters.
            right_after = service.pipeline.renderer.scrape().decode()
            assert 'btcturk_activity_up{account="main"} 1' in right_after
            assert "btcturk_trades_total{" in right_after
            new_sync = service.pipeline.activity
            assert new_sync is not None and new_sync is not old_sync
            assert new_sync.ledger is ledger  # the same open file, not a second one
            assert all(not t.is_alive() for t in old_sync._loops._threads)  # type: ignore[union-attr]
            view = wait_for(
                lambda: (
                    (v := service.pipeline.renderer.scrape().decode()) and "btcturk_trades_total{" in v and v
                ),
                timeout=30,
                what="counters after the swap",
            )
            assert 'btcturk_activity_up{account="main"} 1' in view
            assert ledger.state(LIVE_SINCE) == since  # never overwritten
        finally:
            service.stop()


def test_disabled_activity_builds_no_sync_even_with_a_ledger(sim: Simulator, tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        pipeline = build_pipeline(config(sim, enabled=False), live_registry(ReloadStatus()), ledger=ledger)
        assert pipeline.activity is None
        assert b"btcturk_activity_up" not in pipeline.renderer.scrape()
