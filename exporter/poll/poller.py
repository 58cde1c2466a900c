"""Background polling: one loop per account plus one for the shared ticker, with bounded retries."""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from exporter.api import retries
from exporter.api.account import Account
from exporter.api.client import BALANCES, TICKER, Client
from exporter.api.errors import ApiError
from exporter.api.parsing import Balance, Ticker
from exporter.api.ratelimit import Gates
from exporter.config.loader import Config
from exporter.loops import Loops, Stopped
from exporter.poll.snapshot import SHARED, AccountSnapshot, PriceSnapshot, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

JITTER = 0.05
# After unexpected errors a loop waits interval, 2 x interval, ... up to this (or the interval, if longer).
MAX_LOOP_BACKOFF = 300.0


def _unexpected(exc: Exception, endpoint: str) -> ApiError:
    """An unforeseen error, logged with its traceback and counted as bad_response."""
    log.error("unexpected error polling %s", endpoint, exc_info=exc)
    return ApiError("bad_response", endpoint, detail=f"unexpected {type(exc).__name__}")


def nonzero(balance: Balance) -> bool:
    """Whether any amount of the asset is non-zero."""
    return any((balance.balance, balance.free, balance.locked, balance.order_fund, balance.request_fund))


def exported(
    balances: tuple[Balance, ...], ever: set[str], previous: tuple[Balance, ...] | None
) -> tuple[Balance, ...]:
    """The zero-asset rule: assets non-zero at least once (`ever`, updated here) keep reporting."""
    ever.update(b.asset for b in balances if nonzero(b))
    kept = tuple(b for b in balances if b.asset in ever)
    # The same tuple object tells the metrics layer its cached text is still right.
    return previous if previous == kept else kept


def first_delay(accounts: int, interval: float, rng: random.Random) -> float:
    """Seconds before a loop's first poll: spread a little when several accounts share the API."""
    if accounts <= 1:
        return 0.0  # nothing to spread, and jitter would only delay the first data
    return rng.uniform(0, min(1.0, interval * JITTER))


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
        gates: Gates | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.store = store
        # One gate per API budget, shared by every account (and, later, the activity sync).
        self.gates = gates or Gates(clock=monotonic)
        self._rng = rng or random.Random()
        self._clock = clock
        self._monotonic = monotonic
        self._policy = retries.Policy(config.timeout, backoff_max=max(1.0, config.poll_interval / 4))
        self._loops = Loops()
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
            self._loops.start(f"poll {name}", functools.partial(self._loop, job))

    def stop(self, timeout: float = 0.5) -> None:
        """Stop every loop, waiting briefly; a thread stuck in a request is a daemon and dies with us."""
        self._loops.stop(timeout)

    def _sleep(self, seconds: float) -> None:
        self._loops.sleep(seconds)

    def _loop(self, job: Callable[[float], None]) -> None:
        interval = self.config.poll_interval
        next_due = self._monotonic() + first_delay(len(self.config.accounts), interval, self._rng)
        errors = 0  # unexpected errors in a row: each doubles the wait, so a bug cannot spin the loop
        while True:
            started = next_due
            try:
                self._sleep(max(0.0, next_due - self._monotonic()))
                started = self._monotonic()
                job(started + interval)
                errors = 0
            except Stopped:
                return
            except Exception:  # a bug must not kill the loop: keep polling, keep serving
                errors += 1
                log.exception("unexpected error in poll loop (%d in a row)", errors)
            gap = min(max(interval, MAX_LOOP_BACKOFF), interval * 2.0 ** min(errors, 60))
            jitter = self._rng.uniform(-JITTER, JITTER) * interval
            next_due = max(started + gap + jitter, self._monotonic())

    def _call(self, endpoint: str, who: str, attempt: Callable[[float], T], deadline: float) -> T:
        """Run `attempt` through the endpoint's gate with retries, all within `deadline`."""
        return retries.call(
            attempt,
            gate=self.gates.for_path(endpoint),
            endpoint=endpoint,
            who=who,
            deadline=deadline,
            policy=self._policy,
            stop=self._loops.stop_event,
            clock=self._monotonic,
        )

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

        # Each attempt ends by the poll's deadline as well as by config.timeout; the transport keeps
        # time on the real monotonic clock, so the time left is turned into a deadline on that clock.
        def fetch(left: float) -> tuple[Balance, ...]:
            return self.client.balances(account, hook, time.monotonic() + left)

        try:
            balances = self._call(BALANCES, f"account {account.name}", fetch, deadline)
        except Exception as exc:
            error = exc if isinstance(exc, ApiError) else _unexpected(exc, BALANCES)
            self.store.publish_failure(account.name, error.reason, self._monotonic() - started)
            log.warning("poll of account %s failed: %s", account.name, error)
            if error.reason == "auth":
                # Clock drift is the usual cause of 401s; the next poll signs with a fresh offset.
                self.sync_clock()
            return
        kept = exported(balances, self._ever_nonzero[account.name], self._kept.get(account.name))
        self._kept[account.name] = kept
        snapshot = AccountSnapshot(account.name, kept, self._clock())
        duration = self._monotonic() - started
        self.store.publish_balances(snapshot, duration)
        log.debug(
            "polled account %s in %.3fs: %d assets, %d exported",
            *(account.name, duration, len(balances), len(kept)),
        )

    def poll_prices(self, deadline: float) -> None:
        """Poll the shared ticker once (with retries); its failures never mark an account down."""

        def fetch(left: float) -> tuple[Ticker, ...]:
            return self.client.ticker(self._hook(SHARED), time.monotonic() + left)

        try:
            tickers = self._call(TICKER, "ticker", fetch, deadline)
        except Exception as exc:  # a stop is a BaseException and passes through: it is not a failure
            error = exc if isinstance(exc, ApiError) else _unexpected(exc, TICKER)
            self.store.count_failure(SHARED, "ticker")
            log.warning("ticker poll failed: %s", error)
            return
        self.store.publish_prices(PriceSnapshot(tickers, self._clock()))
