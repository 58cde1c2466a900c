"""The route rule, once, for live and past prices: one bridge order, one fall-through rule."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from exporter.api.parsing import Ticker
from exporter.ledger.store import Ledger
from exporter.pricing.history import PriceHistory
from exporter.pricing.routes import (
    BRIDGES,
    DIVISION,
    EXACT,
    Leg,
    first_priced,
    leg_rate,
    route_rate,
    table_of,
)
from exporter.pricing.valuation import Market

T_S = 1_764_583_200  # 2025-12-01T10:00:00Z
# AVAX reaches EUR through each bridge; the direct pair is listed too.
PAIRS = [
    ("AVAX", "EUR"),
    ("AVAX", "USDT"),
    ("EUR", "USDT"),
    ("AVAX", "TRY"),
    ("EUR", "TRY"),
    ("AVAX", "BTC"),
    ("BTC", "EUR"),
]
CLOSES = {
    ("AVAX", "EUR"): D(30),
    ("AVAX", "USDT"): D(40),
    ("EUR", "USDT"): D("1.1"),
    ("AVAX", "TRY"): D(1600),
    ("EUR", "TRY"): D(48),
    ("AVAX", "BTC"): D("0.0004"),
    ("BTC", "EUR"): D(90_000),
}
# What AVAX in EUR is by each candidate, in the order they are tried.
BY_DIRECT = D(30)
BY_USDT = EXACT.multiply(D(40), DIVISION.divide(1, D("1.1")))
BY_TRY = EXACT.multiply(D(1600), DIVISION.divide(1, 48))
BY_BTC = EXACT.multiply(D("0.0004"), D(90_000))


def test_one_bridge_order_for_everything() -> None:
    assert BRIDGES == ("USDT", "TRY", "BTC")
    routes = table_of(PAIRS).routes("AVAX", "EUR")
    assert [tuple(leg.pair for leg in r.legs) for r in routes] == [
        ("AVAXEUR",),
        ("AVAXUSDT", "EURUSDT"),
        ("AVAXTRY", "EURTRY"),
        ("AVAXBTC", "BTCEUR"),
    ]


def test_a_leg_without_a_usable_price_falls_through() -> None:
    routes = table_of(PAIRS).routes("AVAX", "EUR")
    for price in (None, D(0), D(-1)):
        assert leg_rate(price, inverse=False) is None
        assert route_rate(routes[1], lambda leg, p=price: p if leg.pair == "EURUSDT" else D(1)) is None
    assert first_priced((), lambda leg: D(1)) == (None, None)
    assert first_priced(routes, lambda leg: None) == (routes[0], None)  # the preferred route explains it


def past(tmp_path: Path, missing: set[str]) -> tuple[Ledger, PriceHistory]:
    ledger = Ledger.open(tmp_path)
    prices = PriceHistory(ledger, lambda *_: ())
    prices.set_pairs(PAIRS)
    for (base, quote), close in CLOSES.items():
        if base + quote not in missing:
            ledger.prices.put(base + quote, "60", [(T_S, close)])
    return ledger, prices


def live(missing: set[str]) -> Market:
    return Market.of(
        Ticker(b + q, b, q, c, D(0) if b + q in missing else c, D(0) if b + q in missing else c, D(1))
        for (b, q), c in CLOSES.items()
    )


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        (set(), BY_DIRECT),
        ({"AVAXEUR"}, BY_USDT),
        ({"AVAXEUR", "EURUSDT"}, BY_TRY),  # the USDT bridge's second leg has no price: the next bridge
        ({"AVAXEUR", "AVAXUSDT", "AVAXTRY"}, BY_BTC),  # a bridge past prices never tried before
        ({"AVAXEUR", "AVAXUSDT", "AVAXTRY", "BTCEUR"}, None),
    ],
)
def test_live_and_past_prices_take_the_same_route(
    tmp_path: Path, missing: set[str], expected: D | None
) -> None:
    ledger, prices = past(tmp_path, missing)
    with ledger:
        assert prices.price_at("AVAX", "EUR", T_S * 1000 + 1) == expected
    assert live(missing).quote("AVAX", "EUR", "bid")[1] == expected


def test_the_prefetch_falls_through_as_the_lookup_does(tmp_path: Path) -> None:
    asked: list[str] = []

    def fetch(base: str, quote: str, resolution: str, from_s: int, to_s: int) -> list[tuple[int, D]]:
        asked.append(base + quote)
        close = CLOSES[base, quote] if base + quote != "AVAXEUR" else None
        return [] if close is None or resolution != "60" else [(T_S, close)]

    with Ledger.open(tmp_path) as ledger:
        prices = PriceHistory(ledger, fetch)
        prices.set_pairs(PAIRS)
        prices.prefetch({("AVAX", "EUR"): {T_S}}, T_S + 7200)
        assert prices.price_at("AVAX", "EUR", T_S * 1000) == BY_USDT
    # The direct pair (hourly, then daily), then only the first bridge: it had every candle.
    assert asked == ["AVAXEUR", "AVAXEUR", "AVAXUSDT", "EURUSDT"]


def test_leg_is_one_thing() -> None:
    leg = table_of([("BTC", "TRY")]).routes("TRY", "BTC")[0].legs[0]
    assert leg == Leg("BTCTRY", "BTC", "TRY", inverse=True)
