"""The account-activity sync: its own threads read each account's transactions into the ledger.

One thread per transaction endpoint (trade, crypto, fiat) takes every account in turn, so a 429 on one
endpoint holds only that endpoint, and a long backfill of one account shares the endpoint with the
others (`requests_per_turn` at a time). A fourth thread polls exchangeinfo, fetches the price history
the records need, recomputes cost basis when something changed, and publishes snapshots. None of this
touches the balances gate or the Poller: balances are never delayed by activity.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence

from exporter.activity.revalue import revalue
from exporter.activity.state import AccountHealth, ActivitySnapshot
from exporter.activity.turn import read_turn
from exporter.activity.windows import Progress
from exporter.api import budget, permissions, retries
from exporter.api.candles import Candle
from exporter.api.client import ApiError
from exporter.api.market import EXCHANGE_INFO, MarketStatus
from exporter.api.ratelimit import Gate, Gates
from exporter.api.records import ENDPOINTS
from exporter.api.retries import Stopped
from exporter.api.transactions import KLINES, OHLCS, ActivityClient, Record
from exporter.config.activity import plan
from exporter.config.activity_settings import DEFAULT_GRAPH_API_URL, MAX_WINDOW_MS, ActivitySettings
from exporter.config.loader import DEFAULT_API_URL, Account
from exporter.ledger.store import KINDS, Kind, Ledger
from exporter.pricing.history import PriceHistory

log = logging.getLogger(__name__)

# Called once per HTTP exchange with (account or "", endpoint, code), like the poller's request hook.
RequestCounter = Callable[[str, str, str], None]


# The budgets whose first attempts wait for the planned share (the graph-api's two paths share one).
PLANNED = (*ENDPOINTS.values(), KLINES)
# After a failed price-history request, revaluation waits this long, doubling per failure up to the
# cap, and tries once (no retry loop): an unreachable graph-api is one warning, then quiet retries.
PRICES_RETRY_BASE = 30.0
PRICES_RETRY_MAX = 1800.0


def _planned(
    path: str, share: float, monotonic: Callable[[], float], budgets: Sequence[budget.Budget]
) -> Gate:
    """A gate holding `share` of the path's per-IP budget."""
    full = next(b for b in budgets if path in b.paths)
    return Gate(budget.Budget(full.name, budget.planned_calls(full.limit, share), full.paths), monotonic)


