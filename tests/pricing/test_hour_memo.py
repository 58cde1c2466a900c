"""HourMemo: PriceHistory.price_at remembered per hour answers as price_at does, also after new candles."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal as D
from pathlib import Path

from exporter.api.candles import Candle
from exporter.ledger.store import Ledger
from exporter.pricing.history import HourMemo, PriceHistory

H_S = 3600
T0 = 1_764_547_200  # 2025-12-01T00:00:00Z, in seconds
PAIRS = {("BTC", "TRY"), ("USDT", "TRY"), ("BTC", "USDT")}


def test_the_memo_answers_as_price_at_at_every_time(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        prices = PriceHistory(ledger, lambda *_: ())
        prices.set_pairs(PAIRS)
        ledger.prices.put("BTCTRY", "60", [(T0 + h * H_S, D(100 + h)) for h in range(0, 6, 2)])
        ledger.prices.put("USDTTRY", "60", [(T0 + h * H_S, D("41.7") + h) for h in range(6)])
        ledger.prices.put("BTCTRY", "1D", [(T0, D(99))])  # the odd hours fall back to the day's close
        memo = HourMemo(prices)
        wants = [("BTC", "TRY"), ("TRY", "BTC"), ("BTC", "USDT"), ("USDT", "BTC"), ("ETH", "TRY")]
        # Every quarter hour of 8 hours, twice over: the second pass is all remembered answers.
        for _ in range(2):
            for ms in range(T0 * 1000 - 1, (T0 + 8 * H_S) * 1000, 15 * 60_000):
                for asset, currency in wants:
                    assert memo.price_at(asset, currency, ms) == prices.price_at(asset, currency, ms)
        assert memo.price_at("BTC", "TRY", (T0 + H_S) * 1000 + 5) == D(99)
        assert memo.price_at("ETH", "TRY", T0 * 1000) is None


def test_new_candles_and_pairs_are_seen_at_once(tmp_path: Path) -> None:
    closes = {("BTC", "TRY"): D(100)}
    asked: list[str] = []

    def fetch(base: str, quote: str, resolution: str, from_s: int, to_s: int) -> Sequence[Candle]:
        asked.append(base + quote)
        close = closes.get((base, quote))
        return [] if close is None or resolution != "60" else [(T0, close)]

    with Ledger.open(tmp_path) as ledger:
        prices = PriceHistory(ledger, fetch)
        prices.set_pairs({("BTC", "TRY")})
        memo = HourMemo(prices)
        when = T0 * 1000 + 1
        assert memo.price_at("BTC", "TRY", when) is None  # nothing fetched yet: remembered as absent
        prices.prefetch({("BTC", "TRY"): {T0}}, T0 + 2 * H_S)
        assert asked == ["BTCTRY"]
        assert memo.price_at("BTC", "TRY", when) == D(100)  # the fetched candle, not the absence kept
        assert memo.price_at("ETH", "TRY", when) is None
        closes[("ETH", "TRY")] = D(7)
        prices.set_pairs({("BTC", "TRY"), ("ETH", "TRY")})
        prices.prefetch({("ETH", "TRY"): {T0}}, T0 + 2 * H_S)
        assert memo.price_at("ETH", "TRY", when) == D(7)
        # A pair list without the pair: price_at has no route, and neither has the memo.
        prices.set_pairs({("ETH", "TRY")})
        assert prices.price_at("BTC", "TRY", when) is None
        assert memo.price_at("BTC", "TRY", when) is None


def test_clear_forgets_what_was_remembered(tmp_path: Path) -> None:
    calls: list[int] = []

    class Counted(PriceHistory):
        def price_at(self, asset: str, currency: str, when_ms: int) -> D | None:
            calls.append(when_ms)
            return super().price_at(asset, currency, when_ms)

    with Ledger.open(tmp_path) as ledger:
        prices = Counted(ledger, lambda *_: ())
        prices.set_pairs({("BTC", "TRY")})
        ledger.prices.put("BTCTRY", "60", [(T0, D(100))])
        memo = HourMemo(prices)
        for ms in range(T0 * 1000, (T0 + H_S) * 1000, 60_000):  # one hour, minute by minute
            assert memo.price_at("BTC", "TRY", ms) == D(100)
        assert calls == [T0 * 1000]  # looked up once for the hour
        memo.clear()
        assert memo.price_at("BTC", "TRY", T0 * 1000 + 7) == D(100)
        assert calls == [T0 * 1000, T0 * 1000 + 7]
