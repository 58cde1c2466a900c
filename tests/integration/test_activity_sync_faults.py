"""The activity sync against a misbehaving exchange: real exporter processes and the simulator on loopback.

Each test ends with the ledger equal to the simulator's record of the account: `since` moved earlier
after the first backfill, the exchange's clock jumping a day ahead and back, failed turns of a first
backfill, answers that are full pages whatever the window, and the progress a first backfill shows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support import ExporterProcess, activity_config, sample, samples, start_exporter, wait_for

from exporter.activity.endpoints import WARN_EVERY_S
from exporter.api.budget import WINDOW
from exporter.ledger.store import Ledger
from exporter.metrics import activity_families as families
from exporter.simulator import Simulator, generate_keypair
from exporter.simulator import activity as sim_activity
from exporter.simulator.faults import Fault

MAIN = generate_keypair(seed=71)
DAY_S = 86_400
TRADES = "/api/v1/users/transactions/trade"
ENDPOINT_PATHS = (TRADES, "/api/v1/users/transactions/crypto", "/api/v1/users/transactions/fiat")
PROGRESS = "btcturk_activity_backfill_progress_ratio"
FAILURES = "btcturk_activity_sync_failures_total"
TRADES_TOTAL = "btcturk_trades_total"
# Every figure of money or quantity the ledger vouches for.
# A read waits for its share of the endpoint's rate limit, counted per fixed window: after the first
# backfill spent this window's share, the next read may come only in the next window.
READ = WINDOW + 30.0
MONEY = (
    *families.ACTIVITY_FAMILIES,
    families.ASSET_SHORTFALL,
    families.PORTFOLIO_UNIT_VALUE,
)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_account(*MAIN, history_days=40, seed=5)
        yield simulator


def config(sim: Simulator, since: str = "41d", **activity: Any) -> dict[str, Any]:
    return activity_config(sim, {"main": MAIN}, since=since, **activity)


def simulated(sim: Simulator, since_ms: int = 0) -> dict[str, set[int]]:
    """The ids of the simulator's records of the account, per endpoint, from `since_ms` on."""
    with sim.lock:
        history = sim.history(MAIN[0])
        return {
            "trade": {t.id for t in history.trades if t.timestamp >= since_ms},
            "crypto": {t.id for t in history.crypto() if t.timestamp >= since_ms},
            "fiat": {t.id for t in history.fiat() if t.timestamp >= since_ms},
        }


def stored(storage: Path) -> dict[str, set[int]]:
    """The ids in the exporter's ledger, per endpoint."""
    with Ledger.open(storage) as ledger:
        transfers = ledger.transfers("main")
        return {
            "trade": {t.id for t in ledger.trades("main")},
            "crypto": {t.id for t in transfers if t.kind == "crypto"},
            "fiat": {t.id for t in transfers if t.kind == "fiat"},
        }


def backfilled(exporter: ExporterProcess) -> dict:
    return exporter.wait_metrics(
        lambda m: samples(m, "btcturk_trades_total"), timeout=60, what="the first backfill"
    )


def buy(sim: Simulator, n: int) -> set[int]:
    """`n` small BTC buys at the simulator's now; their trade ids."""
    ids = set()
    with sim.lock:
        account = sim.accounts[MAIN[0]]
        pair = sim.market.pairs["BTCTRY"]
        for _ in range(n):
            record = sim_activity.trade(account, pair, "buy", Decimal("0.0001"), sim.now_ms(), sim.ids)
            assert record is not None
            ids.add(record.id)
    return ids


