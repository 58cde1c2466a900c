"""Background polling: one loop per account plus one for the shared ticker, with bounded retries."""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_before_delay,
    wait_exponential_jitter,
)

from exporter.client import BALANCES, TICKER, ApiError, Client
from exporter.config import Account, Config
from exporter.parsing import Balance
from exporter.snapshot import SHARED, AccountSnapshot, PriceSnapshot, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

# The API's rate-limit window is 60 s, so a longer Retry-After is a misbehaving proxy, not advice.
MAX_RETRY_AFTER = 60.0
# A 429 without Retry-After still pauses every account for this long.
DEFAULT_RATE_LIMIT_PAUSE = 5.0
JITTER = 0.05


class _Stopped(Exception):
    """Raised inside a sleep when the poller is asked to stop."""


class RateGate:
    """The per-IP rate-limit pause that every account polling one host must honour."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._until = 0.0

    def block(self, seconds: float) -> None:
        """Pause every caller for `seconds` from now (extending, never shortening, a pause)."""
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def remaining(self) -> float:
        """Seconds left in the current pause, 0 when open."""
        with self._lock:
            return max(0.0, self._until - self._clock())


def _as_api_error(exc: Exception, endpoint: str) -> ApiError:
    """The failure as the poll counts it; anything unforeseen is logged and counted as bad_response."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, _Stopped):
        raise exc
    log.error("unexpected error polling %s", endpoint, exc_info=exc)
    return ApiError("bad_response", endpoint, detail=f"unexpected {type(exc).__name__}")


def nonzero(balance: Balance) -> bool:
    """Whether any amount of the asset is non-zero."""
    return any((balance.balance, balance.free, balance.locked, balance.order_fund, balance.request_fund))


class Poller:
    """Polls every account and the ticker on the configured interval and publishes into the store."""

    def __init__(
        self,
        config: Config,
        client: Client,
        store: Store,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.client = client
        self.store = store
        self.gate = RateGate(monotonic)
        self._rng = rng or random.Random()
        self._clock = clock
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ever_nonzero: dict[str, set[str]] = {a.name: set() for a in config.accounts}
        self._kept: dict[str, tuple[Balance, ...]] = {}
        self._clock_synced = threading.Event()
        self._sync_lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start one daemon thread per account and one for the ticker."""
        jobs: list[tuple[str, Callable[[float], None]]] = [("ticker", self.poll_prices)]
        for account in self.config.accounts:
            jobs.append((f"account {account.name}", functools.partial(self.poll_account, account)))
        for name, job in jobs:
            thread = threading.Thread(target=self._loop, args=(job,), name=f"poll {name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 0.5) -> None:
        """Stop every loop, waiting briefly; a thread stuck in a request is a daemon and dies with us."""
        self._stop.set()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    def _loop(self, job: Callable[[float], None]) -> None:
        interval = self.config.poll_interval
        # Spread the first polls a little so accounts don't hit the API in one burst.
        next_due = self._monotonic() + self._rng.uniform(0, min(1.0, interval * JITTER))
        while True:
            try:
                self._sleep(max(0.0, next_due - self._monotonic()))
                started = self._monotonic()
                job(started + interval)
            except _Stopped:
                return
            except Exception:  # a bug must not kill the loop: keep polling, keep serving
                log.exception("unexpected error in poll loop")
            jitter = self._rng.uniform(-JITTER, JITTER) * interval
            next_due = max(started + interval + jitter, self._monotonic())

    # --- retries ---------------------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_exponential_jitter(multiplier=0.5, max=max(1.0, self.config.poll_interval / 4))(state)
        return max(backoff, self.gate.remaining())

    def _call(self, attempt: Callable[[], T], deadline: float) -> T:
        """Run `attempt`, retrying transient failures, never starting one that could outlive `deadline`."""
        budget = deadline - self._monotonic() - self.config.timeout

        def guarded() -> T:
            pause = self.gate.remaining()
            if pause:
                raise ApiError("rate_limited", "(paused)", detail=f"rate-limit pause, {pause:.0f}s left")
            try:
                return attempt()
            except ApiError as exc:
                if exc.reason == "rate_limited":
                    self._rate_limited(exc)
                elif exc.transient:
                    log.debug("retryable failure: %s", exc)
                raise

        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, ApiError) and exc.transient),
            wait=self._wait,
            stop=stop_before_delay(max(0.0, budget)),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(guarded)

    def _rate_limited(self, exc: ApiError) -> None:
        pause = exc.retry_after
        if pause is None:
            pause = DEFAULT_RATE_LIMIT_PAUSE
        elif pause > MAX_RETRY_AFTER:
            log.warning("Retry-After of %.0fs from %s capped to %.0fs", pause, exc.endpoint, MAX_RETRY_AFTER)
            pause = MAX_RETRY_AFTER
        self.gate.block(pause)

    # --- the polls -------------------------------------------------------------------------------

    def sync_clock(self) -> None:
        """Measure the offset to the server's clock; failures leave the old offset in place."""
        with self._sync_lock:
            try:
                offset = self.client.sync_clock(self._hook(SHARED))
            except ApiError as exc:
                log.warning("could not measure the server clock: %s", exc)
                return
            self.store.set_clock_offset(offset)
            self._clock_synced.set()
            if abs(offset) > 1.0:
                log.info("local clock is %.3fs off the server's; signing with the corrected time", -offset)

    def _hook(self, account: str) -> Callable[[str, str], None]:
        return lambda endpoint, code: self.store.count_request(account, endpoint, code)

    def poll_account(self, account: Account, deadline: float) -> None:
        """Poll one account once (with retries) and publish the outcome."""
        started = self._monotonic()
        if not self._clock_synced.is_set():
            self.sync_clock()
        hook = self._hook(account.name)
        try:
            balances = self._call(lambda: self.client.balances(account, hook), deadline)
        except Exception as exc:
            error = _as_api_error(exc, BALANCES)
            self.store.publish_failure(account.name, error.reason, self._monotonic() - started)
            log.warning("poll of account %s failed: %s", account.name, error)
            if error.reason == "auth":
                # Clock drift is the usual cause of 401s; the next poll signs with a fresh offset.
                self.sync_clock()
            return
        ever = self._ever_nonzero[account.name]
        ever.update(b.asset for b in balances if nonzero(b))
        kept = tuple(b for b in balances if b.asset in ever)
        previous = self._kept.get(account.name)
        if previous == kept:
            # The same tuple object tells the metrics layer its cached text is still right.
            kept = previous
        self._kept[account.name] = kept
        snapshot = AccountSnapshot(account.name, kept, self._clock())
        self.store.publish_balances(snapshot, self._monotonic() - started)

    def poll_prices(self, deadline: float) -> None:
        """Poll the shared ticker once (with retries); its failures never mark an account down."""
        try:
            tickers = self._call(lambda: self.client.ticker(self._hook(SHARED)), deadline)
        except Exception as exc:
            self.store.count_failure(SHARED, "ticker")
            log.warning("ticker poll failed: %s", _as_api_error(exc, TICKER))
            return
        self.store.publish_prices(PriceSnapshot(tickers, self._clock()))
