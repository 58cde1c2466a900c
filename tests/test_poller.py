"""The poller in process against the simulator: retries, the shared pause, and what it publishes."""

from collections.abc import Iterator
from decimal import Decimal

import pytest

from exporter.client import BALANCES, REASONS, Client
from exporter.config import Account, Config, Secret
from exporter.poller import MAX_RETRY_AFTER, Poller, RateGate
from exporter.simulator import Fault, SimAsset, Simulator, generate_keypair
from exporter.snapshot import SHARED, Store

KEYS = generate_keypair(seed=31)
ACCOUNT = Account("main", KEYS[0], Secret(KEYS[1]))
HOLDINGS = [SimAsset("BTC", "Bitcoin", Decimal("1"), Decimal("0")), SimAsset("ETH", "Ethereum", 0, 0)]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_account(*KEYS, HOLDINGS)
        yield simulator


def make(sim: Simulator, client: Client | None = None) -> tuple[Poller, Store]:
    config = Config(accounts=(ACCOUNT,), api_url=sim.url, poll_interval=2.0, timeout=0.5, max_staleness=20.0)
    store = Store(["main"], REASONS, [(SHARED, "ticker")])
    return Poller(config, client or Client(sim.url, 0.5), store), store


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
    assert 0 < poller.gate.remaining() <= MAX_RETRY_AFTER


def test_unexpected_errors_are_counted_not_swallowed(sim: Simulator) -> None:
    class Broken(Client):
        def balances(self, account, hook=None):  # type: ignore[no-untyped-def, override]
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


def test_rate_gate_extends_and_never_shortens() -> None:
    now = [100.0]
    gate = RateGate(lambda: now[0])
    gate.block(10)
    gate.block(3)
    assert gate.remaining() == 10
    now[0] = 105.0
    assert gate.remaining() == 5
    now[0] = 111.0
    assert gate.remaining() == 0
