"""Each asset's price in TRY over time: a seeded hourly past, then what the live market did.

The past is drawn backwards from the price the market opened at, with the same mean-reverting
(Ornstein-Uhlenbeck) dynamics forwards and backwards, so it joins the live prices without a jump.
Price-history answers and pre-generated account history both read this one path.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field

HOUR = 3600
# Hourly steps: about 3% a day for a typical coin, pulled back with a half-life of about a month.
_HOURLY_SIGMA = 0.006
_HOURLY_REVERSION = math.log(2) / (30 * 24)
_STABLE = frozenset({"USDT", "USDC"})
# Live prices are kept at most once a minute per asset, so a long demo run stays small.
LIVE_SPACING = 60.0


@dataclass
class _Path:
    times: list[float] = field(default_factory=list)  # seconds, ascending
    prices: list[float] = field(default_factory=list)  # TRY per unit


class PricePath:
    """Hourly history back to `days` before `opened`, then live samples; callers hold the simulator lock.

    The past of an asset is drawn the first time it is asked for, so live recording stays cheap.
    """

    def __init__(self, seed: int, opened: float, base: dict[str, float], days: int = 400) -> None:
        self.seed = seed
        self.opened = opened
        self.base = base
        self.days = days
        self._past: dict[str, _Path] = {}
        self._live: dict[str, _Path] = {}

    def _past_of(self, symbol: str) -> _Path:
        path = self._past.get(symbol)
        if path is None:
            path = self._past[symbol] = self._draw(symbol)
        return path

    def _draw(self, symbol: str) -> _Path:
        base = self.base.get(symbol)
        path = _Path()
        if base is None or base <= 0:
            return path
        rng = random.Random(f"path-{self.seed}-{symbol}")
        sigma = _HOURLY_SIGMA * (0.05 if symbol in _STABLE else 1.0)
        steps = self.days * 24
        deviations = [0.0]
        for _ in range(steps):
            deviations.append(deviations[-1] * (1 - _HOURLY_REVERSION) + rng.gauss(0.0, sigma))
        start = self.opened - steps * HOUR
        path.times = [start + i * HOUR for i in range(steps + 1)]
        path.prices = [base * math.exp(d) for d in reversed(deviations)]
        return path

    def record(self, symbol: str, now: float, price: float) -> None:
        """Keep a live price (at most one a minute)."""
        live = self._live.setdefault(symbol, _Path())
        if now > self.opened and (not live.times or now - live.times[-1] >= LIVE_SPACING):
            live.times.append(now)
            live.prices.append(price)

    def price_at(self, symbol: str, when: float) -> float | None:
        """The last known TRY price at `when`; None before the path starts or without a market."""
        for path in (self._live.get(symbol), self._past_of(symbol)):
            if path is not None:
                index = bisect.bisect_right(path.times, when) - 1
                if index >= 0:
                    return path.prices[index]
        return None

    def samples(self, symbol: str, start: float, end: float) -> list[tuple[float, float]]:
        """(time, price) in [start, end), preceded by the last sample before start if there is one."""
        out: list[tuple[float, float]] = []
        for path in (self._past_of(symbol), self._live.get(symbol, _Path())):
            low = bisect.bisect_left(path.times, start)
            high = bisect.bisect_left(path.times, end)
            out += zip(path.times[low:high], path.prices[low:high], strict=True)
        before = self.price_at(symbol, start - 1e-9)
        if before is not None and (not out or out[0][0] > start):
            out.insert(0, (start - 1e-9, before))
        return out
