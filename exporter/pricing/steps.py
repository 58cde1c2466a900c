"""Prices for the backfill's steps: the last candle that had closed by the step, never a later one.

`PriceHistory.price_at` values a record with the close of the candle holding it, as the live exporter
does. A step is a moment the exporter would have shown: the price then is the last one known, so a
step takes the close of the newest hourly candle that ended at or before it (else of the newest daily
candle that did), never the close of a candle still open at the step, which would be a later price.
Records keep the live rule (`price_at`, even for a record stamped on a step), so the cost basis of a
backfill joins the live exporter's.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from exporter.ledger.costbasis import PriceAt
from exporter.pricing.candlecache import DAY, HOUR
from exporter.pricing.history import PriceHistory


def closed_hours(when_ms: int) -> tuple[int, int]:
    """(start of the last hourly candle, start of the last daily candle) closed by `when_ms`, in s."""
    seconds = when_ms // 1000
    return seconds // HOUR * HOUR - HOUR, seconds // DAY * DAY - DAY


def step_hours(steps: Iterable[int]) -> set[int]:
    """The hours prefetch must cover for these steps (the previous day's too, for the daily fallback)."""
    hours: set[int] = set()
    for ms in steps:
        hour, day = closed_hours(ms)
        hours.add(hour)
        hours.add(day)  # an hour of the previous day, so a missing hourly candle fetches that day
    return hours


def step_price_at(prices: PriceHistory) -> PriceAt:
    """The price at a backfill step, as above; through the same routes and fall-through rule as every
    other price (`routes`). Only for steps: a record is valued by `prices.price_at`."""

    def price_at(asset: str, currency: str, when_ms: int) -> Decimal | None:
        return prices.price_in(asset, currency, *closed_hours(when_ms))

    return price_at
