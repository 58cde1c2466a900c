"""The activity sync in process against the simulator over loopback: backfill, restarts, permissions,
429s and the disabled switch."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from support import Later, wait_for

from exporter.activity.oddities import MAX_RECORD_WARNINGS
from exporter.activity.price_fetch import PRICES_RETRY_MAX
from exporter.activity.state import ActivitySnapshot
from exporter.activity.sync import ActivitySync
from exporter.api.account import Account, Secret
from exporter.api.client import BALANCES, TICKER, Client
from exporter.api.errors import REASONS
from exporter.api.market import EXCHANGE_INFO, MarketStatus
from exporter.api.ratelimit import Gates
from exporter.api.records import CRYPTO, FIAT, KINDS, TRADES
from exporter.api.transactions import KLINES, OHLCS, ActivityClient
from exporter.config.activity import plan
from exporter.config.activity_settings import ActivitySettings
from exporter.config.loader import Config
from exporter.ledger.costbasis import compute
from exporter.ledger.store import Ledger
from exporter.poll.poller import Poller
from exporter.poll.snapshot import SHARED, Store
from exporter.pricing.routes import DIVISION
from exporter.simulator import Fault, Simulator, generate_keypair
from exporter.simulator import activity as sim_activity
from exporter.simulator.ledger import Trade as SimTrade

KEYS = generate_keypair(seed=41)
ACCOUNT = Account("main", KEYS[0], Secret(KEYS[1]))
NO_ACTIVITY_KEYS = generate_keypair(seed=42)
NO_ACTIVITY = Account("nokey", NO_ACTIVITY_KEYS[0], Secret(NO_ACTIVITY_KEYS[1]))
DAYS = 50
CAP = 15
ACTIVITY_PATHS = (TRADES, CRYPTO, FIAT)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(seed=7) as simulator:
        simulator.activity_cap = CAP
        simulator.add_account(*KEYS, history_days=DAYS, seed=3)
        yield simulator


class Published:
    """The callbacks' side: every snapshot and market status, newest kept per account."""

    def __init__(self) -> None:
        self.snapshots: dict[str, ActivitySnapshot] = {}
        self.markets: list[MarketStatus] = []

    def snapshot(self, snapshot: ActivitySnapshot) -> None:
        self.snapshots[snapshot.account] = snapshot

    def market(self, status: MarketStatus) -> None:
        self.markets.append(status)


def settings(**overrides: object) -> ActivitySettings:
    base: dict[str, object] = {"since": f"{DAYS + 5}d", "page_cap": CAP, "rate_limit_share": 1.0}
    base.update(overrides)
    return ActivitySettings(**base)  # type: ignore[arg-type]


def make_sync(
    sim: Simulator,
    ledger: Ledger,
    published: Published,
    accounts: tuple[Account, ...] = (ACCOUNT,),
    gates: Gates | None = None,
    rest: Client | None = None,
    graph: Client | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    **overrides: object,
) -> ActivitySync:
    client = ActivityClient(rest or Client(sim.url, 2.0), graph or Client(sim.url, 2.0))
    return ActivitySync(
        settings(**overrides),
        accounts,
        client,
        ledger,
        gates=gates or Gates(),
        on_snapshot=published.snapshot,
        on_market=published.market,
        monotonic=monotonic,
    )


