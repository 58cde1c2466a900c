import gzip
import subprocess
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import (
    NOW,
    TICKERS,
    FakeClock,
    balance,
    parse_metrics,
    quotes,
    require_binary,
    sample,
    samples,
    snap,
    ticker,
)

from exporter.metrics.exposition import escape_label, format_value
from exporter.metrics.renderer import Renderer
from exporter.metrics.series import Settings
from exporter.poll.snapshot import Store


def scrape(renderer: Renderer) -> dict:
    return parse_metrics(renderer.scrape().decode())


def test_health_series_exist_before_any_poll(renderer: Renderer) -> None:
    m = scrape(renderer)
    assert sample(m, "btcturk_up", account="main") == 0
    assert sample(m, "btcturk_up", account="savings") == 0
    assert sample(m, "btcturk_poll_failures_total", account="main", reason="auth") == 0
    assert sample(m, "btcturk_poll_failures_total", account="", reason="ticker") == 0
    assert sample(m, "btcturk_poll_interval_seconds") == 30
    assert not samples(m, "btcturk_balance")
    (info,) = samples(m, "btcturk_exporter_build_info")
    assert dict(info)["version"]


def test_balances_values_and_tickers(store: Store, renderer: Renderer) -> None:
    store.publish_balances(
        snap("main", (balance("BTC", "1.5", "0.5"), balance("TRY", "1000.5")), NOW),
        0.2,
    )
    store.publish_prices(quotes(TICKERS, NOW))
    m = scrape(renderer)
    assert sample(m, "btcturk_up", account="main") == 1
    assert sample(m, "btcturk_balance", account="main", asset="BTC") == 2
    assert sample(m, "btcturk_balance_free", account="main", asset="BTC") == 1.5
    assert sample(m, "btcturk_balance_locked", account="main", asset="BTC") == 0.5
    assert sample(m, "btcturk_balance_value", account="main", asset="BTC", currency="TRY") == 7_000_000
    assert sample(m, "btcturk_balance_locked_value", account="main", asset="BTC", currency="USDT") == 43_750
    assert sample(m, "btcturk_portfolio_value", account="main", currency="TRY") == 7_001_000.5
    assert sample(m, "btcturk_portfolio_value", account="main", currency="USDT") == pytest.approx(
        175_025.0125
    )
    assert sample(m, "btcturk_unpriced_assets", account="main", currency="TRY") == 0
    # Only the pairs valuation needs are exported by default; DOGE and ETH are not held.
    pairs = {dict(labels)["pair"] for labels in samples(m, "btcturk_ticker_last")}
    assert pairs == {"BTCTRY", "USDTTRY", "BTCUSDT"}
    assert sample(m, "btcturk_ticker_last", pair="BTCTRY", base="BTC", quote="TRY") == 3_500_000


@pytest.mark.parametrize("side", ["bid", "ask"])
def test_a_pair_whose_book_side_empties_keeps_its_ticker_series(
    store: Store, clock: FakeClock, side: str
) -> None:
    """value_price: bid and BTCTRY's bids all gone: BTC is valued through USDT, BTCTRY stays on /metrics."""
    settings = Settings(30.0, 300.0, ("TRY",), side, export_all_pairs=False)
    renderer = Renderer(settings, store.view, monotonic=clock)
    renderer.attach(store)
    store.publish_balances(snap("main", (balance("BTC", "1"),), NOW), 0.1)
    empty = {"bid": "0"} if side == "bid" else {"ask": "0"}
    one_sided = ticker("BTCTRY", "BTC", "TRY", "3500000", **empty)
    store.publish_prices(quotes((one_sided, *TICKERS[1:]), NOW))
    m = scrape(renderer)
    # Valued through the bridge, as the route rule says.
    assert sample(m, "btcturk_balance_value", account="main", asset="BTC", currency="TRY") == 87500 * 40
    for family in ("last", "bid", "ask", "volume"):
        assert sample(m, f"btcturk_ticker_{family}", pair="BTCTRY", base="BTC", quote="TRY") is not None
    assert sample(m, "btcturk_ticker_last", pair="BTCTRY", base="BTC", quote="TRY") == 3_500_000
    assert sample(m, f"btcturk_ticker_{side}", pair="BTCTRY", base="BTC", quote="TRY") == 0


def test_export_all_pairs(store: Store, clock: FakeClock) -> None:
    settings = Settings(30.0, 300.0, ("TRY",), "last", export_all_pairs=True)
    store.publish_prices(quotes(TICKERS, NOW))
    m = parse_metrics(Renderer(settings, store.view, monotonic=clock).scrape().decode())
    assert len(samples(m, "btcturk_ticker_last")) == len(TICKERS)


