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
from exporter.api import budget, retries
from exporter.api.candles import Candle
from exporter.api.client import ApiError, OddityHook
from exporter.api.market import EXCHANGE_INFO, MarketStatus
from exporter.api.ratelimit import Gate, Gates
from exporter.api.records import BAD_RECORD, CHANGED_RECORD, ENDPOINTS, Skipped
from exporter.api.retries import Stopped
from exporter.api.transactions import KLINES, OHLCS, ActivityClient, Record
from exporter.config.activity import plan
from exporter.config.activity_settings import MAX_WINDOW_MS, ActivitySettings
from exporter.config.loader import Account
from exporter.ledger.store import KINDS, Kind, Ledger, LedgerError
from exporter.pricing.history import PriceHistory

log = logging.getLogger(__name__)

# Called once per HTTP exchange with (account or "", endpoint, code), like the poller's request hook.
RequestCounter = Callable[[str, str, str], None]


# The budgets whose first attempts wait for the planned share (the graph-api's two paths share one).
PLANNED = (*ENDPOINTS.values(), KLINES)
# How often every page of the ledger file is read back from disk (a damaged one is rebuilt).
LEDGER_CHECK_INTERVAL = 30.0
# Distinct bad or changed records remembered so each is counted and logged once (a hostile answer
# could repeat new ones forever: past this many, each is counted again on every re-read).
MAX_NOTED = 10_000
# Warning lines per account and endpoint about bad or changed records: a changed answer format makes
# every record bad, and a line each would bury the log; past this, they are counted only.
MAX_RECORD_WARNINGS = 10


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
        on_oddity: OddityHook | None = None,
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
        # Bad and changed records in transaction answers, counted as btcturk_api_oddities_total.
        self.on_oddity = on_oddity
        self._noted: set[tuple[str, str, object]] = set()
        self._warned: dict[tuple[str, str], int] = {}
        # The ledger failure last logged (one line per outage, not one per write), and rebuilds seen.
        self._ledger_lock = threading.Lock()
        self._ledger_problem: str | None = None
        self._rebuilds = ledger.rebuilds
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
        next_market = next_check = self._monotonic()
        while True:
            if self._monotonic() >= next_market:
                self.refresh_market()
                next_market = self._monotonic() + self.settings.market_interval
            if self._monotonic() >= next_check:
                self.ledger.check()
                next_check = self._monotonic() + LEDGER_CHECK_INTERVAL
            self._wake.clear()
            # Every account's counts and health first: fetching the prices a cost basis needs may take
            # minutes of graph-api budget, and must never hold back what is already known.
            for account in self.accounts:
                self.publish(account.name, revalue_due=False)
            for account in self.accounts:
                self.publish(account.name)
            if self._stop.is_set():
                raise Stopped
            self._wake.wait(max(0.0, next_market - self._monotonic()))
            if self._stop.is_set():
                raise Stopped

    # --- one call through the gates --------------------------------------------------------------

    def _call(
        self, path: str, who: str, attempt: Callable[[float], retries.T], plan_path: str | None
    ) -> retries.T:
        deadline = self._monotonic() + self.settings.request_deadline
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
        self._notice_rebuild()
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
                        "activity of account %s is off: %s answers 401 (the key lacks the permission to "
                        "read transactions, or is bound to another IP); balances are unaffected; "
                        "trying again every %gs",
                        account.name,
                        path,
                        self.settings.permission_recheck,
                    )
            else:
                log.warning("activity sync of account %s: %s", account.name, exc)
            return None
        except LedgerError as exc:
            health.failed(kind, path, "ledger")
            self._ledger_failed(exc)
            return None
        self._ledger_ok()
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
        left_out: dict[int, int] = {}  # id(answer) -> its bad items, for the page-cap check

        def fetch(start_ms: int, end_ms: int) -> Sequence[Record]:
            skipped: list[Skipped] = []

            def attempt(left: float) -> Sequence[Record]:
                end = time.monotonic() + left
                return self.client.records(account, kind, start_ms, end_ms, hook, end, skipped)

            records = self._call(path, who, attempt, path)
            for bad in skipped:
                self._bad_record(account.name, path, bad)
            left_out.clear()
            left_out[id(records)] = len(skipped)
            return records

        def size(records: Sequence[Record]) -> int:
            return len(records) + left_out.get(id(records), 0)

        def changed(record: Record) -> None:
            self._changed_record(account.name, path, record)

        key = (account.name, kind)
        progress = read_turn(
            self.settings, self.ledger, account.name, kind, self.client.rest.now_ms(), fetch,
            self._spans.get(key, MAX_WINDOW_MS), changed, size,
        )  # fmt: skip
        self._spans[key] = progress.span_ms
        return progress

    # --- what the ledger and the answers say -----------------------------------------------------

    def _note(self, key: tuple[str, str, object]) -> bool:
        """True the first time a bad or changed record is seen (count it and say it once)."""
        with self._ledger_lock:
            if key in self._noted:
                return False
            if len(self._noted) < MAX_NOTED:
                self._noted.add(key)
            return True

    def _bad_record(self, account: str, path: str, bad: Skipped) -> None:
        # By id when it has one: the same record re-read every turn is one oddity, not one a minute.
        if not self._note((account, path, bad.id if bad.id is not None else bad.reason)):
            return
        if self.on_oddity is not None:
            self.on_oddity(path, BAD_RECORD)
        which = "an item without a readable id" if bad.id is None else f"record {bad.id}"
        self._warn(account, path, "activity of account %s: %s skipped, the rest kept: %s", which, bad.reason)

    def _changed_record(self, account: str, path: str, record: Record) -> None:
        if not self._note((account, "changed " + path, record.id)):
            return
        if self.on_oddity is not None:
            self.on_oddity(path, CHANGED_RECORD)
        self._warn(
            account,
            path,
            "activity of account %s: %s served record %d again with other fields; the first version"
            " is kept (a record id never changes)",
            path,
            record.id,
        )

    def _warn(self, account: str, path: str, message: str, *args: object) -> None:
        with self._ledger_lock:
            n = self._warned[account, path] = self._warned.get((account, path), 0) + 1
        if n < MAX_RECORD_WARNINGS:
            log.warning(message, account, *args)
        elif n == MAX_RECORD_WARNINGS:
            log.warning(
                message + " (further bad or changed records of %s are counted in btcturk_api_oddities_total,"
                " not logged)",
                account,
                *args,
                path,
            )

    def _ledger_failed(self, exc: LedgerError) -> None:
        if self._stop.is_set():
            return  # the ledger is closed at shutdown: not an outage
        with self._ledger_lock:
            first = self._ledger_problem != str(exc)
            self._ledger_problem = str(exc)
        if first:
            log.error("activity sync cannot write the ledger: %s; activity is down until it can", exc)

    def _ledger_ok(self) -> None:
        with self._ledger_lock:
            was, self._ledger_problem = self._ledger_problem, None
        if was is not None:
            log.info("the ledger %s is writable again; activity sync resumed", self.ledger.path)

    def _notice_rebuild(self) -> None:
        """After the ledger was rebuilt, no account counts as backfilled until it is read again."""
        with self._ledger_lock:
            rebuilds, self._rebuilds = self._rebuilds, self.ledger.rebuilds
        if rebuilds != self._rebuilds:
            for health in self.health.values():
                health.restart()
            self._counts.clear()

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

        return self._call(path, "price history", attempt, KLINES)

    def publish(self, name: str, *, revalue_due: bool = True) -> ActivitySnapshot | None:
        """Recompute the account's cost basis if its records or prices changed (unless `revalue_due` is
        False), and publish a snapshot; None when the ledger could not be read."""
        health = self.health[name]
        self._notice_rebuild()
        try:
            return self._publish(health, revalue_due)
        except LedgerError as exc:  # the endpoint threads' writes mark the account down
            self._ledger_failed(exc)
            return None

    def _publish(self, health: AccountHealth, revalue_due: bool) -> ActivitySnapshot:
        name = health.name
        now = self._clock()
        reopen = health.prices_open_until is not None and now >= health.prices_open_until
        # A cost basis over part of the history would be wrong, not early: none until the backfill is done
        # (which also spares a recompute of a growing history after every backfill turn).
        if (
            revalue_due
            and self.market is not None
            and health.backfilled()
            and (health.take_changed() or reopen)
        ):
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
        published = {a.name: self.publish(a.name) for a in self.accounts}
        return {name: snapshot for name, snapshot in published.items() if snapshot is not None}


__all__ = ["ActivitySnapshot", "ActivitySync", "plan"]