def test_a_full_backfill_equals_the_simulators_history_despite_the_page_cap(
    sim: Simulator, tmp_path: Path
) -> None:
    published = Published()
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(sim, ledger, published)
        snapshots = sync.run_once()
        history = sim.history(KEYS[0])
        assert len(history.trades) > 5 * CAP  # enough that whole 30-day windows must be split
        stored = {t.id: t for t in ledger.trades("main")}
        assert set(stored) == {t.id for t in history.trades}
        for record in history.trades:
            mine = stored[record.id]
            assert (mine.order_id, mine.timestamp_ms, mine.base, mine.quote, mine.side) == (
                record.order_id,
                record.timestamp,
                record.numerator,
                record.denominator,
                record.side,
            )
            assert (mine.price, mine.amount, mine.fee, mine.tax) == (
                record.price,
                record.amount,
                record.fee,
                record.tax,
            )
        # Replayed a month at a time, the cost basis is the one of the whole history at once.
        trades, transfers = ledger.trades("main"), ledger.transfers("main")
        whole = {c: compute(trades, transfers, c, sync.prices.price_at) for c in ("TRY", "USDT")}
        assert dict(snapshots["main"].cost_basis) == whole
        transfers = {(t.kind, t.id): t for t in ledger.transfers("main")}
        expected = {("fiat" if t.fiat else "crypto", t.id): t for t in history.transfers}
        assert set(transfers) == set(expected)
        for key, record in expected.items():
            assert (transfers[key].amount, transfers[key].timestamp_ms) == (record.amount, record.timestamp)
            assert transfers[key].currency == record.currency
    # Halving happened: more trade requests than two 30-day windows would take.
    assert sim.count(TRADES) > len(history.trades) // CAP
    snapshot = snapshots["main"]
    assert snapshot.up and snapshot.permitted
    assert snapshot.records["trade"] == len(history.trades)
    assert all(snapshot.backfill_complete.values())
    assert not any(reason == "truncated" for _, reason in snapshot.failures)
    assert snapshot.last_trade_ms == max(t.timestamp for t in history.trades)
    assert set(snapshot.cost_basis) == {"TRY", "USDT"}
    assert published.snapshots["main"] is snapshot
    assert published.markets and published.markets[0].trading["BTCTRY"] is True


