"""Parse graph-api price history: `/v1/klines/history` (TradingView UDF) and `/v1/ohlcs` (daily list)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from exporter.api.parsing import BadResponse, parse_decimal

# (candle start in Unix seconds, close)
Candle = tuple[int, Decimal]
# graph-api's resolutions: the hour's candles (/v1/klines/history) and the day's (/v1/ohlcs).
HOURLY = "60"
DAILY = "1D"


def _seconds(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise BadResponse(f"{where}: expected Unix seconds")
    if isinstance(value, Decimal) and value != value.to_integral_value():
        raise BadResponse(f"{where}: expected whole Unix seconds")
    seconds = int(value)
    if not 0 <= seconds < 253_402_300_800:
        raise BadResponse(f"{where}: out of range")
    return seconds


def _positive(value: object, where: str) -> Decimal:
    price = parse_decimal(value, where)
    if price <= 0:
        raise BadResponse(f"{where}: expected a positive price")
    return price


def parse_klines(payload: Any) -> tuple[Candle, ...]:
    """`{"s": "ok", "t": [...], "c": [...], ...}` -> candles; `s == "no_data"` is an empty answer."""
    if not isinstance(payload, Mapping):
        raise BadResponse("klines: expected an object")
    status = payload.get("s")
    if status == "no_data":
        return ()
    if status != "ok":
        raise BadResponse(f"klines: status {str(status)[:20]!r}, expected ok or no_data")
    times, closes = payload.get("t"), payload.get("c")
    if not isinstance(times, list) or not isinstance(closes, list) or len(times) != len(closes):
        raise BadResponse("klines: expected lists t and c of one length")
    return tuple(
        (_seconds(t, f"klines t[{i}]"), _positive(c, f"klines c[{i}]"))
        for i, (t, c) in enumerate(zip(times, closes, strict=True))
    )


def parse_ohlcs(payload: Any) -> tuple[Candle, ...]:
    """A bare list of daily candles (`time` in s, `close`); an enveloped list is accepted too."""
    if isinstance(payload, Mapping) and "data" in payload:
        payload = payload["data"]
    if not isinstance(payload, list):
        raise BadResponse("ohlcs: expected a list")
    out = []
    for index, row in enumerate(payload):
        if not isinstance(row, Mapping):
            raise BadResponse(f"ohlcs[{index}]: expected an object")
        where = f"ohlcs[{index}]"
        time_s = _seconds(row.get("time"), f"{where}.time")
        out.append((time_s, _positive(row.get("close"), f"{where}.close")))
    return tuple(out)
