"""Figures while graph-api fails or answers with gaps: the last complete ones kept and marked stale.

In process against the simulator; the backoff's waits pass at once on a moved monotonic clock.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support import Later

from exporter.activity.price_fetch import PRICES_RETRY_MAX, PriceFetch
from exporter.activity.state import ActivitySnapshot
from exporter.activity.sync import ActivitySync
from exporter.api.account import Account, Secret
from exporter.api.candles import Candle
from exporter.api.client import Client
from exporter.api.ratelimit import Gates
from exporter.api.transactions import KLINES, OHLCS, ActivityClient
from exporter.config.activity_settings import ActivitySettings
from exporter.ledger.store import Ledger
from exporter.pricing.candlecache import GAP_CONFIRMATIONS, GAPS, STEP
from exporter.simulator import Fault, Simulator, generate_keypair
from exporter.simulator import activity as sim_activity
from exporter.simulator.paths import LIMITS

KEYS = generate_keypair(seed=43)
ACCOUNT = Account("main", KEYS[0], Secret(KEYS[1]))
DAYS = 10


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(seed=7, limits={path: 1_000_000 for path in LIMITS}) as simulator:
        simulator.add_account(*KEYS, history_days=DAYS, seed=3)
        yield simulator


def make_sync(sim: Simulator, ledger: Ledger, monotonic: Later) -> ActivitySync:
    client = ActivityClient(Client(sim.url, 2.0), Client(sim.url, 2.0))
    settings = ActivitySettings(since=f"{DAYS + 1}d", rate_limit_share=1.0, request_deadline=1.0)
    return ActivitySync(
        settings, (ACCOUNT,), client, ledger, gates=Gates(), on_snapshot=lambda _: None, monotonic=monotonic
    )


def clean(sim: Simulator, tmp_path: Path) -> ActivitySnapshot:
    """What a clean ledger publishes against the simulator as it is now."""
    with Ledger(tmp_path / "clean.db") as ledger:
        return make_sync(sim, ledger, Later()).run_once()["main"]


def test_an_outage_keeps_the_last_complete_figures_marked_stale_until_a_replay_has_every_price(
    sim: Simulator, tmp_path: Path
) -> None:
    later = Later()
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(sim, ledger, later)
        first = sync.run_once()["main"]
        assert first.cost_basis and first.units and not first.stale
        sim.inject(Fault("status", status=503), endpoint=KLINES)
        sim.inject(Fault("status", status=503), endpoint=OHLCS)
        with sim.lock:
            account = sim.accounts[KEYS[0]]
            pair = sim.market.pairs["BTCTRY"]
            assert sim_activity.trade(account, pair, "buy", Decimal("0.001"), sim.now_ms(), sim.ids)
        during = sync.run_once()["main"]
        # The TRY replay could have been done without graph-api, the USDT one not: neither is shown.
        assert during.stale
        assert during.cost_basis is first.cost_basis and during.units is first.units
        assert during.records["trade"] == first.records["trade"] + 1  # the record itself is in
        sim.clear_faults()
        later.skip(PRICES_RETRY_MAX)
        after = sync.publish("main")
        assert after is not None and not after.stale
        assert after.cost_basis["USDT"] != first.cost_basis["USDT"]  # the new trade is in
        assert after.cost_basis == clean(sim, tmp_path).cost_basis


def test_a_gappy_answer_is_not_kept_and_is_asked_again_after_the_backoff(
    sim: Simulator, tmp_path: Path
) -> None:
    later = Later()
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(sim, ledger, later)
        sim.inject(Fault("gaps", drop_every=3), endpoint=KLINES)
        sim.inject(Fault("gaps", drop_every=3), endpoint=OHLCS)
        gappy = sync.run_once()["main"]
        assert gappy.cost_basis == {} and gappy.stale
        assert gappy.failures[(KLINES, GAPS)] == 1
        asked = sim.count(KLINES) + sim.count(OHLCS)
        assert asked == 1  # refused: the pass stops there, and the backoff begins
        sim.clear_faults()
        assert sync.publish("main").cost_basis == {}  # not asked again before the backoff is over
        assert sim.count(KLINES) + sim.count(OHLCS) == asked
        later.skip(PRICES_RETRY_MAX)
        whole = sync.publish("main")
        assert whole is not None and not whole.stale
        assert whole.cost_basis == clean(sim, tmp_path).cost_basis


def ended_before(query: tuple[object, ...], now_s: float) -> bool:
    """Whether a candles query (base, quote, resolution, from_s, to_s) asked only candles closed at now_s."""
    step = STEP[str(query[2])]
    return int(str(query[4])) < now_s // step * step


def test_gaps_that_every_answer_lacks_pass_for_quiet_hours_after_a_bounded_number_of_asks(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    asks: Counter[tuple[object, ...]] = Counter()
    candles = PriceFetch.candles

    def counted(self: PriceFetch, *query: Any) -> Sequence[Candle]:
        asks[query] += 1
        return candles(self, *query)

    monkeypatch.setattr(PriceFetch, "candles", counted)
    started = time.time()

    def closed_asks() -> Counter[tuple[object, ...]]:
        # A range holding a still-open candle (today's day) is asked again each time the sync's
        # clock, moved on by Later, says that candle has closed: the open-candle rule, not the gap
        # rule, and how often depends on the time of day the test runs. The simulator's clock does
        # not move, so the candle stays open there: count only ranges closed when the test began.
        return Counter({q: n for q, n in asks.items() if ended_before(q, started)})

    later = Later()
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(sim, ledger, later)
        sim.inject(Fault("gaps", drop_every=3), endpoint=KLINES)
        sim.inject(Fault("gaps", drop_every=3), endpoint=OHLCS)
        snapshot = sync.run_once()["main"]
        while snapshot.stale:
            # Each range is asked at most GAP_CONFIRMATIONS times, once per step of the backoff.
            assert max(closed_asks().values()) <= GAP_CONFIRMATIONS, closed_asks().most_common(3)
            later.skip(PRICES_RETRY_MAX)
            published = sync.publish("main")
            assert published is not None
            snapshot = published
        assert max(closed_asks().values()) == GAP_CONFIRMATIONS
        # Many gappy answers, one warning line (then debug), and one each for stale and current again.
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert sum("left closed candles out" in w for w in warnings) == 1, warnings
        assert sum("are stale" in w for w in warnings) == sum("current again" in w for w in warnings) == 1
        # Published once every gap was confirmed: figures over what graph-api has (a quiet hour falls
        # back to the day's close, or is unpriced), never figures with a price still to come.
        assert snapshot.cost_basis and snapshot.failures[(KLINES, GAPS)] >= GAP_CONFIRMATIONS - 1


def test_a_one_shot_command_asks_a_gappy_range_again_at_once_instead_of_waiting_out_the_backoff(
    sim: Simulator, tmp_path: Path
) -> None:
    """A command cannot wait minutes per range of a sparse pair: the confirmations are asked back to back."""
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(sim, ledger, Later())  # a clock that never moves: no backoff step ever ends
        sync.publisher.fetch.ask_gaps_at_once = True
        sim.inject(Fault("gaps", drop_every=3), endpoint=KLINES)
        sim.inject(Fault("gaps", drop_every=3), endpoint=OHLCS)
        snapshot = sync.run_once()["main"]
        assert snapshot.cost_basis and not snapshot.stale, "every gap confirmed within the one pass"
        assert snapshot.failures.get((KLINES, GAPS), 0) == 0
        # Asked again within the one pass: at least the confirmations of one gappy range.
        assert sim.count(KLINES) + sim.count(OHLCS) >= GAP_CONFIRMATIONS
    with Ledger(tmp_path / "again.db") as ledger:
        waiting = make_sync(sim, ledger, Later())
        assert waiting.run_once()["main"].stale, "the live exporter's default still waits for the backoff"
