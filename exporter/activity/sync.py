"""The account-activity sync: its own threads read each account's transactions into the ledger.

One loop per transaction endpoint (activity/endpoints.py) reads the records; a fourth
(activity/publisher.py) polls exchangeinfo, fetches the price history the records need, recomputes
cost basis when something changed, and publishes snapshots. None of this touches the balances gate or
the Poller: balances are never delayed by activity.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence

from exporter.activity.calls import Calls, RequestCounter
from exporter.activity.context import SyncContext
from exporter.activity.endpoints import EndpointSync
from exporter.activity.ledger_watch import LedgerWatch
from exporter.activity.oddities import RecordOddities
from exporter.activity.publisher import Publisher
from exporter.activity.state import ActivitySnapshot, SyncHealth
from exporter.activity.windows import Progress
from exporter.api import budget
from exporter.api.account import Account
from exporter.api.client import OddityHook
from exporter.api.market import MarketStatus
from exporter.api.ratelimit import Gates
from exporter.api.records import KINDS, Kind
from exporter.api.transactions import ActivityClient
from exporter.config.activity_settings import ActivitySettings
from exporter.ledger.store import Ledger
from exporter.loops import Loops, run_guarded
from exporter.poll.snapshot import AccountSnapshot
from exporter.pricing.history import PriceHistory


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
        budgets: Sequence[budget.Budget] = budget.BUDGETS,
        balances: Callable[[str], AccountSnapshot | None] | None = None,
    ) -> None:
        """`gates` are the process's shared gates (the Poller's); `budgets` those of the planned share;
        `balances(account)` the latest balance poll, which the ledger is reconciled with."""
        self.settings = settings
        self.accounts = tuple(accounts)
        self.client = client
        self.ledger = ledger
        self.gates = gates
        # Shared by both sides; a reload may hand a carried-over account's health in.
        self.health = {a.name: SyncHealth(a.name) for a in self.accounts}
        self._loops = Loops()
        self._wake = threading.Event()  # set by the endpoint loops when the publisher has work
        calls = Calls(
            settings, gates, self._loops,
            attempt_time=client.rest.total_timeout, on_request=on_request, monotonic=monotonic,
            budgets=budgets,
        )  # fmt: skip
        watch = LedgerWatch(ledger, lambda: self._loops.stopping)
        context = SyncContext(
            settings, self.accounts, client, ledger, calls, self.health, watch, clock, monotonic
        )
        self.publisher = Publisher(context, on_snapshot=on_snapshot, on_market=on_market, balances=balances)
        self.endpoints = EndpointSync(
            context,
            on_stored=self.publisher.forget_counts,
            on_clock_offset=on_clock_offset,
            oddities=RecordOddities(on_oddity),
            on_rebuild=self.publisher.forget_all_counts,
        )

    @property
    def prices(self) -> PriceHistory:
        """The price history the cost basis is valued with."""
        return self.publisher.prices

    @property
    def market(self) -> MarketStatus | None:
        """The last market status read, None before the first."""
        return self.publisher.market

    def start(self) -> None:
        """Start the endpoint loops and the publisher; nothing at all when activity is disabled."""
        if not self.settings.enabled or not self.accounts:
            return
        loops, wake = self._loops, self._wake
        for kind in KINDS:
            self._start(f"activity {kind}", functools.partial(self.endpoints.loop, kind, loops, wake))
        self._start("activity publish", functools.partial(self.publisher.loop, loops, wake))

    def _start(self, name: str, job: Callable[[], None]) -> None:
        def pause(errors: int) -> float:
            return min(self.settings.interval, 5.0 * 2.0**errors)

        # A bug must not end the sync for good: the loop starts over, slower each time.
        self._loops.start(name, functools.partial(run_guarded, self._loops, job, "the activity sync", pause))

    def stop(self, timeout: float = 1.0) -> None:
        """Stop every thread, waiting briefly (a thread stuck in a request is a daemon)."""
        self._loops.stop(timeout, wake=(self._wake,))

    def sync_endpoint(self, account: Account, kind: Kind) -> Progress | None:
        """One turn of one account's endpoint (EndpointSync.sync_endpoint)."""
        return self.endpoints.sync_endpoint(account, kind)

    def refresh_market(self) -> MarketStatus | None:
        """Poll exchangeinfo once (Publisher.refresh_market)."""
        return self.publisher.refresh_market()

    def publish(self, name: str) -> ActivitySnapshot | None:
        """Revalue the account if needed and publish its snapshot (Publisher.publish)."""
        return self.publisher.publish(name)

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
