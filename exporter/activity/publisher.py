"""The activity sync's publishing side: market status, the price history, the revaluation and snapshots.

Its loop polls exchangeinfo every `market_interval` and, whenever an endpoint loop wakes it, publishes
every account's snapshot, recomputing the cost basis first when the records or prices changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from exporter.activity.context import SyncContext
from exporter.activity.price_fetch import PriceFetch
from exporter.activity.reconciler import Reconciler
from exporter.activity.revalue import revalue
from exporter.activity.state import ActivitySnapshot, SyncHealth
from exporter.api.errors import ApiError
from exporter.api.market import EXCHANGE_INFO, MarketStatus
from exporter.api.records import KINDS, Kind
from exporter.ledger.schema import LedgerError
from exporter.loops import Loops
from exporter.poll.snapshot import AccountSnapshot
from exporter.pricing.history import PriceHistory

log = logging.getLogger(__name__)

# How often every page of the ledger file is read back from disk (a damaged one is rebuilt).
LEDGER_CHECK_INTERVAL = 30.0


class Publisher:
    """Keeps the market status and each account's cost basis current, and publishes snapshots."""

    def __init__(
        self,
        context: SyncContext,
        *,
        on_snapshot: Callable[[ActivitySnapshot], None],
        on_market: Callable[[MarketStatus], None] | None,
        balances: Callable[[str], AccountSnapshot | None] | None = None,
    ) -> None:
        """`balances(account)` is the latest balance poll, for the reconciliation."""
        settings, client, ledger = context.settings, context.client, context.ledger
        self.settings = settings
        self.accounts = context.accounts
        self.client = client
        self.ledger = ledger
        self.calls = context.calls
        self.health = context.health
        self.on_snapshot = on_snapshot
        self.on_market = on_market
        self._clock = context.clock
        self._monotonic = context.monotonic
        self.watch = context.watch
        self.fetch = PriceFetch(settings, client, context.calls, context.monotonic)
        self.prices = PriceHistory(ledger, self.fetch.candles)
        self.market: MarketStatus | None = None
        self._counts: dict[str, dict[Kind, int]] = {}
        self.reconciler = Reconciler(ledger, client, context.health, balances, context.clock)

    def loop(self, loops: Loops, wake: threading.Event) -> None:
        """Poll the market on its interval and publish every account each time `wake` is set."""
        next_market = next_check = self._monotonic()
        while True:
            if self._monotonic() >= next_market:
                self.refresh_market()
                next_market = self._monotonic() + self.settings.market_interval
            if self._monotonic() >= next_check:
                self.ledger.check()
                next_check = self._monotonic() + LEDGER_CHECK_INTERVAL
            wake.clear()
            # Every account's counts and health first: fetching the prices a cost basis needs may take
            # minutes of graph-api budget, and must never hold back what is already known.
            for account in self.accounts:
                self.publish(account.name, revalue_due=False)
            for account in self.accounts:
                self.publish(account.name)
            loops.check()
            wake_at = min(next_market, self.fetch.retry_at or next_market)  # the prices' next try too
            wake.wait(max(0.0, wake_at - self._monotonic()))
            loops.check()

    def refresh_market(self) -> MarketStatus | None:
        """Poll exchangeinfo once; publish it and use its pairs for price routes."""

        def attempt(left: float) -> MarketStatus:
            return self.client.market(self._clock(), self.calls.hook(""), time.monotonic() + left)

        try:
            market = self.calls.call(EXCHANGE_INFO, "market status", attempt, None)
        except ApiError as exc:
            log.warning("market status poll failed: %s", exc)
            return None
        self.market = market
        changed = self.prices.set_pairs(market.pairs.values())
        commission = self._remember_commission()
        if changed or commission:
            for health in self.health.values():
                health.changed = True
                if commission:  # a trade's fee moves another asset now: no kept replay holds
                    health.replay = None
        if self.on_market is not None:
            self.on_market(market)
        return market

    def _remember_commission(self) -> bool:
        """Keep the market's commission flags in the ledger, for replays offline; whether they changed."""
        if self.market is None:
            return False
        try:
            return self.ledger.remember_commission(self.market.commission_from_numerator)
        except LedgerError as exc:
            self.watch.failed(exc)
            return False

    def forget_counts(self, name: str) -> None:
        """The account's records changed: count them again before its next snapshot."""
        self._counts.pop(name, None)

    def forget_all_counts(self) -> None:
        """The ledger was rebuilt: count every account's records again, and state the flags it lost."""
        self._counts.clear()
        self._remember_commission()

    def publish(self, name: str, *, revalue_due: bool = True) -> ActivitySnapshot | None:
        """Recompute the account's cost basis if its records or prices changed (unless `revalue_due` is
        False), and publish a snapshot; None when the ledger could not be read."""
        health = self.health[name]
        self.watch.notice_rebuild(self.health, self.forget_all_counts)
        try:
            return self._publish(health, revalue_due)
        except LedgerError as exc:  # the endpoint threads' writes mark the account down
            self.watch.failed(exc)
            return None

    def _publish(self, health: SyncHealth, revalue_due: bool) -> ActivitySnapshot:
        name = health.name
        now = self._clock()
        reopen = health.prices_open_until is not None and now >= health.prices_open_until
        # A cost basis over part of the history would be wrong, not early: none until the backfill is done
        # (which also spares a recompute of a growing history after every backfill turn).
        # While the price history is unavailable, the cost basis waits for its next try.
        # Reconciled first: new openings (what was held at since) make the cost basis due at once.
        if health.backfilled() and self.reconciler.check(name):
            health.changed = True
        # The change is taken only by a pass that can revalue: one before the market or the first
        # complete read would use it up, and a restart with nothing new to read would never revalue.
        ready = self.market is not None and health.backfilled() and not self.fetch.waiting()
        if revalue_due and ready and (health.take_changed() or reopen):
            revalue(self.ledger, self.prices, health, self.settings, now, self.client.rest.now_ms())
            self._counts.pop(name, None)
        if name not in self._counts:
            # Counting 100,000 rows costs milliseconds: only after the records changed.
            counts = self.ledger.counts()
            self._counts[name] = {kind: counts.get((name, kind), 0) for kind in KINDS}
        snapshot = health.snapshot(self._counts[name])
        self.on_snapshot(snapshot)
        return snapshot
