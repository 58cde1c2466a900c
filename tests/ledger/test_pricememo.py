"""BucketMemo: one look-up per (asset, currency, bucket), misses kept until priced."""

from __future__ import annotations

from decimal import Decimal

from exporter.ledger.pricememo import BucketMemo

HOUR_MS = 3_600_000


def test_one_look_up_per_bucket_and_the_misses_kept_across_forget() -> None:
    asked: list[tuple[str, str, int]] = []
    known = {("BTC", "TRY", 0): Decimal(2_000_000)}

    def price_at(asset: str, currency: str, when_ms: int) -> Decimal | None:
        asked.append((asset, currency, when_ms))
        return known.get((asset, currency, when_ms // HOUR_MS))

    memo = BucketMemo(price_at, HOUR_MS)
    assert memo.price_at("BTC", "TRY", 10) == memo.price_at("BTC", "TRY", HOUR_MS - 1) == Decimal(2_000_000)
    assert memo.price_at("BTC", "TRY", HOUR_MS) is None
    assert memo.price_at("BTC", "TRY", HOUR_MS + 5) is None
    assert asked == [("BTC", "TRY", 10), ("BTC", "TRY", HOUR_MS)]
    assert memo.misses == {("BTC", "TRY", 1)}
    memo.forget()
    assert memo.price_at("BTC", "TRY", 20) == Decimal(2_000_000)
    assert asked[-1] == ("BTC", "TRY", 20), "forgotten: asked again"
    assert memo.misses == {("BTC", "TRY", 1)} and not memo.priced_since(price_at)
    known[("BTC", "TRY", 1)] = Decimal(2_100_000)
    assert memo.priced_since(price_at)
    memo.clear()
    assert memo.misses == set() and not memo.priced_since(price_at)
    assert memo.price_at("BTC", "TRY", HOUR_MS) == Decimal(2_100_000)
    assert asked[-1] == ("BTC", "TRY", HOUR_MS), "cleared: asked again"
