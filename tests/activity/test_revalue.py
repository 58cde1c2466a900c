"""The live cost basis after the first pass: a new record is fed onto the kept replay, anything else
(a record behind it, another method) replays the history, and either way the figures are a full
replay's, against the simulator over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from exporter.activity.state import SyncHealth
from exporter.activity.sync import ActivitySync
from exporter.api.account import Account, Secret
from exporter.api.client import Client
from exporter.api.ratelimit import Gates
from exporter.api.records import Trade
from exporter.api.transactions import ActivityClient
from exporter.config.activity_settings import ActivitySettings
from exporter.ledger.costbasis import compute, order
from exporter.ledger.replay import ReplayState
from exporter.ledger.returns import UnitTrack
from exporter.ledger.store import Ledger
from exporter.simulator import Simulator, generate_keypair

KEYS = generate_keypair(seed=41)
DAYS = 40


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(seed=7) as simulator:
        simulator.add_account(*KEYS, history_days=DAYS, seed=3)
        yield simulator


def first_pass(sim: Simulator, ledger: Ledger) -> tuple[ActivitySync, SyncHealth, ReplayState]:
    """A sync after its first pass over the simulator's history: it, main's health and the replay kept."""
    client = ActivityClient(Client(sim.url, 2.0), Client(sim.url, 2.0))
    settings = ActivitySettings(since=f"{DAYS + 5}d", rate_limit_share=1.0)
    account = Account("main", KEYS[0], Secret(KEYS[1]))
    sync = ActivitySync(settings, (account,), client, ledger, gates=Gates(), on_snapshot=lambda _: None)
    sync.run_once()
    health = sync.publisher.health["main"]
    assert health.replay is not None
    return sync, health, health.replay.state


def republish(sync: ActivitySync, health: SyncHealth) -> None:
    """Publish main again, as the sync does when its records or prices changed."""
    health.changed = True
    assert sync.publish("main") is not None


def full_replay(sync: ActivitySync, ledger: Ledger) -> tuple[dict[str, object], dict[str, object]]:
    trades, transfers = ledger.trades("main"), ledger.transfers("main")
    bases: dict[str, object] = {}
    units: dict[str, object] = {}
    for currency in ("TRY", "USDT"):
        bases[currency] = compute(trades, transfers, currency, sync.prices.price_at, "average")
        track = UnitTrack(currency, sync.prices.price_at)
        for record in order([*trades, *transfers]):
            track.apply(record)
        units[currency] = track.units
    return bases, units


def published_figures(sync: ActivitySync) -> tuple[dict[str, object], dict[str, object]]:
    health = sync.publisher.health["main"]
    return dict(health.cost_basis), dict(health.units)


def test_a_new_record_is_fed_on_and_one_behind_replays_everything(sim: Simulator, tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync, health, first = first_pass(sim, ledger)
        assert published_figures(sync) == full_replay(sync, ledger)
        newest = max(ledger.trades("main"), key=lambda t: t.timestamp_ms)

        after = newest._replace(id=newest.id + 10_000, timestamp_ms=newest.timestamp_ms + 1)
        ledger.upsert_trades("main", [after])
        republish(sync, health)
        assert health.replay.state is first, "a record after the last replayed one is fed on"
        assert first.cursor.fed == ledger.record_count("main")
        assert published_figures(sync) == full_replay(sync, ledger)

        behind = newest._replace(id=newest.id + 20_000, timestamp_ms=newest.timestamp_ms - 60_000)
        ledger.upsert_trades("main", [behind])
        republish(sync, health)
        assert health.replay.state is not first, "a record behind the cursor replays the history"
        assert published_figures(sync) == full_replay(sync, ledger)
        assert health.replay.state.cursor.fed == ledger.record_count("main")


def test_another_method_or_a_price_known_now_replays_everything(sim: Simulator, tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync, health, first = first_pass(sim, ledger)
        republish(sync, health)
        assert health.replay.state is first, "nothing new: the kept replay stands"

        sync.publisher.settings = replace(sync.publisher.settings, cost_basis="fifo")
        republish(sync, health)
        assert health.replay.state is not first
        assert health.cost_basis["TRY"].method == "fifo"
        second = health.replay.state

        # A trade in a pair with no route is unpriced; once its price is known, it must be valued.
        trade = Trade(9_000_001, None, first.cursor.last[0] + 5 if first.cursor.last else 0, "ZZZ", "QQQ",
                      "buy", Decimal(2), Decimal(1), Decimal(0), Decimal(0))  # fmt: skip
        ledger.upsert_trades("main", [trade])
        republish(sync, health)
        assert health.replay.state is second
        assert any(asset == "QQQ" for asset, _, _ in second.misses)
        priced = health.cost_basis["TRY"].unpriced
        real = sync.publisher.prices.price_at  # as it was: the patched one below knows QQQ too

        def knows_qqq(asset: str, currency: str, when_ms: int) -> Decimal | None:
            return Decimal(3) if asset == "QQQ" else real(asset, currency, when_ms)

        sync.publisher.prices.price_at = knows_qqq  # type: ignore[method-assign]
        republish(sync, health)
        assert health.replay.state is not second
        assert health.cost_basis["TRY"].unpriced == priced - 1