def test_a_restart_rereads_only_the_recent_window_and_picks_up_late_arrivals(
    sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        make_sync(sim, ledger, Published()).run_once()
    before = {p: sim.count(p) for p in ACTIVITY_PATHS}
    history = sim.history(KEYS[0])
    newest = max(history.trades, key=lambda t: t.timestamp)
    late = SimTrade(
        newest.id + 10_000, newest.order_id + 10_000, newest.timestamp - 60_000, newest.numerator,
        newest.denominator, newest.side, newest.price, newest.amount, newest.total, newest.fee, newest.tax,
    )  # fmt: skip
    with sim.lock:
        history.trades.append(late)
    with Ledger(path) as ledger:
        make_sync(sim, ledger, Published()).run_once()
        assert late.id in {t.id for t in ledger.trades("main")}
    assert {p: sim.count(p) - before[p] for p in ACTIVITY_PATHS} == dict.fromkeys(ACTIVITY_PATHS, 1)


def test_a_restart_with_nothing_new_to_read_revalues_once_every_endpoint_is_read(
    sim: Simulator, tmp_path: Path
) -> None:
    """The publisher's first pass may come before the endpoints' first reads: it must not use up the
    figures' turn, or a restart whose reads store nothing new would never serve a cost basis."""
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        assert make_sync(sim, ledger, Published()).run_once()["main"].cost_basis
    with Ledger(path) as ledger:
        sync = make_sync(sim, ledger, Published())
        assert sync.refresh_market() is not None
        early = sync.publish("main")
        assert early is not None and early.cost_basis == {} and not any(early.backfill_complete.values())
        for kind in KINDS:
            while (progress := sync.sync_endpoint(ACCOUNT, kind)) is not None and not progress.done:
                pass
        assert len(ledger.trades("main")) == len(sim.history(KEYS[0]).trades)  # nothing new was stored
        snapshot = sync.publish("main")
        assert snapshot is not None and all(snapshot.backfill_complete.values())
        trades, transfers = ledger.trades("main"), ledger.transfers("main")
        whole = {c: compute(trades, transfers, c, sync.prices.price_at) for c in ("TRY", "USDT")}
        assert dict(snapshot.cost_basis) == whole


def test_a_restart_during_the_backfill_resumes_where_it_stopped(sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        sync = make_sync(sim, ledger, Published(), requests_per_turn=12)
        progress = sync.sync_endpoint(ACCOUNT, "trade")
        assert progress is not None and not progress.done and progress.requests == 12
        cursor = ledger.cursor("main", "trade")
        assert not cursor.backfill_complete
        assert cursor.backfilled_to_ms == progress.reached_ms
        assert len(ledger.trades("main")) > 0
        # Part of the history would give a wrong cost basis: none is published until the backfill is done.
        assert sync.refresh_market() is not None
        partial = sync.publish("main")
        assert partial.cost_basis == {} and not partial.backfill_complete["trade"] and not partial.up
        assert partial.records["trade"] == len(ledger.trades("main"))
    first = sim.count(TRADES)
    with Ledger(path) as ledger:
        make_sync(sim, ledger, Published()).run_once()
        assert len(ledger.trades("main")) == len(sim.history(KEYS[0]).trades)
    total = sim.count(TRADES)
    with Ledger(tmp_path / "fresh.db") as ledger:
        make_sync(sim, ledger, Published()).run_once()
    # Resuming took fewer requests than a fresh backfill: it did not start over.
    assert total - first < sim.count(TRADES) - total


def test_a_key_without_activity_permission_turns_activity_off_with_one_warning(
    sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim.add_account(*NO_ACTIVITY_KEYS, can_read_activity=False)
    accounts = (ACCOUNT, NO_ACTIVITY)
    gates = Gates()
    config = Config(accounts=accounts, api_url=sim.url, poll_interval=0.5, timeout=1.0, max_staleness=20.0)
    store = Store([a.name for a in accounts], REASONS, [(SHARED, "ticker")])
    poller = Poller(config, Client(sim.url, 1.0), store, gates=gates)
    published = Published()
    caplog.set_level(logging.INFO)
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(
            sim, ledger, published, accounts, gates, interval=0.2, permission_recheck=0.5, market_interval=60
        )
        poller.start()
        sync.start()
        try:
            # Any endpoint's recheck counts for the account; each is refused again.
            refused = lambda: sum(sim.count(p, 401) for p in ACTIVITY_PATHS)  # noqa: E731
            wait_for(lambda: refused() >= 5, what="rechecks of the refused key")
            off = wait_for(lambda: published.snapshots.get("nokey"), what="a snapshot of the refused key")
            assert not off.up and not off.permitted
            assert {reason for _, reason in off.failures} == {"auth"}
            assert ledger.trades("nokey") == []
            wait_for(lambda: published.snapshots.get("main") and published.snapshots["main"].up)
            wait_for(lambda: store.view().health["nokey"].up, what="balances of the refused key")
            assert "nokey" in store.view().snapshots
            warnings = [r for r in caplog.records if "activity of account nokey is off" in r.getMessage()]
            assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
            sim.set_activity_permission(NO_ACTIVITY_KEYS[0], True)
            wait_for(lambda: published.snapshots["nokey"].up, what="activity back on")
        finally:
            sync.stop()
            poller.stop()
    assert any("nokey is readable again" in r.getMessage() for r in caplog.records)
    assert sim.count(BALANCES, 401) == 0


def test_a_429_on_one_activity_endpoint_pauses_only_that_endpoint(sim: Simulator, tmp_path: Path) -> None:
    gates = Gates()
    sim.inject(Fault("rate_limit", retry_after=3.0), endpoint=TRADES, times=1)
    published = Published()
    config = Config(accounts=(ACCOUNT,), api_url=sim.url, poll_interval=0.3, timeout=1.0, max_staleness=20.0)
    store = Store(["main"], REASONS, [(SHARED, "ticker")])
    poller = Poller(config, Client(sim.url, 1.0), store, gates=gates)
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(sim, ledger, published, gates=gates, interval=30, market_interval=60)
        sync.start()
        poller.start()
        try:
            wait_for(lambda: sim.count(TRADES, 429) == 1, what="the 429")
            wait_for(lambda: gates.for_path(TRADES).paused() > 1.0, what="the trade pause")
            balances_then = sim.count(BALANCES)
            # During the trade pause, crypto and fiat backfill to the end and balances keep coming.
            wait_for(
                lambda: (
                    ledger.cursor("main", "crypto").backfill_complete
                    and ledger.cursor("main", "fiat").backfill_complete
                ),
                what="crypto and fiat backfilled",
            )
            wait_for(lambda: sim.count(BALANCES) >= balances_then + 2, what="balances polls")
            assert gates.for_path(TRADES).paused() > 0
            assert sim.count(TRADES) == 1
            for other in (BALANCES, TICKER, CRYPTO, FIAT):
                assert gates.for_path(other).paused() == 0
            wait_for(lambda: ledger.cursor("main", "trade").backfill_complete, timeout=20, what="trades")
        finally:
            sync.stop()
            poller.stop()
    assert sim.count(BALANCES, 429) == 0


def test_disabled_makes_no_calls_at_all(sim: Simulator, tmp_path: Path) -> None:
    published = Published()
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(sim, ledger, published, enabled=False)
        sync.start()
        assert sync.run_once() == {}
        sync.stop()
    assert sim.stats() == {}
    assert published.snapshots == {} and published.markets == []


def test_prices_are_fetched_once_and_answer_direct_inverse_and_bridged(
    sim: Simulator, tmp_path: Path
) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(sim, ledger, Published())
        snapshot = sync.run_once()["main"]
        fetched = sim.count(KLINES) + sim.count(OHLCS)
        assert fetched > 0
        trades = ledger.trades("main")
        # an hour the sync did not price (the unit value prices every asset at each flow's hour)
        closed = [t for t in trades if t.timestamp_ms / 1000 < sim.now() - 7200]
        unpriced = [t for t in closed if sync.prices.price_at("BTC", "TRY", t.timestamp_ms) is None]
        sample = unpriced[len(unpriced) // 2]
        hour = sample.timestamp_ms // 3_600_000 * 3600
        closes = sim.prices  # the simulator's own path: its hourly close is the last sample in the hour
        assert sync.prices.prefetch({("BTC", "TRY"): {hour}}, sim.now()) is None
        assert sync.prices.prefetch({("BTC", "TRY"): {hour}}, sim.now()) is None
        assert sim.count(KLINES) == fetched + 1
        fetched += 1
        direct = sync.prices.price_at("BTC", "TRY", sample.timestamp_ms)
        assert direct is not None
        expected = closes.price_at("BTC", hour + 3600 - 1e-6)
        assert expected is not None and abs(float(direct) / expected - 1) < 1e-6
        inverse = sync.prices.price_at("TRY", "BTC", sample.timestamp_ms)
        assert inverse == DIVISION.divide(1, direct)
        assert sync.prices.routes("SOL", "USDT")
        # Recomputing over the same records fetches no past price again: only candles still open then.
        now_hour = int(sim.now()) // 3600 * 3600
        wants = sync.prices.needs(trades, ledger.transfers("main"), ("TRY", "USDT"))
        needs: dict[tuple[str, str], set[int]] = {}
        for (asset, currency), hours in wants.items():
            for leg in sync.prices.routes(asset, currency)[0].legs:  # the preferred route's pairs
                needs.setdefault((leg.base, leg.quote), set()).update(hours)
        still_open = [pair for pair, hours in needs.items() if max(hours) >= now_hour - 3600]
        sync.health["main"].changed = True
        sync.publish("main")
        assert sim.count(KLINES) + sim.count(OHLCS) - fetched <= len(still_open) < len(needs)
    # The airdropped token has no market: counted as unpriced, never given a made-up value.
    unpriced_tokens = sum(1 for t in sim.history(KEYS[0]).transfers if t.currency == "OLDTOKEN")
    assert snapshot.cost_basis["TRY"].unpriced == unpriced_tokens


def test_a_millisecond_holding_a_full_page_is_counted_not_dropped_silently(
    sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = sim.history(KEYS[0])
    model = history.trades[len(history.trades) // 2]
    crowd = [
        SimTrade(
            *(model.id + 50_000 + i, model.order_id, model.timestamp, model.numerator, model.denominator),
            *(model.side, model.price, model.amount, model.total, model.fee, model.tax),
        )
        for i in range(CAP + 5)
    ]
    with sim.lock:
        history.trades.extend(crowd)
    with Ledger(tmp_path / "ledger.db") as ledger:
        snapshot = make_sync(sim, ledger, Published()).run_once()["main"]
        stored = {t.id for t in ledger.trades("main")}
    assert snapshot.failures[(TRADES, "truncated")] >= 1
    assert any(r.levelno == logging.ERROR and "page cap" in r.getMessage() for r in caplog.records)
    # Everything outside the crowded millisecond is complete; the crowd is as complete as the cap allows.
    assert {t.id for t in history.trades if t.timestamp != model.timestamp} <= stored
    assert len(stored & {t.id for t in crowd}) >= CAP - 1


def test_without_market_status_or_price_history_nothing_is_made_up(sim: Simulator, tmp_path: Path) -> None:
    sim.inject(Fault("status", status=500), endpoint=EXCHANGE_INFO)
    sim.inject(Fault("status", status=503), endpoint=KLINES)
    later = Later()
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(sim, ledger, Published(), request_deadline=1.0, monotonic=later)
        first = sync.run_once()["main"]
        # Records are synced; no market means no price routes, so no cost basis rather than a wrong one.
        assert first.records["trade"] == len(sim.history(KEYS[0]).trades)
        assert first.cost_basis == {} and sync.market is None
        sim.clear_faults()
        sim.inject(Fault("status", status=503), endpoint=KLINES)
        assert sync.refresh_market() is not None
        second = sync.publish("main")
        assert second.failures[(KLINES, "server_error")] >= 1
        # TRY-quoted trades cannot be valued in USDT without USDTTRY's history: no figures over the
        # holes (they would leave those trades out), marked stale.
        assert second.cost_basis == {} and second.stale
        sim.clear_faults()
        assert sync.publish("main").cost_basis == {}  # not asked again at once
        later.skip(PRICES_RETRY_MAX)
        third = sync.publish("main")  # the failed prices are tried again after the wait
        assert not third.stale and "USDT" in third.cost_basis


class Refusing:
    """A loopback port that accepts every connection and closes it at once: graph-api unreachable."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()


def test_an_unreachable_graph_api_is_one_warning_then_quiet_retries_with_backoff(
    sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = Refusing()
    later = Later()
    with Ledger(tmp_path / "ledger.db") as ledger:
        # graph_api_url left at BTCTurk's while api_url is the simulator: the README's old recipe.
        sync = make_sync(sim, ledger, Published(), graph=Client(dead.url, 0.5), monotonic=later,
                         request_deadline=3.0)  # fmt: skip
        sync.run_once()
        first = dead.connections
        assert first >= 1
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        # One line for graph-api, one for the account whose figures it leaves stale.
        assert len(warnings) == 2, [r.getMessage() for r in warnings]
        assert warnings[1].getMessage().startswith("account main: cost basis and profit are stale")
        message = warnings[0].getMessage()
        assert message.startswith("price history unavailable at https://graph-api.btcturk.com: ")
        assert f"api_url is {sim.url} but graph_api_url is BTCTurk's" in message
        caplog.clear()
        # Before the wait is over: no request at all.
        sync.publish("main")
        assert dead.connections == first
        # Then one request per step of the backoff, each waiting longer, and nothing above debug.
        waits = []
        for _ in range(4):
            before = sync.publisher.fetch.retry_at
            assert before is not None
            waits.append(before - later())
            later.skip(PRICES_RETRY_MAX)
            sync.publish("main")
            assert dead.connections == first + len(waits), "one attempt per step, no retry loop"
        assert waits[0] < waits[1] < waits[2] <= PRICES_RETRY_MAX
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []


def test_plan_counts_one_read_per_account_and_endpoint_each_interval() -> None:
    uses = plan(3, ActivitySettings(interval=60, market_interval=300))
    by_name = {use.budget.name: use for use in uses}
    assert by_name["transactions/trade"].per_minute == 3
    assert by_name["transactions/crypto"].fits and by_name["exchangeinfo"].per_minute == 0.2
    assert not plan(200, ActivitySettings(interval=60))[1].fits


def test_connect_shares_the_rest_client_and_points_graph_at_its_own_host(sim: Simulator) -> None:
    rest = Client(sim.url, 3.0)
    client = ActivityClient.connect(rest, sim.url + "/")
    assert client.rest is rest and client.graph.api_url == sim.url and client.graph.total_timeout == 3.0


def test_bad_records_are_counted_once_each_and_logged_up_to_a_bound(
    sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim.activity_cap = 1000
    trade = sim.history(KEYS[0]).trades[0].to_json()
    sim.serve_items(TRADES, [{**trade, "id": 100 + n, "price": "?"} for n in range(MAX_RECORD_WARNINGS + 5)])
    oddities: list[tuple[str, str]] = []
    published = Published()
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(sim, ledger, published, page_cap=1000)
        sync.endpoints.oddities.on_oddity = lambda endpoint, kind: oddities.append((endpoint, kind))
        with caplog.at_level(logging.WARNING, logger="exporter.activity.oddities"):
            sync.run_once()
            sync.sync_endpoint(ACCOUNT, "trade")  # read again: nothing new to count or say
        assert oddities == [(TRADES, "bad_record")] * (MAX_RECORD_WARNINGS + 5)
        lines = [r.getMessage() for r in caplog.records if "skipped, the rest kept" in r.getMessage()]
        assert len(lines) == MAX_RECORD_WARNINGS
        assert "counted in btcturk_api_oddities_total, not logged" in lines[-1]
        assert {t.id for t in ledger.trades("main")} == {t.id for t in sim.history(KEYS[0]).trades}
        assert published.snapshots["main"].up


def test_a_history_cut_short_by_since_warns_once_per_short_asset(
    sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Sales of coins bought before activity.since: each short asset is one warning, the first time only."""
    caplog.set_level(logging.WARNING, logger="exporter.activity.revalue")
    published = Published()

    def short_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if "beyond the ledger's holding" in r.getMessage()]

    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(sim, ledger, published, since="10d")
        snapshot = sync.run_once()["main"]
        largest: dict[str, Decimal] = {}
        for basis in snapshot.cost_basis.values():
            for asset, position in basis.positions.items():
                if position.shortfall_quantity > largest.get(asset, Decimal(0)):
                    largest[asset] = position.shortfall_quantity
        assert largest, "the simulator's history should sell coins bought before since"
        lines = short_lines()
        assert len(lines) == len(largest)
        for line, (asset, quantity) in zip(lines, sorted(largest.items()), strict=True):
            assert line.startswith(f"account main: {format(quantity, 'f')} {asset} given away beyond")
        caplog.clear()
        sync.publisher.health["main"].changed = True  # a revaluation with the same shortfalls
        assert sync.publish("main") is not None
        assert short_lines() == []


def test_a_window_not_answered_after_the_backfill_holds_the_figures_until_it_is_read_again(
    sim: Simulator, tmp_path: Path
) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        sync = make_sync(sim, ledger, Published())
        before = sync.run_once()["main"]
        assert before.up
        with sim.lock:
            account = sim.accounts[KEYS[0]]
            new = sim_activity.trade(
                account, sim.market.pairs["BTCTRY"], "buy", Decimal("0.001"), sim.now_ms() - 5_000, sim.ids
            )
        assert new is not None
        sim.activity_full = "padded"  # the recent window comes back padded with older records
        assert sync.sync_endpoint(ACCOUNT, "trade") is None
        during = sync.publish("main")
        assert during is not None and not during.up
        assert during.failures[(TRADES, "window_ignored")] == 1
        # The new trade, inside the window, is kept; the figures are not recomputed over a window
        # the endpoint did not answer.
        assert new.id in {t.id for t in ledger.trades("main")}
        assert during.cost_basis == before.cost_basis
        sim.activity_full = None
        progress = sync.sync_endpoint(ACCOUNT, "trade")
        assert progress is not None and progress.done and progress.stored == 0  # kept already
        after = sync.publish("main")
        assert after is not None and after.up
        trades, transfers = ledger.trades("main"), ledger.transfers("main")
        whole = {c: compute(trades, transfers, c, sync.prices.price_at) for c in ("TRY", "USDT")}
        assert dict(after.cost_basis) == whole != dict(before.cost_basis)
