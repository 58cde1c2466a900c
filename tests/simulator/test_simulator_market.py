"""The simulator's market: TRY- and USDT-quoted pairs, prices that mean-revert, a live-sized mode."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
import requests
from support import TIMEOUT, VECTOR_STAMP, FakeClock

from exporter.simulator import EXCHANGE_INFO_PATH, TICKER_PATH, Simulator, demo_assets, generate_keypair
from exporter.simulator.market import Market


def ticker(sim: Simulator, **params: str) -> dict[str, dict]:
    rows = requests.get(sim.url + TICKER_PATH, params=params, timeout=TIMEOUT).json()["data"]
    return {row["pair"]: row for row in rows}


def test_ticker_covers_every_valuation_route(sim: Simulator) -> None:
    tickers = ticker(sim)
    direct = {"BTCTRY", "ETHTRY", "USDTTRY", "BTCUSDT", "ETHUSDT", "AVAXTRY"}
    assert direct | {"XRPUSDT"} <= set(tickers)
    assert "TRYUSDT" not in tickers and "XRPTRY" not in tickers
    assert not any("OLDTOKEN" in pair or "ZRX" in pair for pair in tickers)
    for row in tickers.values():
        assert row["bid"] < row["last"] < row["ask"]
        assert row["pairNormalized"] == f"{row['numeratorSymbol']}_{row['denominatorSymbol']}"
        for key in ("last", "high", "low", "open", "volume", "average", "daily", "dailyPercent"):
            assert isinstance(row[key], (int, float))
    assert 3_000_000 < tickers["BTCTRY"]["last"] < 4_000_000
    assert 38 < tickers["USDTTRY"]["last"] < 45
    cross = tickers["BTCTRY"]["last"] / tickers["USDTTRY"]["last"]
    assert tickers["BTCUSDT"]["last"] == pytest.approx(cross, rel=1e-3)


def test_default_market_quotes_only_in_try_and_usdt(sim: Simulator) -> None:
    assert {row["denominatorSymbol"] for row in ticker(sim).values()} == {"TRY", "USDT"}


def test_btc_quoted_pairs_are_an_opt_in_oddity(clock: FakeClock) -> None:
    with Simulator(clock=clock, btc_quoted=True) as sim:
        tickers = ticker(sim)
    assert {"ETHBTC", "ZRXBTC"} <= set(tickers)
    assert [pair for pair in tickers if "ZRX" in pair] == ["ZRXBTC"]  # both currencies through BTC
    cross = tickers["ETHTRY"]["last"] / tickers["BTCTRY"]["last"]
    assert tickers["ETHBTC"]["last"] == pytest.approx(cross, rel=1e-3)


def test_ticker_rows_are_a_second_or_so_old(sim: Simulator) -> None:
    ages = [VECTOR_STAMP - row["timestamp"] for row in ticker(sim).values()]
    assert all(250 <= age <= 1650 for age in ages)
    assert len(set(ages)) > 1


def test_volumes_are_a_plausible_day_of_turnover(sim: Simulator) -> None:
    tickers = ticker(sim)
    turnover = {pair: row["volume"] * row["last"] for pair, row in tickers.items() if pair.endswith("TRY")}
    assert 1e9 < turnover["BTCTRY"] < 4e9  # BTCTurk's busiest book
    assert turnover["BTCTRY"] > turnover["AVAXTRY"] > turnover["ZILTRY"]
    assert all(1e6 < value < 4e9 for value in turnover.values())
    assert tickers["BTCUSDT"]["volume"] < tickers["BTCTRY"]["volume"]


def test_ticker_pair_filter_and_set_price(sim: Simulator) -> None:
    sim.set_price("BTCTRY", Decimal("3600000"), Decimal("3599000"), Decimal("3601000"))
    (row,) = ticker(sim, pairSymbol="BTCTRY").values()
    assert (row["pair"], row["last"], row["bid"], row["ask"]) == ("BTCTRY", 3600000, 3599000, 3601000)
    sim.set_price("NEWTRY", Decimal("12.5"))
    (new,) = ticker(sim, pairSymbol="NEW_TRY").values()
    assert new["numeratorSymbol"] == "NEW" and new["bid"] < 12.5 < new["ask"]
    assert ticker(sim, pairSymbol="NOPEUSDT") == {}


def test_drift_moves_prices_consistently(sim: Simulator) -> None:
    before_btc = sim.price("BTCTRY")
    for _ in range(5):
        sim.drift(0.01)
    assert sim.price("BTCTRY") != before_btc
    rows = ticker(sim)
    assert all(r["bid"] < r["last"] < r["ask"] for r in rows.values())
    cross = rows["BTCTRY"]["last"] / rows["USDTTRY"]["last"]
    assert rows["BTCUSDT"]["last"] == pytest.approx(cross, rel=2e-3)


def test_prices_revert_to_their_base_instead_of_wandering_off() -> None:
    market = Market(random.Random(5))
    base = {name: pair.last for name, pair in market.pairs.items()}
    extremes: dict[str, float] = {}
    for _ in range(5000):
        market.drift(0.01)
        for name, pair in market.pairs.items():
            ratio = float(pair.last / base[name])
            extremes[name] = max(extremes.get(name, 1.0), ratio, 1 / ratio)
    # A free walk with 1% steps would stray by about e^(0.01*sqrt(5000)) = 2x; this stays close.
    assert max(extremes.values()) < 1.5
    assert all(abs(deviation) < 0.3 for deviation in market.deviation.values())
    usdt = float(market.pairs["USDTTRY"].last / base["USDTTRY"])
    assert 0.97 < usdt < 1.03  # a stablecoin barely moves


def test_live_market_is_live_sized(clock: FakeClock) -> None:
    with Simulator(clock=clock, market="live") as sim:
        response = requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT)
        info = requests.get(sim.url + EXCHANGE_INFO_PATH, timeout=TIMEOUT).json()["data"]
    rows = response.json()["data"]
    quotes = [row["denominatorSymbol"] for row in rows]
    assert len(rows) == 379 and quotes.count("TRY") == 190 and quotes.count("USDT") == 189
    assert 90_000 < len(response.content) < 130_000
    assert len(info["symbols"]) == 379
    assert all(s["name"] == s["numerator"] + s["denominator"] for s in info["symbols"])
    assert len({row["pair"] for row in rows}) == 379


def test_unknown_market_is_refused() -> None:
    with pytest.raises(ValueError, match="market must be one of default, live"):
        Simulator(market="huge")


def test_exchangeinfo_shape(sim: Simulator) -> None:
    response = requests.get(sim.url + EXCHANGE_INFO_PATH, timeout=TIMEOUT)
    assert response.headers["Cache-Control"] == "max-age=30"
    body = response.json()
    assert body["success"] is True
    info = body["data"]
    assert info["serverTime"] == VECTOR_STAMP
    symbols = {s["name"]: s for s in info["symbols"]}
    assert set(symbols) == set(ticker(sim))
    assert symbols["BTCTRY"]["numerator"] == "BTC" and symbols["BTCTRY"]["denominator"] == "TRY"
    assert all(s["status"] == "TRADING" for s in info["symbols"])
    currencies = {c["symbol"]: c for c in info["currencies"]}
    assert currencies["TRY"]["currencyType"] == "FIAT" and currencies["TRY"]["name"] == "Türk Lirası"
    assert currencies["BTC"]["currencyType"] == "CRYPTO" and currencies["BTC"]["precision"] == 8
    assert "OLDTOKEN" in currencies


def test_demo_assets_are_realistic() -> None:
    assets = {a.asset: a for a in demo_assets(3)}
    assert assets["TRY"].name == "Türk Lirası" and assets["TRY"].precision == 2
    held = {symbol for symbol, asset in assets.items() if asset.balance > 0}
    assert {"USDT", "BTC", "ETH", "XRP", "AVAX", "OLDTOKEN"} <= held
    assert sum(1 for a in assets.values() if a.balance == 0) >= 40
    assert -assets["BTC"].free.as_tuple().exponent == 16
    assert demo_assets(3) == demo_assets(3) != demo_assets(4)
    assert generate_keypair(1) == generate_keypair(1) != generate_keypair(None)
