"""The poller in process against the simulator: retries, the shared pause, and what it publishes."""

import logging
import random
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from exporter.api.account import Account, Secret
from exporter.api.budget import Budget
from exporter.api.client import BALANCES, TICKER, Client
from exporter.api.errors import REASONS, ApiError
from exporter.api.ratelimit import MAX_RETRY_AFTER, Gates
from exporter.config.loader import Config
from exporter.loops import Stopped
from exporter.poll.poller import Poller
from exporter.poll.snapshot import SHARED, Store
from exporter.simulator import Fault, SimAsset, Simulator, generate_keypair

KEYS = generate_keypair(seed=31)
ACCOUNT = Account("main", KEYS[0], Secret(KEYS[1]))
OTHER_KEYS = generate_keypair(seed=32)
OTHER = Account("other", OTHER_KEYS[0], Secret(OTHER_KEYS[1]))
HOLDINGS = [SimAsset("BTC", "Bitcoin", Decimal("1"), Decimal("0")), SimAsset("ETH", "Ethereum", 0, 0)]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_account(*KEYS, HOLDINGS)
        yield simulator


def make(
    sim: Simulator,
    client: Client | None = None,
    accounts: tuple[Account, ...] = (ACCOUNT,),
    gates: Gates | None = None,
) -> tuple[Poller, Store]:
    config = Config(accounts=accounts, api_url=sim.url, poll_interval=2.0, timeout=0.5, max_staleness=20.0)
    store = Store([a.name for a in accounts], REASONS, [(SHARED, "ticker")])
    return Poller(config, client or Client(sim.url, 0.5), store, gates=gates), store


def deadline(poller: Poller, seconds: float = 2.0) -> float:
    return poller._monotonic() + seconds


def test_successful_poll_publishes_non_zero_assets(sim: Simulator) -> None:
    poller, store = make(sim)
    poller.poll_account(ACCOUNT, deadline(poller))
    view = store.view()
    assert view.health["main"].up
    assert [b.asset for b in view.snapshots["main"].balances] == ["BTC"]
    assert view.clock_offset is not None
    assert view.requests[("main", BALANCES, "200")] == 1


def test_unchanged_balances_keep_their_tuple(sim: Simulator) -> None:
    poller, store = make(sim)
    poller.poll_account(ACCOUNT, deadline(poller))
    first = store.view().snapshots["main"]
    poller.poll_account(ACCOUNT, deadline(poller))
    second = store.view().snapshots["main"]
    assert second is not first
    assert second.balances is first.balances
    sim.set_assets(KEYS[0], [SimAsset("BTC", "Bitcoin", Decimal("2"), Decimal("0"))])
    poller.poll_account(ACCOUNT, deadline(poller))
    assert store.view().snapshots["main"].balances is not first.balances


def test_transient_failure_is_retried_within_the_poll(sim: Simulator) -> None:
    poller, store = make(sim)
    sim.inject(Fault("status", status=503), endpoint=BALANCES, times=1)
    poller.poll_account(ACCOUNT, deadline(poller))
    view = store.view()
    assert view.health["main"].up
    assert view.requests[("main", BALANCES, "503")] == 1
    assert view.failures[("main", "server_error")] == 0


def test_retries_stop_before_the_next_poll(sim: Simulator) -> None:
    poller, store = make(sim)
    sim.inject(Fault("status", status=500), endpoint=BALANCES)
    start = poller._monotonic()
    poller.poll_account(ACCOUNT, start + 2.0)
    # No attempt may start that could outlive the deadline (attempt time is bounded by the timeout).
    assert poller._monotonic() <= start + 2.0 + 0.5
    view = store.view()
    assert not view.health["main"].up
    assert view.failures[("main", "server_error")] == 1
    assert view.requests[("main", BALANCES, "500")] >= 2


def test_auth_failure_is_not_retried(sim: Simulator) -> None:
    poller, store = make(sim)
    sim.inject(Fault("auth"), endpoint=BALANCES)
    poller.poll_account(ACCOUNT, deadline(poller))
    view = store.view()
    assert view.requests[("main", BALANCES, "401")] == 1
    assert view.failures[("main", "auth")] == 1


def test_retry_after_pauses_everyone_and_is_capped(sim: Simulator) -> None:
    poller, _ = make(sim)
    sim.inject(Fault("rate_limit", retry_after=86400), endpoint=BALANCES, times=1)
    poller.poll_account(ACCOUNT, deadline(poller))
    assert 0 < poller.gates["balances"].paused() <= MAX_RETRY_AFTER


