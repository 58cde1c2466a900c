"""A price look-up remembered per time bucket: the one memo of prices every replay and report uses.

A past price answers the same for every time in one bucket (pricing.history: the hour's candles, else
the day's), so the routes behind it are walked once per bucket, asset and currency, not once per
record: a report over 100,000 trades asks some 300,000 times for a few thousand answers. The misses
(buckets without a price) are kept apart, so a caller can ask later whether one is priced now.
"""

from __future__ import annotations

from decimal import Decimal

from exporter.ledger.costbasis import PriceAt

# (asset, currency, bucket): price_at answers the same for every time in a bucket.
Bucket = tuple[str, str, int]


class BucketMemo:
    """`price_at` remembered per (asset, currency, bucket of `bucket_ms`); misses kept until cleared."""

    __slots__ = ("_known", "_price_at", "bucket_ms", "misses")

    def __init__(self, price_at: PriceAt, bucket_ms: int) -> None:
        self._price_at = price_at
        self.bucket_ms = bucket_ms
        self._known: dict[Bucket, Decimal | None] = {}
        self.misses: set[Bucket] = set()

    def price_at(self, asset: str, currency: str, when_ms: int) -> Decimal | None:
        """What the memo's `price_at` answers for the bucket holding `when_ms`, asked once per bucket."""
        bucket = (asset, currency, when_ms // self.bucket_ms)
        known = self._known
        if bucket in known:
            return known[bucket]
        price = known[bucket] = self._price_at(asset, currency, when_ms)
        if price is None:
            self.misses.add(bucket)
        return price

    def forget(self) -> None:
        """Forget every answer (looked up again as asked); the misses stay, for priced_since()."""
        self._known.clear()

    def clear(self) -> None:
        """Forget every answer and every miss."""
        self._known.clear()
        self.misses.clear()

    def priced_since(self, price_at: PriceAt) -> bool:
        """Whether `price_at` knows a price now for a bucket that had none."""
        size = self.bucket_ms
        return any(
            price_at(asset, currency, bucket * size) is not None for asset, currency, bucket in self.misses
        )
