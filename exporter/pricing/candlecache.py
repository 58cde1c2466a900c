"""Candle closes fetched from graph-api once and kept in the ledger's price cache.

What has been fetched is kept per pair and resolution as one range of final candles
(`prices:<resolution>:<pair>` in the ledger's state), so a past price is fetched once; the candle still
open (this hour, this day) is fetched again once it has closed.

The gap rule (`missing`, `GapBook`): graph-api gives an hour without trades no candle, so a missing
candle alone does not tell a quiet hour from a gappy answer. A closed candle an answer left out after
its first candle (a hole between candles it has, or a tail between its last candle and the asked end,
as far as candles have closed) is a gap; before its first candle nothing is (a pair has no candles
before it was listed, and an empty answer is a range without trades). An answer with gaps is refused
(the fetch raises, nothing of it is kept, the range is not counted as fetched) and asked again after
the graph-api backoff, until an answer has them or GAP_CONFIRMATIONS answers have lacked the same
candle: then it is taken as a quiet hour. So a gappy answer costs at most GAP_CONFIRMATIONS requests
per missing candle, spaced by the backoff, never a range marked fetched with candles missing for good.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from exporter.api.candles import DAILY, HOURLY, Candle
from exporter.ledger.store import Ledger

HOUR = 3600
DAY = 86400
STEP = {HOURLY: HOUR, DAILY: DAY}
# Candles asked for in one request: far under the simulator's 5,000 and any sane server's limit.
CHUNK = 500
# Answers that must lack a closed candle before it is taken as a quiet hour (see the gap rule above).
GAP_CONFIRMATIONS = 3
# The failure reason of an answer refused for its gaps (btcturk_activity_sync_failures_total's `reason`).
GAPS = "gaps"

Pair = tuple[str, str]
# fetch(base, quote, resolution, from_s, to_s) -> candles starting in [from_s, to_s]
Fetch = Callable[[str, str, str, int, int], Sequence[Candle]]


class CandleCache:
    """Fetches the candles a pair needs into the ledger, and answers their closes; one thread at a time."""

    def __init__(self, ledger: Ledger, fetch: Fetch) -> None:
        self._ledger = ledger
        self._fetch = fetch
        self._closes: dict[tuple[str, str, int], Decimal | None] = {}
        # With _final_only, a cached candle that had not closed when fetched answers None: a reader that
        # prints what it values (the ledger commands) must not show a close still moving as the price.
        # The exporter's own replay takes it, and replays once it has closed (activity/revalue.py).
        self._final_only = False
        self._covered: dict[tuple[str, str], tuple[int, int] | None] = {}  # _coverage, read once a save
        # Counts the fetches that put candles (and finals_only): an answer remembered from before
        # (history.HourMemo) is stale once it changes.
        self.version = 0

    def finals_only(self) -> None:
        """From now on answer only closes of candles that had closed when fetched (_final_only)."""
        self._final_only = True
        self._closes.clear()
        self.version += 1  # answers may differ from now on, as after a fetch

    def prefetch(self, pair: Pair, hours: set[int], now_s: float) -> float | None:
        """Fetch the hourly candles of these hours not cached yet (the day's where an hour has none).

        Return when a still-open candle closes, or None. ApiError from the fetch passes through; what was
        fetched before it is kept.
        """
        if not hours:
            return None
        base, quote = pair
        open_at = self._ensure(base, quote, HOURLY, min(hours), max(hours) + HOUR, now_s)
        missing_days = {h // DAY * DAY for h in hours if self.close(base, quote, HOURLY, h) is None}
        if missing_days:
            daily = self._ensure(base, quote, DAILY, min(missing_days), max(missing_days) + DAY, now_s)
            open_at = daily if open_at is None else open_at if daily is None else min(open_at, daily)
        return open_at

    def close(self, base: str, quote: str, resolution: str, start: int) -> Decimal | None:
        """The cached close of the pair's candle starting at `start` (s), None when not cached (with
        finals_only(), also when it had not closed when fetched)."""
        key = (base + quote, resolution, start)
        if key not in self._closes:
            close = self._ledger.prices.close_at(base + quote, resolution, start)
            if close is not None and self._final_only and not self._final(base + quote, resolution, start):
                close = None
            self._closes[key] = close
        return self._closes[key]

    def _final(self, pair: str, resolution: str, start: int) -> bool:
        """Whether the candle starting at `start` had closed when it was fetched (in the final range)."""
        key = (pair, resolution)
        if key not in self._covered:
            self._covered[key] = self._coverage(pair, resolution)
        covered = self._covered[key]
        return covered is not None and covered[0] <= start < covered[1]

    def _coverage(self, pair: str, resolution: str) -> tuple[int, int] | None:
        text = self._ledger.state(f"prices:{resolution}:{pair}")
        if not text:
            return None
        low, _, high = text.partition(":")
        return int(low), int(high)

    def _ensure(
        self, base: str, quote: str, resolution: str, low: int, high: int, now_s: float
    ) -> float | None:
        """Make candles starting in [low, high) cached; return when the open candle closes, if needed."""
        step = STEP[resolution]
        final = int(now_s) // step * step  # candles starting before this have closed
        pair = base + quote
        covered = self._coverage(pair, resolution)
        if covered is None:
            covered = (low, low)
        have_low, have_high = covered
        # Downwards from the covered range, then upwards: the range stays one contiguous piece.
        while low < have_low:
            start = max(low, have_low - CHUNK * step)
            self._get(base, quote, resolution, start, have_low)
            have_low = start
            self._save(pair, resolution, have_low, have_high)
        while high > have_high:
            stop = min(high, have_high + CHUNK * step)
            self._get(base, quote, resolution, have_high, stop)
            if stop > final:
                # The open candle is cached as it is now, but not yet counted as final.
                self._save(pair, resolution, have_low, max(have_high, final))
                return float(final + step)
            have_high = stop
            self._save(pair, resolution, have_low, have_high)
        return None

    def _save(self, pair: str, resolution: str, low: int, high: int) -> None:
        self._ledger.set_state(f"prices:{resolution}:{pair}", f"{low}:{high}")
        self._covered.pop((pair, resolution), None)

    def _get(self, base: str, quote: str, resolution: str, start: int, stop: int) -> None:
        candles = [c for c in self._fetch(base, quote, resolution, start, stop - 1) if start <= c[0] < stop]
        self._ledger.prices.put(base + quote, resolution, candles)
        self.version += 1
        step = STEP[resolution]
        for when in range(start, stop, step):
            self._closes.pop((base + quote, resolution, when), None)
        if self._final_only:  # close() looks them up, asking _final() first
            return
        for when, close in candles:
            if when % step == 0:
                self._closes[(base + quote, resolution, when)] = close


def missing(candles: Sequence[Candle], from_s: int, to_s: int, step: int, now_s: float) -> list[int]:
    """The gaps of an answer for candles starting in [from_s, to_s]: by the gap rule above, the closed
    candles after its first one that it lacks (start times, oldest first)."""
    starts = {when for when, _ in candles if from_s <= when <= to_s}
    if not starts:
        return []
    first = min(starts)
    last = min(to_s, int(now_s) // step * step - step)  # the newest candle that has closed
    return [when for when in range(first, last + 1, step) if when not in starts]


class GapBook:
    """How many answers lacked each gap, to tell a gappy answer from quiet hours; in memory only
    (a restart asks at most GAP_CONFIRMATIONS times again for a range that was never counted fetched)."""

    def __init__(self, confirmations: int = GAP_CONFIRMATIONS) -> None:
        self.confirmations = confirmations
        self._lacked: dict[tuple[str, str, int], int] = {}

    def unconfirmed(self, pair: str, resolution: str, candles: Sequence[Candle], gaps: Sequence[int]) -> int:
        """Count one more answer lacking each of `gaps`; how many are not yet taken as quiet hours.

        A candle an answer has is forgotten: it exists, so an answer lacking it later starts over.
        """
        for when, _ in candles:
            self._lacked.pop((pair, resolution, when), None)
        left = 0
        for when in gaps:
            key = (pair, resolution, when)
            count = self._lacked[key] = min(self.confirmations, self._lacked.get(key, 0) + 1)
            left += count < self.confirmations
        return left