def test_unexpected_errors_are_counted_not_swallowed(sim: Simulator) -> None:
    class Broken(Client):
        def balances(self, account, hook=None, deadline=None):  # type: ignore[no-untyped-def, override]
            raise KeyError("a bug")

    poller, store = make(sim, Broken(sim.url, 0.5))
    poller.poll_account(ACCOUNT, deadline(poller))
    view = store.view()
    assert not view.health["main"].up
    assert view.failures[("main", "bad_response")] == 1


def test_ticker_failure_counts_only_the_ticker(sim: Simulator) -> None:
    poller, store = make(sim)
    sim.inject(Fault("status", status=404), endpoint="/api/v2/ticker")
    poller.poll_prices(deadline(poller))
    view = store.view()
    assert view.failures[(SHARED, "ticker")] == 1
    assert view.prices is None
    assert not any(n for (account, _), n in view.failures.items() if account == "main")


# --- per-endpoint budgets ------------------------------------------------------------------------


def test_a_429_on_balances_does_not_pause_the_ticker(sim: Simulator) -> None:
    poller, store = make(sim)
    sim.inject(Fault("rate_limit", retry_after=30), endpoint=BALANCES, times=1)
    poller.poll_account(ACCOUNT, deadline(poller))
    assert store.view().failures[("main", "rate_limited")] == 1
    assert poller.gates["balances"].paused() > 20
    # A deadline well inside the balances pause: the ticker must not wait for it.
    poller.poll_prices(deadline(poller, 1.0))
    view = store.view()
    assert view.prices is not None
    assert view.failures[(SHARED, "ticker")] == 0
    assert poller.gates["ticker"].paused() == 0


def test_an_account_that_sent_nothing_fails_only_at_its_deadline(sim: Simulator) -> None:
    sim.add_account(*OTHER_KEYS, HOLDINGS)
    poller, store = make(sim, accounts=(ACCOUNT, OTHER))
    sim.inject(Fault("rate_limit", retry_after=30), endpoint=BALANCES, times=1)
    poller.poll_account(ACCOUNT, deadline(poller))
    end = deadline(poller, 1.5)
    poller.poll_account(OTHER, end)
    # It waited for the pause as long as an attempt could still start (deadline minus the timeout) ...
    assert poller._monotonic() >= end - 0.5
    view = store.view()
    # ... and sent nothing: only the first account's 429 reached the API.
    assert view.requests.get(("other", BALANCES, "200")) is None
    assert sim.count(BALANCES) == 1
    assert view.failures[("other", "rate_limited")] == 1


def test_an_account_waiting_for_a_short_pause_is_not_a_failure(sim: Simulator) -> None:
    sim.add_account(*OTHER_KEYS, HOLDINGS)
    poller, store = make(sim, accounts=(ACCOUNT, OTHER))
    sim.inject(Fault("rate_limit", retry_after=1), endpoint=BALANCES, times=1)
    poller.poll_account(OTHER, deadline(poller, 0.6))  # too short for the 1 s pause: fails
    poller.poll_account(ACCOUNT, deadline(poller, 3.0))
    view = store.view()
    assert view.health["main"].up
    assert view.failures[("main", "rate_limited")] == 0
    assert view.requests[("main", BALANCES, "200")] == 1


def test_the_client_side_limiter_keeps_retries_from_becoming_429s() -> None:
    budgets = [Budget("balances", 5, (BALANCES,)), Budget("ticker", 600, (TICKER,))]
    with Simulator(balance_limit=5) as simulator:
        simulator.add_account(*KEYS, HOLDINGS)
        poller, store = make(simulator, gates=Gates(budgets))
        simulator.inject(Fault("status", status=503), endpoint=BALANCES, times=4)
        poller.poll_account(ACCOUNT, deadline(poller, 6.0))
        for _ in range(2):
            poller.poll_account(ACCOUNT, deadline(poller, 1.0))
        assert simulator.count(BALANCES, 503) == 4
        assert simulator.count(BALANCES, 429) == 0
        assert simulator.count(BALANCES) == 5
        view = store.view()
        # The first poll got through on its fifth attempt; the budget held the next ones back.
        assert view.requests[("main", BALANCES, "200")] == 1
        assert view.failures[("main", "rate_limited")] == 2