def test_odd_names_are_escaped(store: Store, renderer: Renderer) -> None:
    odd = 'We"ird\\Coin\nTürk'
    store.publish_balances(snap("main", (balance("ODD", "1", name=odd),), NOW), 0.1)
    text = renderer.scrape().decode()
    assert escape_label(odd) in text
    m = parse_metrics(text)
    assert sample(m, "btcturk_asset_info", asset="ODD", asset_name=odd) == 1


def test_stale_balances_are_dropped_but_up_stays(store: Store, renderer: Renderer, clock: FakeClock) -> None:
    store.publish_balances(snap("main", (balance("BTC", "1"),), NOW), 0.1)
    store.publish_failure("main", "timeout", 10.0)
    clock.now = NOW + 299
    m = scrape(renderer)
    assert sample(m, "btcturk_balance", account="main", asset="BTC") == 1
    assert sample(m, "btcturk_up", account="main") == 0
    clock.now = NOW + 301
    m = scrape(renderer)
    assert sample(m, "btcturk_balance", account="main", asset="BTC") is None
    assert sample(m, "btcturk_up", account="main") == 0
    assert sample(m, "btcturk_poll_failures_total", account="main", reason="timeout") == 1


def test_stale_prices_drop_values_and_tickers(store: Store, renderer: Renderer, clock: FakeClock) -> None:
    store.publish_prices(quotes(TICKERS, NOW - 100))
    store.publish_balances(snap("main", (balance("BTC", "1"),), NOW), 0.1)
    assert sample(scrape(renderer), "btcturk_portfolio_value", account="main", currency="TRY") == 3_500_000
    clock.now = NOW + 201
    m = scrape(renderer)
    assert sample(m, "btcturk_portfolio_value", account="main", currency="TRY") is None
    assert not samples(m, "btcturk_ticker_last")
    assert sample(m, "btcturk_balance", account="main", asset="BTC") == 1


def test_counted_requests_leave_the_rendered_body_alone(store: Store, renderer: Renderer) -> None:
    store.publish_balances(snap("main", (balance("BTC", "1"),), NOW), 0.1)
    first = renderer.body()
    assert renderer.body() is first
    store.count_request("main", "/api/v1/users/balances", "200")
    # Every API call changes the store, but only the small health part is rendered again.
    assert renderer.body() is first
    assert (
        sample(
            scrape(renderer),
            "btcturk_api_requests_total",
            account="main",
            endpoint="/api/v1/users/balances",
            code="200",
        )
        == 1
    )
    store.publish_balances(snap("main", (balance("BTC", "2"),), NOW), 0.1)
    assert renderer.body() is not first
    assert sample(scrape(renderer), "btcturk_balance", account="main", asset="BTC") == 2


def test_gzip_members_decode_to_the_plain_text(store: Store, renderer: Renderer) -> None:
    store.publish_balances(snap("main", tuple(balance(f"A{i}", str(i + 1)) for i in range(50)), NOW), 0.1)
    store.publish_balances(snap("savings", (balance("BTC", "2"),), NOW), 0.1)
    store.publish_prices(quotes(TICKERS, NOW))
    assert gzip.decompress(renderer.exposition(gzipped=True)) == renderer.exposition()
    whole = gzip.decompress(renderer.scrape(gzipped=True)).decode()
    assert "process_" in whole or "python_info" in whole


def test_families_are_contiguous_and_have_help(store: Store, renderer: Renderer) -> None:
    for account in ("main", "savings"):
        store.publish_balances(snap(account, (balance("BTC", "1"), balance("ETH", "2")), NOW), 0.1)
    store.publish_prices(quotes(TICKERS, NOW))
    text = renderer.scrape().decode()
    families = list(text_string_to_metric_families(text))
    names = [f.name for f in families]
    assert len(names) == len(set(names)), "a family was split into two groups"
    assert all(f.documentation for f in families)


def test_promtool_accepts_the_exposition(store: Store, renderer: Renderer) -> None:
    promtool = require_binary("promtool")
    for account in ("main", "savings"):
        store.publish_balances(
            snap(account, (balance("BTC", "1", "0.25"), balance("TRY", "12.5", name="Türk Lirası")), NOW),
            0.1,
        )
    store.publish_prices(quotes(TICKERS, NOW))
    store.count_request("main", "/api/v1/users/balances", "200")
    store.set_clock_offset(-0.25)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=renderer.scrape(), capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@pytest.mark.parametrize("value", ["0", "0E-7", "-0", "0.0000", "-0E-36"])
def test_a_zero_value_is_written_as_0(value: str) -> None:
    """A zero product (0.0000001 x 0 rounds to 0E-7 in Decimal) reads the same as every other zero."""
    assert format_value(Decimal(value)) == "0"
