"""Step prices: the last candle closed by the step, never a later one; records priced as live."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from exporter.ledger.store import Ledger
from exporter.pricing.history import PriceHistory
from exporter.pricing.routes import DIVISION
from exporter.pricing.steps import closed_hours, step_hours, step_price_at

H = 3600
DAY = 86400
T0 = 1_764_547_200  # 2025-12-01T00:00:00Z, in seconds
QUARTER_MS = 15 * 60_000


def make(tmp_path: Path) -> tuple[Ledger, PriceHistory]:
    ledger = Ledger.open(tmp_path)
    prices = PriceHistory(ledger, lambda *_: ())
    prices.set_pairs({("BTC", "TRY")})
    ledger.prices.put("BTCTRY", "60", [(T0 + 9 * H, D(100)), (T0 + 10 * H, D(110))])
    # Days before: only daily candles (no hourly history there).
    ledger.prices.put("BTCTRY", "1D", [(T0 - 3 * DAY, D(50)), (T0 - 2 * DAY, D(60))])
    return ledger, prices


def test_a_step_inside_an_hour_takes_the_candle_that_closed_before_it(tmp_path: Path) -> None:
    ledger, prices = make(tmp_path)
    with ledger:
        price = step_price_at(prices)
        ms = (T0 + 10 * H) * 1000
        assert price("BTC", "TRY", ms) == 100  # the 10:00 candle closes at 11:00: not yet known
        assert price("BTC", "TRY", ms + 2 * QUARTER_MS) == 100
        assert price("BTC", "TRY", ms + H * 1000) == 110
        # A record is valued as the live exporter values it, by the candle holding it (price_at), even
        # one stamped on a step: the steps' function never prices a record.
        assert prices.price_at("BTC", "TRY", ms) == 110
        assert prices.price_at("BTC", "TRY", ms + 2 * QUARTER_MS + 1) == 110
        assert price("TRY", "BTC", ms + H * 1000) == DIVISION.divide(1, 110)  # as every inverse leg
        assert price("ETH", "TRY", ms) is None
        assert price("BTC", "TRY", (T0 + 20 * H) * 1000) is None  # no candle closed then is cached


def test_without_hourly_history_a_step_takes_the_day_that_had_closed(tmp_path: Path) -> None:
    ledger, prices = make(tmp_path)
    with ledger:
        price = step_price_at(prices)
        day = T0 - 2 * DAY
        assert price("BTC", "TRY", (day + 5 * H) * 1000) == 50  # that day's own candle closes at midnight
        assert price("BTC", "TRY", (day + DAY) * 1000) == 60


def test_the_hours_to_prefetch_cover_both_candles() -> None:
    ms = (T0 + 10 * H + 900) * 1000
    assert closed_hours(ms) == (T0 + 9 * H, T0 - DAY)
    assert step_hours([ms, ms + 900_000]) == {T0 + 9 * H, T0 - DAY}