def test_retry_after_on_a_5xx_pauses_its_endpoint(sim: Simulator) -> None:
    class Busy(Client):
        def balances(self, account, hook=None, deadline=None):  # type: ignore[no-untyped-def, override]
            raise ApiError("server_error", BALANCES, 503, retry_after=7)

    poller, store = make(sim, Busy(sim.url, 0.5))
    started = time.monotonic()
    poller.poll_account(ACCOUNT, deadline(poller))
    # The Retry-After of 7 s, less only the time the poll itself took.
    assert 7 - (time.monotonic() - started) <= poller.gates["balances"].paused() <= 7
    assert poller.gates["ticker"].paused() == 0
    assert store.view().failures[("main", "server_error")] == 1


# --- scheduling ----------------------------------------------------------------------------------


def test_each_attempt_gets_the_time_left(sim: Simulator) -> None:
    lefts: list[float] = []
    poller, _ = make(sim)
    sim.inject(Fault("status", status=500), endpoint=BALANCES)

    def attempt(left: float) -> None:
        lefts.append(left)
        poller.client.balances(ACCOUNT)

    end = deadline(poller, 2.0)
    with pytest.raises(ApiError):
        poller._call(BALANCES, "account main", attempt, end)
    assert len(lefts) >= 2
    assert lefts == sorted(lefts, reverse=True)
    assert all(0.5 <= left <= 2.0 for left in lefts)


def test_a_stop_during_a_ticker_retry_is_not_a_failure(sim: Simulator) -> None:
    poller, store = make(sim)
    sim.inject(Fault("status", status=500), endpoint=TICKER)
    stopped = threading.Event()

    def run() -> None:
        try:
            poller.poll_prices(deadline(poller, 30.0))
        except Stopped:
            stopped.set()

    thread = threading.Thread(target=run)
    thread.start()
    sim.wait_for_requests(TICKER, 1, status=500)
    poller.stop()
    thread.join(5)
    assert stopped.is_set()
    assert store.view().failures[(SHARED, "ticker")] == 0


class Recorded(Poller):
    """A poller whose waits advance a fake clock and are recorded, stopping after `limit` waits."""

    def __init__(self, config: Config, limit: int, **kwargs: object) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self.limit = limit
        client = Client("http://127.0.0.1:9", 0.5)
        super().__init__(config, client, Store([]), monotonic=self.clock, **kwargs)  # type: ignore[arg-type]

    def clock(self) -> float:
        return self.now

    def _sleep(self, seconds: float) -> None:
        if len(self.waits) >= self.limit:
            raise Stopped
        self.waits.append(seconds)
        self.now += seconds


def loop_config(accounts: tuple[Account, ...]) -> Config:
    return Config(accounts=accounts, api_url="http://127.0.0.1:9", poll_interval=10.0, timeout=1.0)


def test_a_loop_backs_off_after_unexpected_errors() -> None:
    poller = Recorded(loop_config((ACCOUNT,)), 6, rng=random.Random(3))

    def broken(deadline: float) -> None:
        raise KeyError("a bug")

    poller._loop(broken)
    first, *gaps = poller.waits
    assert first == 0
    # 20 s, 40 s, 80 s, 160 s, then capped at 300 s (each within the 5% jitter).
    for gap, expected in zip(gaps, (20, 40, 80, 160, 300), strict=True):
        assert gap == pytest.approx(expected, abs=0.5 + 0.05 * 10)


def test_a_loop_without_errors_keeps_the_interval() -> None:
    poller = Recorded(loop_config((ACCOUNT,)), 4, rng=random.Random(3))
    calls: list[float] = []
    poller._loop(calls.append)
    assert len(calls) == 4
    assert all(9.5 <= gap <= 10.5 for gap in poller.waits[1:])


def test_a_single_account_starts_at_once_several_are_spread() -> None:
    single = Recorded(loop_config((ACCOUNT,)), 1, rng=random.Random(3))
    single._loop(lambda deadline: None)
    assert single.waits == [0.0]
    several = Recorded(loop_config((ACCOUNT, OTHER)), 1, rng=random.Random(3))
    several._loop(lambda deadline: None)
    assert 0 < several.waits[0] <= 0.5


# --- logs ----------------------------------------------------------------------------------------


def test_logs_name_the_account_the_reason_and_the_poll(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    poller, _ = make(sim)
    sim.inject(Fault("status", status=503), endpoint=BALANCES, times=1)
    with caplog.at_level(logging.DEBUG, logger="exporter"):
        poller.poll_account(ACCOUNT, deadline(poller))
    retry = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retry) == 1
    assert "account main" in retry[0] and "server_error" in retry[0]
    polled = [r for r in caplog.records if r.getMessage().startswith("polled account main")]
    assert len(polled) == 1 and polled[0].levelno == logging.DEBUG
    assert "2 assets" in polled[0].getMessage()
    assert "s:" in polled[0].getMessage()
