"""Past prices from graph-api for the activity sync: while it is unreachable, one try per backoff step.

An unreachable graph-api is one warning line, then quiet tries with backoff, and the cost basis waits
for its next try: not a retry loop logging every attempt, nor a recomputation with holes. An answer
with gaps (pricing/candlecache.py's gap rule) is refused the same way: its range is asked again after
the backoff, until an answer is whole or the same candles were missing GAP_CONFIRMATIONS times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from exporter.activity.calls import Calls
from exporter.api.candles import Candle
from exporter.api.errors import ApiError
from exporter.api.transactions import KLINES, OHLCS, ActivityClient
from exporter.config.activity_settings import DEFAULT_GRAPH_API_URL, ActivitySettings
from exporter.config.loader import DEFAULT_API_URL
from exporter.pricing.candlecache import GAPS, STEP, GapBook, missing

log = logging.getLogger(__name__)

# After a failed price-history request, revaluation waits this long, doubling per failure up to the
# cap, and tries once (no retry loop): an unreachable graph-api is one warning, then quiet retries.
PRICES_RETRY_BASE = 30.0
PRICES_RETRY_MAX = 1800.0


def retry_wait(failures: int) -> float:
    """How long the next price-history try waits after `failures` failed ones in a row (1 or more)."""
    return min(PRICES_RETRY_MAX, PRICES_RETRY_BASE * 2.0 ** (failures - 1))


class PriceFetch:
    """Fetches candles through the sync's calls, backing off while graph-api is unavailable."""

    def __init__(
        self, settings: ActivitySettings, client: ActivityClient, calls: Calls, monotonic: Callable[[], float]
    ) -> None:
        self.settings = settings
        self.client = client
        self.calls = calls
        self._monotonic = monotonic
        self._failures = 0
        self.retry_at: float | None = None  # a monotonic time; None while prices answer
        self._down: ApiError | None = None  # the failure that started the backoff
        self.gaps = GapBook()
        # A one-shot command cannot wait out the backoff between the asks that tell a gap from quiet
        # hours (a sparse pair has many): it asks again at once, up to the confirmations the rule needs.
        self.ask_gaps_at_once = False
        self._gaps_said = False  # gappy answers are one warning a process, then debug lines

    def waiting(self) -> bool:
        """Whether the price history is unavailable and its next try is still to come."""
        return self.retry_at is not None and self._monotonic() < self.retry_at

    def candles(self, base: str, quote: str, resolution: str, from_s: int, to_s: int) -> Sequence[Candle]:
        path = OHLCS if resolution == "1D" else KLINES

        def attempt(left: float) -> Sequence[Candle]:
            end = time.monotonic() + left
            return self.client.candles(base, quote, resolution, from_s, to_s, self.calls.hook(""), end)

        if self._down is not None and self._monotonic() < (self.retry_at or 0.0):
            raise self._down  # not asked again before its backoff step is over
        # While it is down, one attempt per backoff step: not a retry loop logging every attempt.
        within = self.calls.attempt_time if self._failures else None
        for _ in range(self.gaps.confirmations if self.ask_gaps_at_once else 1):
            try:
                candles = self.calls.call(path, "price history", attempt, KLINES, within)
            except ApiError as exc:
                # Unreachable or failing (transient): the backoff. A refusal of one pair (4xx, a bad
                # answer) says nothing of the others, and is reported as before.
                if exc.transient:
                    self._failed(exc)
                raise
            gaps = missing(candles, from_s, to_s, STEP[resolution], self.client.rest.now_ms() / 1000)
            unconfirmed = self.gaps.unconfirmed(base + quote, resolution, candles, gaps)
            if not unconfirmed:
                break
        if unconfirmed:
            detail = f"{len(gaps)} closed candle(s) of {base}{quote} missing between {gaps[0]} and {gaps[-1]}"
            gappy = ApiError(GAPS, path, 200, detail)
            self._failed(gappy)
            raise gappy
        if self._failures:
            log.info("price history answers again at %s", self.settings.graph_api_url)
        self._failures, self.retry_at, self._down = 0, None, None
        return candles

    def _failed(self, exc: ApiError) -> None:
        self._failures += 1
        self._down = exc
        wait = retry_wait(self._failures)
        self.retry_at = self._monotonic() + wait
        if self._failures > 1:
            log.debug("price history still unavailable (%d failures), next try in %.0fs: %s", *(
                self._failures, wait, exc))  # fmt: skip
            return
        url = self.settings.graph_api_url
        if exc.reason == GAPS:
            said, self._gaps_said = self._gaps_said, True
            (log.debug if said else log.warning)(
                "price history at %s left closed candles out: %s; asked again with backoff, cost basis "
                "and profit wait for it",
                url,
                exc,
            )
            return
        hint = ""
        if url == DEFAULT_GRAPH_API_URL and self.client.rest.api_url != DEFAULT_API_URL:
            hint = (
                f"; api_url is {self.client.rest.api_url} but graph_api_url is BTCTurk's: against the "
                "simulator, set graph_api_url (or BTCTURK_GRAPH_API_URL) to it too"
            )
        log.warning(
            "price history unavailable at %s: %s; cost basis and profit wait for it, tried again quietly "
            "with backoff up to every %.0fm%s",
            url,
            exc,
            PRICES_RETRY_MAX / 60,
            hint,
        )