class ActivitySync:
    """Reads every account's activity into the ledger and publishes ActivitySnapshot / MarketStatus."""

    def __init__(
        self,
        settings: ActivitySettings,
        accounts: Sequence[Account],
        client: ActivityClient,
        ledger: Ledger,
        *,
        gates: Gates,
        on_snapshot: Callable[[ActivitySnapshot], None],
        on_market: Callable[[MarketStatus], None] | None = None,
        on_request: RequestCounter | None = None,
        on_clock_offset: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        budgets: Sequence[budget.Budget] = budget.BUDGETS,
    ) -> None:
        """`gates` are the process's shared gates (the Poller's); `budgets` those of the planned share."""
        self.settings = settings
        self.accounts = tuple(accounts)
        self.client = client
        self.ledger = ledger
        self.gates = gates
        self.on_snapshot = on_snapshot
        self.on_market = on_market
        self.on_request = on_request
        # The offset is the shared client's: a re-measure here must reach btcturk_clock_offset_seconds.
        self.on_clock_offset = on_clock_offset
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self.health = {a.name: AccountHealth(a.name) for a in self.accounts}
        self.prices = PriceHistory(ledger, self._candles)
        self.market: MarketStatus | None = None
        # Each activity budget's planned share: first attempts wait here, so retries keep headroom.
        share = settings.rate_limit_share
        self._plan = {path: _planned(path, share, monotonic, budgets) for path in PLANNED}
        self._policy = retries.Policy(client.rest.total_timeout, backoff_max=30.0)
        self._price_failures = 0
        self._prices_retry_at: float | None = None  # a monotonic time; None while prices answer
        self._prices_down: ApiError | None = None  # the failure that started the backoff
        self._spans: dict[tuple[str, Kind], int] = {}
        self._counts: dict[str, dict[Kind, int]] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the endpoint threads and the publisher; nothing at all when activity is disabled."""
        if not self.settings.enabled or not self.accounts:
            return
        jobs: list[tuple[str, Callable[[], None]]] = [
            (f"activity {kind}", lambda kind=kind: self._endpoint_loop(kind))  # type: ignore[misc]
            for kind in KINDS
        ]
        jobs.append(("activity publish", self._publish_loop))
        for name, job in jobs:
            thread = threading.Thread(target=self._guarded, args=(job,), name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop every thread, waiting briefly (a thread stuck in a request is a daemon)."""
        self._stop.set()
        self._wake.set()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise Stopped

    def _guarded(self, job: Callable[[], None]) -> None:
        errors = 0
        while not self._stop.is_set():
            try:
                job()
                return
            except Stopped:
                return
            except Exception:  # a bug must not end the sync for good: log it and start over, slower
                errors += 1
                log.exception("unexpected error in the activity sync (%d in a row)", errors)
                if self._stop.wait(min(self.settings.interval, 5.0 * 2**errors)):
                    return

    def _endpoint_loop(self, kind: Kind) -> None:
        while True:
            started = self._monotonic()
            more = False
            for account in self.accounts:
                progress = self.sync_endpoint(account, kind)
                more = more or (progress is not None and not progress.done)
            self._wake.set()
            if not more:
                self._sleep(max(0.0, started + self.settings.interval - self._monotonic()))

    def _publish_loop(self) -> None:
        next_market = self._monotonic()
        while True:
            if self._monotonic() >= next_market:
                self.refresh_market()
                next_market = self._monotonic() + self.settings.market_interval
            self._wake.clear()
            for account in self.accounts:
                self.publish(account.name)
            if self._stop.is_set():
                raise Stopped
            wake_at = min(next_market, self._prices_retry_at or next_market)  # the prices' next try too
            self._wake.wait(max(0.0, wake_at - self._monotonic()))
            if self._stop.is_set():
                raise Stopped

    # --- one call through the gates --------------------------------------------------------------

    def _call(
        self,
        path: str,
        who: str,
        attempt: Callable[[float], retries.T],
        plan_path: str | None,
        within: float | None = None,
    ) -> retries.T:
        deadline = self._monotonic() + (self.settings.request_deadline if within is None else within)
        if plan_path is not None and self._plan[plan_path].acquire(deadline, self._sleep) is not None:
            raise ApiError("rate_limited", path, detail="planned share of the budget used up")
        return retries.call(
            attempt,
            gate=self.gates.for_path(path),
            endpoint=path,
            who=who,
            deadline=deadline,
            policy=self._policy,
            clock=self._monotonic,
            sleep=self._sleep,
            rng=self._rng,
        )

    def _hook(self, account: str) -> Callable[[str, str], None] | None:
        counter = self.on_request
        if counter is None:
            return None
        return lambda endpoint, code: counter(account, endpoint, code)

    # --- the transaction endpoints ---------------------------------------------------------------

    def sync_endpoint(self, account: Account, kind: Kind) -> Progress | None:
        """One turn of one account's endpoint: backfill or re-read the recent window. None: skipped."""
        health = self.health[account.name]
        if not health.due(self._monotonic()):
            return None
        path = ENDPOINTS[kind]
        try:
            try:
                progress = self._read(account, kind)
            except ApiError as exc:
                if exc.reason != "auth" or not health.permitted:
                    raise
                # Clock drift is the usual cause of a 401: measure again and try once more.
                with contextlib.suppress(ApiError):
                    offset = self.client.rest.sync_clock(self._hook(account.name))
                    if self.on_clock_offset is not None:
                        self.on_clock_offset(offset)
                progress = self._read(account, kind)
        except ApiError as exc:
            health.failed(kind, path, exc.reason)
            if exc.reason == "auth":
                recheck = self._monotonic() + self.settings.permission_recheck
                if health.refuse(recheck):
                    log.warning(
                        "activity of account %s is off: %s answers 401 (the key lacks the %s "
                        "permission, or is bound to another IP); balances are unaffected; "
                        "trying again every %gs",
                        account.name,
                        path,
                        permissions.BY_PATH.get(path, permissions.ACCOUNT),
                        self.settings.permission_recheck,
                    )
            else:
                log.warning("activity sync of account %s: %s", account.name, exc)
            return None
        if progress.truncated:
            for _ in range(progress.truncated):
                health.failed(kind, path, "truncated")
        if progress.stored:
            self._counts.pop(account.name, None)
        if health.succeeded(kind, self._clock(), progress.done, progress.stored):
            log.info("activity of account %s is readable again", account.name)
        return progress

    def _read(self, account: Account, kind: Kind) -> Progress:
        path = ENDPOINTS[kind]
        hook = self._hook(account.name)
        who = f"activity {account.name}"

        def fetch(start_ms: int, end_ms: int) -> Sequence[Record]:
            def attempt(left: float) -> Sequence[Record]:
                return self.client.records(account, kind, start_ms, end_ms, hook, time.monotonic() + left)

            return self._call(path, who, attempt, path)

        key = (account.name, kind)
        progress = read_turn(
            self.settings, self.ledger, account.name, kind, self.client.rest.now_ms(), fetch,
            self._spans.get(key, MAX_WINDOW_MS),
        )  # fmt: skip
        self._spans[key] = progress.span_ms
        return progress

    # --- market, prices, snapshots ---------------------------------------------------------------

    def refresh_market(self) -> MarketStatus | None:
        """Poll exchangeinfo once; publish it and use its pairs for price routes."""

        def attempt(left: float) -> MarketStatus:
            return self.client.market(self._clock(), self._hook(""), time.monotonic() + left)

        try:
            market = self._call(EXCHANGE_INFO, "market status", attempt, None)
        except ApiError as exc:
            log.warning("market status poll failed: %s", exc)
            return None
        self.market = market
        if self.prices.set_pairs(market.pairs.values()):
            for health in self.health.values():
                health.changed = True
        if self.on_market is not None:
            self.on_market(market)
        return market

    def _candles(self, base: str, quote: str, resolution: str, from_s: int, to_s: int) -> Sequence[Candle]:
        path = OHLCS if resolution == "1D" else KLINES

        def attempt(left: float) -> Sequence[Candle]:
            end = time.monotonic() + left
            return self.client.candles(base, quote, resolution, from_s, to_s, self._hook(""), end)

        if self._prices_down is not None and self._monotonic() < (self._prices_retry_at or 0.0):
            raise self._prices_down  # not asked again before its backoff step is over
        # While it is down, one attempt per backoff step: not a retry loop logging every attempt.
        deadline = self._policy.attempt_time if self._price_failures else None
        try:
            candles = self._call(path, "price history", attempt, KLINES, deadline)
        except ApiError as exc:
            # Unreachable or failing (transient): the backoff. A refusal of one pair (4xx, a bad
            # answer) says nothing of the others, and is reported as before.
            if exc.transient:
                self._prices_failed(exc)
            raise
        if self._price_failures:
            log.info("price history answers again at %s", self.settings.graph_api_url)
        self._price_failures, self._prices_retry_at, self._prices_down = 0, None, None
        return candles

    def _prices_failed(self, exc: ApiError) -> None:
        self._price_failures += 1
        self._prices_down = exc
        wait = retries.backoff(self._price_failures, PRICES_RETRY_BASE, PRICES_RETRY_MAX)
        self._prices_retry_at = self._monotonic() + wait
        if self._price_failures > 1:
            log.debug("price history still unavailable (%d failures), next try in %.0fs: %s", *(
                self._price_failures, wait, exc))  # fmt: skip
            return
        url = self.settings.graph_api_url
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

    def publish(self, name: str) -> ActivitySnapshot:
        """Recompute the account's cost basis if its records or prices changed, and publish a snapshot."""
        health = self.health[name]
        now = self._clock()
        reopen = health.prices_open_until is not None and now >= health.prices_open_until
        # A cost basis over part of the history would be wrong, not early: none until the backfill is done
        # (which also spares a recompute of a growing history after every backfill turn).
        # While the price history is unavailable, the cost basis waits for its next try.
        waiting = self._prices_retry_at is not None and self._monotonic() < self._prices_retry_at
        due = not waiting and (health.take_changed() or reopen)
        if self.market is not None and health.backfilled() and due:
            revalue(self.ledger, self.prices, health, self.settings, now, self.client.rest.now_ms())
            self._counts.pop(name, None)
        if name not in self._counts:
            # Counting 100,000 rows costs milliseconds: only after the records changed.
            counts = self.ledger.counts()
            self._counts[name] = {kind: counts.get((name, kind), 0) for kind in KINDS}
        snapshot = health.snapshot(self._counts[name])
        self.on_snapshot(snapshot)
        return snapshot

    def run_once(self) -> dict[str, ActivitySnapshot]:
        """Sync every account to now (backfill included), then publish: for tests and benchmarks."""
        if not self.settings.enabled:
            return {}
        self.refresh_market()
        for account in self.accounts:
            for kind in KINDS:
                while (progress := self.sync_endpoint(account, kind)) is not None and not progress.done:
                    pass
        return {a.name: self.publish(a.name) for a in self.accounts}


__all__ = ["ActivitySnapshot", "ActivitySync", "plan"]
