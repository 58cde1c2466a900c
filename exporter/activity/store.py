"""Where the activity sync's snapshots, the ledger's counter totals and the market status meet the metrics.

The sync threads publish here; the metrics layer reads an immutable ActivityView. Counter totals are
counted over the whole ledger, and only once the account's first backfill is complete: a total
climbing during the backfill would look like months of new activity to every rate() and alert.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from exporter.activity.state import ActivitySnapshot
from exporter.api.market import MarketStatus
from exporter.api.records import Kind
from exporter.ledger.counters import Totals

# Counts one account's ledger: family name -> label values after `account` -> total; None when the
# ledger cannot vouch for a total now (being rebuilt): the last totals stay.
CountLedger = Callable[[str], Totals | None]


@dataclass(frozen=True)
class ActivityView:
    """The activity part of the metrics at one generation; never changes once made."""

    generation: int
    enabled: bool
    accounts: tuple[str, ...]
    snapshots: Mapping[str, ActivitySnapshot]
    counters: Mapping[str, Totals]  # only accounts whose first backfill is complete
    market: MarketStatus | None


def _backfilled(snapshot: ActivitySnapshot) -> bool:
    return all(snapshot.backfill_complete.values())


class ActivityStore:
    """Latest ActivitySnapshot per account, the ledger's counter totals, the latest MarketStatus."""

    def __init__(self, accounts: Sequence[str], enabled: bool, count: CountLedger | None = None) -> None:
        self._lock = threading.Lock()
        self._accounts = tuple(accounts)
        self._enabled = enabled
        self._count = count
        self._snapshots: dict[str, ActivitySnapshot] = {}
        self._counters: dict[str, Totals] = {}
        # What the totals were counted for: the record counts and the cost basis object (a recompute).
        self._counted: dict[str, tuple[dict[Kind, int], object]] = {}
        self._market: MarketStatus | None = None
        self._generation = 0
        self._view: ActivityView | None = None

    def publish_snapshot(self, snapshot: ActivitySnapshot) -> None:
        """Swap in an account's snapshot; recount its ledger when its records changed after the backfill."""
        counters = None
        key: tuple[dict[Kind, int], object] = (dict(snapshot.records), snapshot.cost_basis)
        if self._count is not None and _backfilled(snapshot) and self._counted.get(snapshot.account) != key:
            counters = self._count(snapshot.account)  # outside the lock: it reads the ledger
        with self._lock:
            self._snapshots[snapshot.account] = snapshot
            if counters is not None:
                self._counters[snapshot.account] = counters
                self._counted[snapshot.account] = key
            self._generation += 1
            self._view = None

    def publish_market(self, market: MarketStatus) -> None:
        """Swap in the latest exchangeinfo answer."""
        with self._lock:
            self._market = market
            self._generation += 1
            self._view = None

    def view(self) -> ActivityView:
        """The current picture; cheap when nothing changed since the last call."""
        with self._lock:
            if self._view is None:
                self._view = ActivityView(
                    self._generation,
                    self._enabled,
                    self._accounts,
                    MappingProxyType(dict(self._snapshots)),
                    MappingProxyType(dict(self._counters)),
                    self._market,
                )
            return self._view
