"""When and where the Renderer renders: on the publishing thread, never on a scrape's."""

import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from support import (
    NOW,
    SETTINGS,
    TICKERS,
    FakeClock,
    balance,
    parse_metrics,
    quotes,
    sample,
    snap,
    ticker,
    wait_for,
)

from exporter.metrics import body as body_render
from exporter.metrics import renderer as metrics
from exporter.metrics import series
from exporter.metrics.process import LIVE_TTL
from exporter.metrics.renderer import Renderer
from exporter.poll.snapshot import SHARED, AccountSnapshot, PriceSnapshot, Store

BTC_TRY = ("btcturk_balance_value", {"account": "main", "asset": "BTC", "currency": "TRY"})


def value(renderer: Renderer) -> float | None:
    name, labels = BTC_TRY
    return sample(parse_metrics(renderer.scrape().decode()), name, **labels)


def repriced(last: str) -> tuple:
    """TICKERS with BTCTRY at a new last price."""
    return tuple(ticker("BTCTRY", "BTC", "TRY", last) if t.pair == "BTCTRY" else t for t in TICKERS)


class Recorder:
    """Wraps value_balances to note the thread of every call, and to hold one call when asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: list[str] = []
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()
        real = series.value_balances

        def wrapped(*args: object, **kwargs: object) -> object:
            self.threads.append(threading.current_thread().name)
            if self.hold:
                self.entered.set()
                assert self.release.wait(10), "never released"
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(series, "value_balances", wrapped)


def publish_in_thread(store: Store, snapshot: PriceSnapshot, name: str = "poll ticker") -> threading.Thread:
    thread = threading.Thread(target=store.publish_prices, args=(snapshot,), name=name)
    thread.start()
    return thread


def test_the_scrape_after_a_price_change_renders_nothing(
    store: Store, renderer: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(monkeypatch)
    store.publish_balances(snap("main", (balance("BTC", "1"),)), 0.1)
    store.publish_balances(snap("savings", (balance("BTC", "3"),)), 0.1)
    publish_in_thread(store, quotes(repriced("3600000"))).join(10)
    assert recorder.threads == ["poll ticker", "poll ticker"], "one valuation per account, on the poller"
    recorder.threads.clear()
    store.count_request(SHARED, "/api/v2/ticker", "200")
    assert value(renderer) == 3_600_000
    assert renderer.scrape(gzipped=True)
    assert recorder.threads == [], "a scrape valued balances itself"


def test_a_scrape_never_waits_for_a_render_in_progress(
    store: Store, renderer: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.publish_balances(snap("main", (balance("BTC", "1"),)), 0.1)
    store.publish_prices(quotes(TICKERS))
    recorder = Recorder(monkeypatch)
    recorder.hold = True
    publisher = publish_in_thread(store, quotes(repriced("3600000")))
    try:
        assert recorder.entered.wait(10)
        seen: list[float | None] = []
        scraper = threading.Thread(target=lambda: seen.append(value(renderer)))
        scraper.start()
        # The scrape answers with the body rendered before, while the new one is still being rendered.
        wait_for(lambda: seen, timeout=5, what="a scrape during a render")
        assert seen == [3_500_000]
    finally:
        recorder.release.set()
        publisher.join(10)
    assert value(renderer) == 3_600_000


def test_the_ticker_is_indexed_once_per_snapshot(
    store: Store, renderer: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = series.market_for

    def counting(tickers: object) -> object:
        calls.append(1)
        return real(tickers)  # type: ignore[arg-type]

    monkeypatch.setattr(series, "market_for", counting)
    store.publish_balances(snap("main", (balance("BTC", "1"),)), 0.1)
    store.publish_balances(snap("savings", (balance("BTC", "2"), balance("ETH", "1"))), 0.1)
    store.publish_prices(quotes(TICKERS))
    renderer.scrape()
    assert len(calls) == 1
    store.publish_balances(snap("main", (balance("BTC", "5"),)), 0.1)
    renderer.scrape()
    assert len(calls) == 1, "a new balance snapshot re-indexed unchanged prices"


class CountingCollector(Collector):
    def __init__(self) -> None:
        self.reads = 0

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.reads += 1
        yield GaugeMetricFamily("process_probe", "Reads of the live registry.", value=self.reads)


def test_process_metrics_are_read_once_per_interval_and_shared(store: Store, clock: FakeClock) -> None:
    collector = CountingCollector()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    renderer = Renderer(SETTINGS, store.view, monotonic=clock, live=registry)
    for _ in range(5):
        renderer.scrape()
        renderer.scrape(gzipped=True)
    scrapers = [threading.Thread(target=renderer.scrape) for _ in range(8)]
    for thread in scrapers:
        thread.start()
    for thread in scrapers:
        thread.join(10)
    assert collector.reads == 1
    clock.now += LIVE_TTL
    assert b"process_probe 2.0" in renderer.scrape()
    assert collector.reads == 2


def test_ages_come_from_the_monotonic_clock(store: Store, renderer: Renderer, clock: FakeClock) -> None:
    # The wall clock was a day behind when main was polled (then NTP stepped it): still fresh.
    store.publish_balances(AccountSnapshot("main", (balance("BTC", "1"),), NOW - 86_400, taken_mono=NOW), 0.1)
    # Savings was polled at the right wall time but 301 s ago by the monotonic clock: stale.
    store.publish_balances(AccountSnapshot("savings", (balance("BTC", "2"),), NOW, taken_mono=NOW - 301), 0.1)
    m = parse_metrics(renderer.scrape().decode())
    assert sample(m, "btcturk_balance", account="main", asset="BTC") == 1
    assert sample(m, "btcturk_balance", account="savings", asset="BTC") is None
    # The timestamp metric stays wall-clock time, as Prometheus expects of _timestamp_seconds.
    assert sample(m, "btcturk_last_success_timestamp_seconds", account="main") == NOW - 86_400


def test_snapshots_carry_a_monotonic_stamp() -> None:
    before = time.monotonic()
    snapshot = AccountSnapshot("main", (), 1.0)
    assert before <= snapshot.taken_mono <= time.monotonic()
    assert before <= PriceSnapshot((), 1.0).taken_mono <= time.monotonic()


def test_an_unchanged_repoll_keeps_the_body_and_extends_its_life(
    store: Store, renderer: Renderer, clock: FakeClock
) -> None:
    held = (balance("BTC", "1"),)
    store.publish_balances(snap("main", held), 0.1)
    first = renderer.body()
    clock.now = NOW + 200
    store.publish_balances(snap("main", held, at=NOW + 200), 0.1)
    clock.now = NOW + 400
    assert renderer.body() is first
    assert b'btcturk_balance{account="main",asset="BTC"} 1' in first


def test_concurrent_scrapers_share_one_body_when_a_snapshot_ages_out(
    store: Store, renderer: Renderer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.publish_balances(snap("main", (balance("BTC", "1"),), at=NOW - 250), 0.1)
    store.publish_balances(snap("savings", (balance("BTC", "2"),)), 0.1)
    store.publish_prices(quotes(TICKERS))
    assembled: list[int] = []
    real = body_render.assemble

    def counting(*args: object) -> tuple[bytes, bytes]:
        assembled.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(body_render, "assemble", counting)
    clock.now = NOW + 51  # main is now 301 s old; nothing was published meanwhile
    start = threading.Barrier(12)
    bodies: list[bytes] = []

    def scrape_body() -> None:
        start.wait(10)
        bodies.append(renderer.body())

    threads = [threading.Thread(target=scrape_body) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(bodies) == 12
    assert all(body is bodies[0] for body in bodies)
    assert assembled == [1]
    assert b'account="main"' not in bodies[0]
    assert b'btcturk_balance_value{account="savings",asset="BTC",currency="TRY"} 7000000' in bodies[0]


def test_prices_ageing_out_drop_values_but_keep_balances(
    store: Store, renderer: Renderer, clock: FakeClock
) -> None:
    store.publish_prices(quotes(TICKERS, at=NOW - 250))
    store.publish_balances(snap("main", (balance("BTC", "1"),)), 0.1)
    assert value(renderer) == 3_500_000
    clock.now = NOW + 51
    text = renderer.scrape().decode()
    assert "btcturk_balance_value" not in text and "btcturk_ticker_last{" not in text
    assert sample(parse_metrics(text), "btcturk_balance", account="main", asset="BTC") == 1


def test_without_attach_a_scrape_renders_what_the_store_holds(store: Store, clock: FakeClock) -> None:
    renderer = Renderer(SETTINGS, store.view, monotonic=clock)
    store.publish_balances(snap("main", (balance("BTC", "1"),)), 0.1)
    store.publish_prices(quotes(TICKERS))
    assert value(renderer) == 3_500_000
    first = renderer.body()
    assert renderer.body() is first


def test_a_failing_listener_does_not_fail_the_publish(store: Store) -> None:
    def broken() -> None:
        raise RuntimeError("render bug")

    store.on_publish(broken)
    store.publish_balances(snap("main", (balance("BTC", "1"),)), 0.1)
    assert store.view().snapshots["main"].balances[0].balance == 1


def test_scrapes_arriving_together_after_a_change_render_health_once(
    store: Store, renderer: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.publish_balances(snap("main", (balance("BTC", "1"),)), 0.1)
    renderer.scrape()
    calls: list[int] = []
    real = metrics.health_text

    def slow(*args: object) -> str:
        calls.append(1)
        # Long enough for every scraper to arrive while the first one renders.
        wait_for(lambda: len(arrived) == 10, timeout=5, interval=0.005, what="all scrapers")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(metrics, "health_text", slow)
    store.count_request("main", "/api/v1/users/balances", "200")
    arrived: list[int] = []
    bodies: list[bytes] = []

    def scrape() -> None:
        arrived.append(1)
        bodies.append(renderer.health(gzipped=True))

    threads = [threading.Thread(target=scrape) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert calls == [1]
    assert len(bodies) == 10 and all(body is bodies[0] for body in bodies)
