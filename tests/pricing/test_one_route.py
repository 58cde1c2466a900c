"""One asset at one moment through every path (live gauge, replay, backfill step, export row): one number.

AVAX in USDT where AVAX/USDT is listed but has no usable price (an empty book live, no candles in the
past): every path falls through to the TRY bridge, AVAX/TRY times the inverse of USDT/TRY. 1/41.7 does
not terminate, so a path that inverted at another precision, or routed through another bridge, would
give another number; the comparisons are exact.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from decimal import Decimal as D
from pathlib import Path

from exporter.api.candles import HOURLY, Candle
from exporter.api.parsing import Balance, Ticker
from exporter.api.records import Transfer
from exporter.backfill.timeline import EXACT, AccountHistory, Plan, reconstruct
from exporter.ledger import export
from exporter.ledger.costbasis import compute
from exporter.ledger.store import Ledger
from exporter.metrics.exposition import format_value
from exporter.metrics.renderer import Renderer
from exporter.metrics.series import Settings
from exporter.poll.snapshot import AccountSnapshot, PriceSnapshot, Store
from exporter.pricing.history import PriceHistory
from exporter.pricing.routes import DIVISION
from exporter.pricing.steps import step_price_at
from exporter.pricing.valuation import Market, value_balances

H_S = 3600
H = H_S * 1000
T = 1_764_547_200_000 + 10 * H  # 2025-12-01T10:00:00Z: a step, and the deposit's time
AVAX_TRY, USDT_TRY = D("1612.35"), D("41.7")
HELD = D("2.5")
PAIRS = [("AVAX", "USDT"), ("AVAX", "TRY"), ("USDT", "TRY")]
# The one number: what 2.5 AVAX sell for through the TRY bridge, at the route rule's precision.
EXPECTED = EXACT.multiply(HELD, EXACT.multiply(AVAX_TRY, DIVISION.divide(1, USDT_TRY)))


def candles(asked: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    """graph-api as the price history sees it: hourly closes of AVAX/TRY and USDT/TRY, none of AVAX/USDT."""
    closes = {("AVAX", "TRY"): AVAX_TRY, ("USDT", "TRY"): USDT_TRY}

    def fetch(base: str, quote: str, resolution: str, from_s: int, to_s: int) -> Sequence[Candle]:
        asked.append((base + quote, resolution))
        close = closes.get((base, quote))
        if close is None or resolution != HOURLY:
            return ()
        first = -(-from_s // H_S) * H_S
        return [(s, close) for s in range(first, to_s + 1, H_S)]

    return fetch


def deposit() -> Transfer:
    return Transfer("crypto", 1, T, "deposit", "AVAX", HELD)


def live_gauge() -> tuple[D, str]:
    """The live value (valuation engine) and the text the renderer serves for it."""
    tickers = (
        Ticker("AVAXUSDT", "AVAX", "USDT", D("38.9"), D(0), D(0), D(5)),  # an empty book: falls through
        Ticker("AVAXTRY", "AVAX", "TRY", D("1600"), AVAX_TRY, D("1613"), D(5)),  # a sale fills at the bid
        Ticker("USDTTRY", "USDT", "TRY", D("41.6"), D("41.5"), USDT_TRY, D(5)),  # buying USDT: the ask
    )
    balance = Balance("AVAX", "Avalanche", HELD, HELD, D(0), D(0), D(0))
    value = value_balances([balance], Market.of(tickers), ["USDT"], "bid").values[0].balance
    store = Store(["main"])
    renderer = Renderer(Settings(30.0, 300.0, ("USDT",), "bid", False), store.view)
    renderer.attach(store)
    store.publish_balances(AccountSnapshot("main", (balance,), time.time()), 0.1)
    store.publish_prices(PriceSnapshot(tickers, time.time()))
    text = renderer.scrape().decode()
    gauge = r'^btcturk_balance_value\{[^}]*asset="AVAX"[^}]*currency="USDT"[^}]*\} (\S+)$'
    line = re.search(gauge, text, re.M)
    assert line is not None, text
    return value, line.group(1)


def test_every_path_values_one_asset_at_one_moment_alike(tmp_path: Path) -> None:
    live, served = live_gauge()
    assert live == EXPECTED
    assert served == format_value(EXPECTED)  # the gauge rounds only to what a float64 carries

    asked: list[tuple[str, str]] = []
    with Ledger.open(tmp_path) as ledger:
        prices = PriceHistory(ledger, candles(asked))
        prices.set_pairs(PAIRS)
        needs = prices.needs([], [deposit()], ["USDT"])
        hour = T // 1000
        assert needs == {("AVAX", "USDT"): {hour}}
        # The backfill's steps want the candle closed by the step too (the hour before).
        prices.prefetch({**needs, ("AVAX", "USDT"): {hour, hour - H_S}}, (T + 5 * H) / 1000)
        # The preferred pair first; the bridge's only because it had no candles (fall-through).
        assert [a for a, _ in asked[:2]] == ["AVAXUSDT", "AVAXUSDT"]
        assert {a for a, _ in asked[2:]} == {"AVAXTRY", "USDTTRY"}

        basis = compute([], [deposit()], "USDT", prices.price_at, keep_events=True)
        replayed = basis.events[0].value
        cost = basis.positions["AVAX"].cost
        row = export.rows("main", basis, prices.price_at)[0]

        history = AccountHistory("main", {"AVAX": HELD}, T, [], [deposit()], complete_since_ms=T)
        plan = Plan(T, T + H, H, ("USDT",))
        timeline = reconstruct(history, plan, prices.price_at, step_price_at(prices))
        step_value = EXACT.multiply(timeline.holdings["AVAX"][0], timeline.price("AVAX", "USDT", 0))
        position = timeline.cost_known("AVAX", "USDT", 0)

    assert replayed == cost == row.value == step_value == EXPECTED
    assert position is not None and position[1] == EXPECTED  # the backfill's replay: the same cost
