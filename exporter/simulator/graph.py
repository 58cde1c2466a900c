"""graph-api.btcturk.com's price history, built from the simulator's own price path.

`/v1/klines/history` answers in the TradingView UDF shape; `/v1/ohlcs` is a bare list of daily
candles (no envelope). Times are seconds on both, as on the real host.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from exporter.simulator.market import Market, Pair, split_pair
from exporter.simulator.pricepath import PricePath

RESOLUTIONS = {"1": 60, "5": 300, "15": 900, "30": 1800, "60": 3600, "240": 14400, "1D": 86400, "1W": 604800}
DAY = 86400
# More candles than this in one answer are cut to the newest ones.
MAX_CANDLES = 5000


class BadQuery(ValueError):
    """A query the graph API answers with 400."""


def _pair(market: Market, text: str) -> Pair | None:
    try:
        numerator, denominator = split_pair(text)
    except ValueError:
        return None
    return market.pairs.get(numerator + denominator)


def _seconds(params: Mapping[str, Sequence[str]], key: str, default: float | None = None) -> float:
    values = params.get(key)
    if not values:
        if default is None:
            raise BadQuery(f"{key} is required")
        return default
    try:
        value = float(values[0])
    except ValueError:
        raise BadQuery(f"{key}: expected seconds, got {values[0][:20]!r}") from None
    if not math.isfinite(value) or value < 0:
        raise BadQuery(f"{key}: expected seconds, got {values[0][:20]!r}")
    return value


def candles(
    path: PricePath, pair: Pair, resolution: int, start: float, end: float
) -> list[tuple[int, float, float, float, float, float]]:
    """(time, open, high, low, close, volume) per bucket of `resolution` seconds in [start, end]."""
    first = int(start // resolution) * resolution
    buckets = range(first, int(end) + 1, resolution)
    if len(buckets) > MAX_CANDLES:
        buckets = buckets[-MAX_CANDLES:]
    if not buckets:
        return []
    samples = path.samples(pair.numerator, buckets[0], buckets[-1] + resolution)
    out: list[tuple[int, float, float, float, float, float]] = []
    index, previous = 0, None
    for bucket in buckets:
        # The sample before the bucket opens it; those inside move it.
        while index < len(samples) and samples[index][0] < bucket:
            previous = _in_pair(path, pair, *samples[index])
            index += 1
        inside = []
        while index < len(samples) and samples[index][0] < bucket + resolution:
            inside.append(_in_pair(path, pair, *samples[index]))
            index += 1
        if previous is None and not inside:
            continue
        opened = previous if previous is not None else inside[0]
        prices = [opened, *inside]
        close = prices[-1]
        rng = random.Random(f"{pair.name}-{resolution}-{bucket}")
        volume = float(pair.volume) * resolution / DAY * rng.uniform(0.5, 1.5)
        high, low = max(prices), min(prices)
        digits = pair.scale
        out.append(
            (
                bucket,
                round(opened, digits),
                round(high, digits),
                round(low, digits),
                round(close, digits),
                volume,
            )
        )
        previous = close
    return out


def _in_pair(path: PricePath, pair: Pair, when: float, numerator_try: float) -> float:
    if pair.denominator == "TRY":
        return numerator_try
    denominator_try = path.price_at(pair.denominator, when)
    return numerator_try / denominator_try if denominator_try else 0.0


def klines(
    market: Market, path: PricePath, params: Mapping[str, Sequence[str]], now: float
) -> dict[str, Any]:
    """/v1/klines/history?symbol=BTC_TRY&resolution=60&from=<s>&to=<s>."""
    resolution = RESOLUTIONS.get((params.get("resolution") or [""])[0].upper())
    if resolution is None:
        raise BadQuery(f"resolution: expected one of {', '.join(RESOLUTIONS)}")
    start, end = _seconds(params, "from"), _seconds(params, "to", now)
    pair = _pair(market, (params.get("symbol") or [""])[0])
    rows = candles(path, pair, resolution, start, min(end, now)) if pair is not None else []
    if not rows:
        return {"s": "no_data"}
    columns = list(zip(*rows, strict=True))
    return {"s": "ok", **{key: list(column) for key, column in zip("tohlcv", columns, strict=True)}}


def ohlcs(
    market: Market, path: PricePath, params: Mapping[str, Sequence[str]], now: float
) -> list[dict[str, Any]]:
    """/v1/ohlcs?pair=BTCTRY&from=<s>&to=<s>: daily candles, oldest first, no envelope."""
    start, end = _seconds(params, "from", now - 30 * DAY), _seconds(params, "to", now)
    pair = _pair(market, (params.get("pair") or [""])[0])
    if pair is None:
        return []
    out = []
    for day, opened, high, low, close, volume in candles(path, pair, DAY, start, min(end, now)):
        average = round((high + low + close) / 3, pair.scale)
        out.append(
            {
                "pair": pair.name,
                "time": day,
                "open": opened,
                "high": high,
                "low": low,
                "close": close,
                "volume": round(volume, 8),
                "total": round(volume * average, 2),
                "average": average,
                "dailyChangeAmount": round(close - opened, pair.scale),
                "dailyChangePercentage": round((close - opened) / opened * 100, 2) if opened else 0.0,
            }
        )
    return out


def with_gaps(answer: object, drop_every: int) -> object:
    """A graph-api answer with every `drop_every`-th candle left out, still "ok" (the gaps fault)."""
    if isinstance(answer, list):
        return [row for index, row in enumerate(answer) if index % drop_every != drop_every - 1]
    if isinstance(answer, dict) and answer.get("s") == "ok":
        kept = [i for i in range(len(answer["t"])) if i % drop_every != drop_every - 1]
        if not kept:
            return {"s": "no_data"}
        return {"s": "ok", **{key: [answer[key][i] for i in kept] for key in "tohlcv"}}
    return answer
