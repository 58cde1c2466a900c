"""Portfolio value end to end: simulator ticker and balances in, hand-computed sums out."""

from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from support import ExporterProcess, sample, samples

from exporter.api.client import TICKER
from exporter.simulator import Fault, SimAsset, Simulator, generate_keypair

KEYS = generate_keypair(seed=21)
D = Decimal

HOLDINGS = [
    SimAsset("TRY", "Türk Lirası", D("1000.5"), D("250.25")),
    SimAsset("BTC", "Bitcoin", D("0.1234567890123456"), D("0.01")),
    SimAsset("USDT", "Tether", D("99.9999999999999999"), D("0")),
    SimAsset("XRP", "Ripple", D("150"), D("50")),  # only XRPUSDT: TRY through a USDT bridge
    SimAsset("ZRX", "0x Protocol", D("400"), D("0")),  # only ZRXBTC (btc_quoted): both through BTC
    SimAsset("OLDTOKEN", "Old Token", D("5000"), D("0")),  # no market at all
    SimAsset("ETH", "Ethereum", D("0"), D("0")),
]
PRICES = {
    "BTCTRY": D("3500000"),
    "USDTTRY": D("40"),
    "BTCUSDT": D("87500"),
    "XRPUSDT": D("2.5"),
    "ZRXBTC": D("0.000003"),
}


def expected_values() -> dict[str, dict[str, Decimal]]:
    """The route for every asset, written out by hand."""
    p = PRICES
    per_unit = {
        "TRY": {"TRY": D(1), "USDT": 1 / p["USDTTRY"]},
        "BTC": {"TRY": p["BTCTRY"], "USDT": p["BTCUSDT"]},
        "USDT": {"TRY": p["USDTTRY"], "USDT": D(1)},
        "XRP": {"TRY": p["XRPUSDT"] * p["USDTTRY"], "USDT": p["XRPUSDT"]},
        "ZRX": {"TRY": p["ZRXBTC"] * p["BTCTRY"], "USDT": p["ZRXBTC"] * p["BTCUSDT"]},
    }
    amounts = {a.asset: a.free + a.locked for a in HOLDINGS}
    return {
        asset: {cur: amounts[asset] * rate for cur, rate in rates.items()}
        for asset, rates in per_unit.items()
    }


@pytest.fixture
def sim() -> Iterator[Simulator]:
    # The live market quotes nothing in BTC; the BTC bridge is the simulator's opt-in oddity.
    with Simulator(btc_quoted=True) as simulator:
        simulator.add_account(*KEYS, HOLDINGS)
        for pair, price in PRICES.items():
            simulator.set_price(pair, price, price, price)
        yield simulator


@pytest.fixture
def exporter(sim: Simulator, exporter_factory: Callable[..., ExporterProcess]) -> ExporterProcess:
    config = {
        "api_url": sim.url,
        "poll_interval": "1s",
        "timeout": "500ms",
        "max_staleness": "4s",
        "accounts": [{"name": "main", "public_key": KEYS[0], "private_key": KEYS[1]}],
    }
    return exporter_factory(config)


def test_portfolio_value_is_the_hand_computed_sum(exporter: ExporterProcess) -> None:
    m = exporter.wait_metrics(lambda m: samples(m, "btcturk_portfolio_value"), what="portfolio value")
    values = expected_values()
    for currency in ("TRY", "USDT"):
        for asset, by_currency in values.items():
            got = sample(m, "btcturk_balance_value", account="main", asset=asset, currency=currency)
            assert got == pytest.approx(float(by_currency[currency]), rel=1e-12), (asset, currency)
        total = sum(v[currency] for v in values.values())
        got_total = sample(m, "btcturk_portfolio_value", account="main", currency=currency)
        assert got_total == pytest.approx(float(total), rel=1e-12)
        assert sample(m, "btcturk_unpriced_assets", account="main", currency=currency) == 1
        assert sample(m, "btcturk_balance_value", account="main", asset="OLDTOKEN", currency=currency) is None
    # Free and locked are valued too, and add up to the whole.
    locked = sample(m, "btcturk_balance_locked_value", account="main", asset="TRY", currency="TRY")
    free = sample(m, "btcturk_balance_free_value", account="main", asset="TRY", currency="TRY")
    assert (free, locked) == (1000.5, 250.25)
    # Only the pairs the routes use are exported by default.
    pairs = {dict(labels)["pair"] for labels in samples(m, "btcturk_ticker_last")}
    assert pairs == set(PRICES)


def test_ticker_outage_leaves_balances_and_up_alone(sim: Simulator, exporter: ExporterProcess) -> None:
    exporter.wait_metrics(lambda m: samples(m, "btcturk_portfolio_value"))
    sim.inject(Fault("status", status=502), endpoint=TICKER)
    m = exporter.wait_metrics(
        lambda m: sample(m, "btcturk_poll_failures_total", account="", reason="ticker") >= 2,
        what="ticker failures",
    )
    assert sample(m, "btcturk_up", account="main") == 1
    assert sample(m, "btcturk_balance", account="main", asset="BTC") is not None
    assert sample(m, "btcturk_poll_failures_total", account="main", reason="server_error") == 0
    # Prices older than max_staleness go, with the values built on them; balances stay.
    m = exporter.wait_metrics(lambda m: not samples(m, "btcturk_portfolio_value"), what="stale prices to go")
    assert not samples(m, "btcturk_ticker_last")
    assert sample(m, "btcturk_up", account="main") == 1
    assert sample(m, "btcturk_balance", account="main", asset="BTC") is not None
    sim.clear_faults()
    exporter.wait_metrics(lambda m: samples(m, "btcturk_portfolio_value"), what="prices to return")


def test_a_pair_whose_bids_empty_stays_on_metrics_with_value_price_bid(
    exporter_factory: Callable[..., ExporterProcess],
) -> None:
    """BTCTRY's bids all go: BTC is valued through USDT, and BTCTRY's last, bid, ask and volume stay."""
    with Simulator() as sim:
        sim.add_account(*KEYS, [SimAsset("BTC", "Bitcoin", D("0.5"), D("0"))])
        for pair in ("BTCTRY", "BTCUSDT", "USDTTRY"):
            sim.set_price(pair, PRICES[pair], PRICES[pair], PRICES[pair])
        exporter = exporter_factory(
            {
                "api_url": sim.url,
                "poll_interval": "1s",
                "timeout": "500ms",
                "value_price": "bid",
                "accounts": [{"name": "main", "public_key": KEYS[0], "private_key": KEYS[1]}],
            }
        )
        btc = {"pair": "BTCTRY", "base": "BTC", "quote": "TRY"}
        exporter.wait_metrics(lambda m: sample(m, "btcturk_ticker_bid", **btc) == 3500000, what="the bid")
        sim.set_price("BTCTRY", PRICES["BTCTRY"], D(0), PRICES["BTCTRY"])
        m = exporter.wait_metrics(
            lambda m: sample(m, "btcturk_ticker_bid", **btc) == 0, what="BTCTRY's empty bid"
        )
        for family in ("btcturk_ticker_last", "btcturk_ticker_ask", "btcturk_ticker_volume"):
            assert sample(m, family, **btc) is not None, family
        assert sample(m, "btcturk_ticker_last", **btc) == 3500000
        through_usdt = float(D("0.5") * PRICES["BTCUSDT"] * PRICES["USDTTRY"])
        got = sample(m, "btcturk_balance_value", account="main", asset="BTC", currency="TRY")
        assert got == pytest.approx(through_usdt, rel=1e-12)