def test_moving_since_earlier_fetches_the_older_history(sim: Simulator, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    exporter = start_exporter(tmp_path, config(sim, since="10d"), f"--storage.path={storage}")
    try:
        backfilled(exporter)
    finally:
        assert exporter.terminate() == 0
    first = stored(storage)
    everything = simulated(sim)
    assert first["trade"] < everything["trade"], "the 10 days are only part of the 40"
    exporter = start_exporter(tmp_path, config(sim, since="41d"), f"--storage.path={storage}")
    try:
        wait_for(lambda: stored(storage) == simulated(sim), timeout=60, what="the older history fetched")
        m = exporter.wait_metrics(
            lambda m: (
                sample(m, "btcturk_ledger_records", account="main", kind="trade") == len(everything["trade"])
            ),
            what="the older records counted",
        )
        assert sample(m, "btcturk_activity_up", account="main") == 1
    finally:
        assert exporter.terminate() == 0


def test_a_clock_jump_of_a_day_and_back_loses_no_trade(sim: Simulator, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
    try:
        backfilled(exporter)
        sim.clock_skew = DAY_S
        ahead = buy(sim, 4)
        wait_for(lambda: ahead <= stored(storage)["trade"], timeout=READ, what="the trades a day ahead")
        sim.clock_skew = 0
        # Read at least once after the jump back, so a cursor left a day ahead would have shown.
        reads = sim.count("/api/v1/users/transactions/trade", 200)
        sim.wait_for_requests("/api/v1/users/transactions/trade", reads + 3, timeout=READ, status=200)
        later = buy(sim, 16)
        wait_for(
            lambda: later <= stored(storage)["trade"], timeout=READ, what="the trades after the jump back"
        )
        assert stored(storage) == simulated(sim)
        m = exporter.metrics()
        assert sample(m, "btcturk_activity_up", account="main") == 1
    finally:
        assert exporter.terminate() == 0


def test_a_failed_turn_of_the_first_backfill_is_retried_soon_and_logged_once(
    sim: Simulator, tmp_path: Path
) -> None:
    # Three garbled answers (not worth a retry of the request itself) early in the first backfill.
    sim.inject(Fault("body", body=b"<html>maintenance</html>"), endpoint=TRADES, times=3)
    storage = tmp_path / "storage"
    interval = 30
    exporter = start_exporter(tmp_path, config(sim, interval=f"{interval}s"), f"--storage.path={storage}")
    try:
        # Each failed turn used to wait a whole interval: three of them, 3 x 30 s.
        wait_for(
            lambda: stored(storage) == simulated(sim), timeout=interval, what="the backfill, despite 3 faults"
        )
        exporter.wait_metrics(
            lambda m: (
                sample(
                    m,
                    "btcturk_activity_sync_failures_total",
                    account="main",
                    endpoint=TRADES,
                    reason="bad_response",
                )
                == 3
            ),
            what="the three failures counted",
        )
        exporter.wait_metrics(
            lambda m: sample(m, "btcturk_activity_up", account="main") == 1, what="up again"
        )
        warnings = [r for r in exporter.log_records() if "activity sync of account main" in str(r.get("msg"))]
        assert len(warnings) == 1, warnings
    finally:
        assert exporter.terminate() == 0


def test_a_first_backfill_shows_its_progress_in_the_log_and_as_a_gauge(
    sim: Simulator, tmp_path: Path
) -> None:
    # 400 days are 14 windows of 30; slow answers let a scrape see the backfill half way.
    sim.inject(Fault("latency", seconds=0.3), endpoint=TRADES, times=14)
    storage = tmp_path / "storage"
    exporter = start_exporter(tmp_path, config(sim, since="400d"), f"--storage.path={storage}")
    try:
        m = exporter.wait_metrics(
            lambda m: 0 < (sample(m, PROGRESS, account="main", endpoint=TRADES) or 0) < 1,
            what="the trade history part read",
        )
        assert sample(m, "btcturk_activity_up", account="main") in (0, 1)
        m = exporter.wait_metrics(
            lambda m: all(sample(m, PROGRESS, account="main", endpoint=e) == 1 for e in ENDPOINT_PATHS),
            timeout=60,
            what="every history read",
        )
        assert stored(storage) == simulated(sim)
        lines = [str(r.get("msg")) for r in exporter.log_records()]
        for endpoint in ENDPOINT_PATHS:
            assert sum(f"reading the history of {endpoint} from" in line for line in lines) == 1, lines
            assert sum(f"the history of {endpoint} is read:" in line for line in lines) == 1, lines
    finally:
        assert exporter.terminate() == 0


@pytest.mark.parametrize("page_cap", [None, 30])
def test_an_api_cap_below_the_configured_one_loses_no_record(
    sim: Simulator, tmp_path: Path, page_cap: int | None
) -> None:
    # The API pages 30 records; the exporter is told 50 (the default), or the truth.
    sim.activity_cap = 30
    assert len(simulated(sim)["trade"]) > 4 * 30, "30-day windows hold more than a page"
    storage = tmp_path / "storage"
    settings = {} if page_cap is None else {"page_cap": page_cap}
    exporter = start_exporter(tmp_path, config(sim, **settings), f"--storage.path={storage}")
    try:
        backfilled(exporter)
        assert stored(storage) == simulated(sim)
    finally:
        assert exporter.terminate() == 0


def reconciled(m: dict, state: str) -> set[str]:
    """The assets whose ledger holding is in `state`."""
    return {
        dict(k)["asset"]
        for k, v in samples(m, "btcturk_ledger_reconciled").items()
        if dict(k)["state"] == state and v == 1
    }


def test_answers_cut_in_half_during_the_backfill_are_found_by_the_balances_and_read_again(
    sim: Simulator, tmp_path: Path
) -> None:
    sim.activity_halved = True  # every answer holds only the newer half of its records, and looks whole
    storage = tmp_path / "storage"
    exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
    try:
        backfilled(exporter)
        assert stored(storage) != simulated(sim)
        sim.activity_halved = False  # the API recovers; the windows already read look finished
        wait_for(lambda: stored(storage) == simulated(sim), timeout=60, what="the missing records read again")
        m = exporter.wait_metrics(
            lambda m: (
                reconciled(m, "match") and not reconciled(m, "mismatch") and not reconciled(m, "incomplete")
            ),
            timeout=30,
            what="every asset reconciled",
        )
        held = {a.asset for a in sim.assets(MAIN[0]) if a.balance}
        assert held <= reconciled(m, "match")
        warnings = [
            r for r in exporter.log_records() if "does not add up to its balances" in str(r.get("msg"))
        ]
        assert len(warnings) == 1, warnings
    finally:
        assert exporter.terminate() == 0


def test_a_history_cut_by_since_gets_openings_and_matches(sim: Simulator, tmp_path: Path) -> None:
    """What was held at since enters the ledger as openings: against them every holding matches."""
    storage = tmp_path / "storage"
    exporter = start_exporter(tmp_path, config(sim, since="10d"), f"--storage.path={storage}")
    try:
        backfilled(exporter)
        held = {a.asset for a in sim.assets(MAIN[0]) if a.balance}
        m = exporter.wait_metrics(
            lambda m: held <= reconciled(m, "match") and not reconciled(m, "incomplete"),
            timeout=60,
            what="every holding matched against the openings",
        )
        assert not reconciled(m, "mismatch")
        wait_for(lambda: "possibly held since before activity.since" in exporter.log_text(), what="the note")
        wait_for(
            lambda: "opening positions at its history's start" in exporter.log_text(), what="the openings"
        )
        assert "does not add up to its balances" not in exporter.log_text()
        with Ledger.open(storage) as ledger:
            assert ledger.openings("main"), "the 10 days read leave out what was bought before them"
    finally:
        assert exporter.terminate() == 0


def failures(m: dict, endpoint: str) -> float:
    """The endpoint's failed turns so far, whatever the reason."""
    return sum(v for k, v in samples(m, FAILURES).items() if dict(k)["endpoint"] == endpoint)


@pytest.mark.parametrize("mode", ["padded", "repeated"])
def test_always_full_pages_in_the_first_backfill_are_backed_off_from_and_read_again_after(
    sim: Simulator, tmp_path: Path, mode: str
) -> None:
    # Every answer is a full page whatever the window: padded with the account's records from outside
    # it, or the window's own records over and over. Halving the windows cannot shorten such answers.
    sim.activity_full = mode
    storage = tmp_path / "storage"
    started = time.monotonic()
    exporter = start_exporter(tmp_path, config(sim, interval="2s"), f"--storage.path={storage}")
    try:
        turns = 4
        exporter.wait_metrics(
            lambda m: all(failures(m, e) >= turns for e in ENDPOINT_PATHS),
            timeout=60,
            what=f"{turns} failed turns of every endpoint",
        )
        requests = {e: sim.count(e) for e in ENDPOINT_PATHS}
        m = exporter.metrics()
        # One request per failed turn, after a backoff, besides the first turn's halvings while windows
        # are full of their own records (the 30-day windows of this history hold at most ~16 pages: 4).
        # The code before answered with ~31 halvings down to 1 ms, then a request per millisecond.
        halvings = 4
        for endpoint in ENDPOINT_PATHS:
            counted = failures(m, endpoint)
            assert requests[endpoint] <= counted + halvings + 1, (endpoint, requests[endpoint], counted)
            reason = sample(m, FAILURES, account="main", endpoint=endpoint, reason="window_ignored")
            assert reason == counted, (endpoint, samples(m, FAILURES))
        # Nothing is published as right: activity down, the history not read, no figure of money.
        assert sample(m, "btcturk_activity_up", account="main") == 0
        assert sample(m, "btcturk_activity_state", account="main", state="syncing_history") == 1
        published = {f.sample_name for f in MONEY if samples(m, f.sample_name)}
        assert not published, published
        # What was kept are the account's own records, none made up.
        during, everything = stored(storage), simulated(sim)
        assert all(during[kind] <= everything[kind] for kind in everything), "only recorded ids kept"
        lines = [str(r.get("msg")) for r in exporter.log_records()]
        bound = 1 + (time.monotonic() - started) // WARN_EVERY_S
        for endpoint in ENDPOINT_PATHS:
            said = [line for line in lines if endpoint in line and "does not answer the window asked" in line]
            assert 1 <= len(said) <= bound, (endpoint, said)

        sim.activity_full = None  # the upstream recovers
        wait_for(lambda: stored(storage) == simulated(sim), timeout=60, what="the history read again")
        m = exporter.wait_metrics(
            lambda m: sample(m, "btcturk_activity_up", account="main") == 1 and samples(m, TRADES_TOTAL),
            timeout=30,
            what="the counters published",
        )
        assert sample(m, "btcturk_activity_state", account="main", state="on") == 1
        assert stored(storage) == simulated(sim)
    finally:
        assert exporter.terminate() == 0
