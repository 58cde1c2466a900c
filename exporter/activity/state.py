"""Per-account health of the activity sync, and the immutable snapshot the metrics layer reads."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from exporter.activity.reconcile import State
from exporter.api.records import KINDS, Kind, Transfer
from exporter.ledger.costbasis import CostBasis
from exporter.ledger.replay import ReplayState

_EMPTY: Mapping[str, CostBasis] = MappingProxyType({})


@dataclass(frozen=True)
class ActivitySnapshot:
    """One account's activity after a sync pass, for the metrics layer; never changes once made."""

    account: str
    up: bool  # permitted, and the last read of every endpoint succeeded
    permitted: bool  # False while the key is refused (401) on the transaction endpoints
    last_sync_s: float | None  # Unix time the last read of every endpoint succeeded by
    failures: Mapping[tuple[str, str], int]  # (endpoint path, reason) -> count since start
    records: Mapping[Kind, int]  # ledger records per kind: trade, crypto, fiat
    backfill_complete: Mapping[Kind, bool]
    cost_basis: Mapping[str, CostBasis] = field(default_factory=lambda: _EMPTY)  # per valuation currency
    last_trade_ms: int | None = None
    # Per kind, how much of the history is read (0..1), once a turn has said; 1 after the backfill.
    backfill_progress: Mapping[Kind, float] = field(default_factory=lambda: MappingProxyType({}))
    # Per asset, the ledger against the balances (activity/reconcile.py), once two checks agreed.
    reconciled: Mapping[str, State] = field(default_factory=lambda: MappingProxyType({}))
    # unit value (issue 17): per valuation currency, the units outstanding; None when unknown.
    units: Mapping[str, Decimal | None] = field(default_factory=lambda: MappingProxyType({}))
    # True while a price the figures need is missing: cost_basis and units are the last complete ones.
    stale: bool = False


@dataclass(frozen=True)
class Kept:
    """An account's replay kept between passes, and what it was made for."""

    state: ReplayState
    method: str  # the cost-basis method
    currencies: tuple[str, ...]
    pairs: frozenset[tuple[str, str]]
    rebuilds: int
    openings: tuple[Transfer, ...]  # the account's opening positions it replayed
    assets: set[str]  # every asset the history has touched (the unit value's price needs)
    failed: bool  # a price fetch failed during it: the next pass fetches (and replays) it all again


class SyncHealth:
    """What the sync threads know about one account; every method is thread-safe."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self.permitted = True
        self.recheck_at = 0.0  # monotonic time a refused key is tried again
        self._failures: Counter[tuple[str, str]] = Counter()
        self._ok: dict[Kind, bool] = {}
        self._synced: dict[Kind, float] = {}
        self._complete: dict[Kind, bool] = {}
        self._share: dict[Kind, float] = {}
        self._reconciled: dict[str, State] = {}
        self.changed = True  # records or prices changed since the cost basis was computed
        self.prices_open_until: float | None = None  # a still-open candle closes at this Unix time
        self.cost_basis: Mapping[str, CostBasis] = _EMPTY
        self.last_trade_ms: int | None = None
        self.shortfalls_logged: set[str] = set()  # assets whose shortfall had its one warning
        self.units: Mapping[str, Decimal | None] = MappingProxyType({})  # per currency, for the unit value
        self.stale = False  # the last replay lacked a price: cost_basis and units are from an earlier one
        self.replay: Kept | None = None  # the replay behind cost_basis and units (activity/revalue.py)

    def due(self, now: float) -> bool:
        """Whether the account's endpoints should be read now (permitted, or its recheck is due)."""
        with self._lock:
            return self.permitted or now >= self.recheck_at

    def refuse(self, recheck_at: float) -> bool:
        """Mark the key refused until `recheck_at`; True the first time (the caller logs one warning)."""
        with self._lock:
            first = self.permitted
            self.permitted = False
            self.recheck_at = recheck_at
            return first

    def succeeded(self, kind: Kind, now_s: float, complete: bool, stored: int) -> bool:
        """Record a good read; True when the key had been refused before (permission restored)."""
        with self._lock:
            restored = not self.permitted
            self.permitted = True
            self._ok[kind] = True
            self._synced[kind] = now_s
            self._complete[kind] = complete
            if stored:
                self.changed = True
            return restored

    def progressed(self, kind: Kind, share: float) -> None:
        """Record how much of `kind`'s history is read (0..1)."""
        with self._lock:
            self._share[kind] = share

    def reconciled(self, states: Mapping[str, State]) -> None:
        """Record the assets' reconciliation states (assets not in `states` keep theirs)."""
        with self._lock:
            self._reconciled.update(states)

    def backfilled(self) -> bool:
        """Whether every endpoint's history has been read up to the present at least once."""
        with self._lock:
            return all(self._complete.get(kind, False) for kind in KINDS)

    def restart(self) -> None:
        """The ledger was rebuilt: no endpoint counts as backfilled until it is read again."""
        with self._lock:
            self._complete.clear()
            self.changed = True

    def take_changed(self) -> bool:
        """Whether records or prices changed since the last call (which clears it)."""
        with self._lock:
            changed, self.changed = self.changed, False
            return changed

    def failed(self, kind: Kind | None, endpoint: str, reason: str) -> None:
        """Count a failure of one endpoint (kind None: a shared read such as prices)."""
        with self._lock:
            self._failures[(endpoint, reason)] += 1
            if kind is not None:
                self._ok[kind] = False

    def snapshot(self, records: Mapping[Kind, int]) -> ActivitySnapshot:
        """The account as it stands, frozen."""
        with self._lock:
            ok = self.permitted and all(self._ok.get(kind, False) for kind in KINDS)
            synced = [self._synced.get(kind) for kind in KINDS]
            last = min(s for s in synced if s is not None) if all(s is not None for s in synced) else None
            return ActivitySnapshot(
                account=self.name,
                up=ok,
                permitted=self.permitted,
                last_sync_s=last,
                failures=MappingProxyType(dict(self._failures)),
                records=MappingProxyType({kind: records.get(kind, 0) for kind in KINDS}),
                backfill_complete=MappingProxyType({k: self._complete.get(k, False) for k in KINDS}),
                cost_basis=self.cost_basis,
                last_trade_ms=self.last_trade_ms,
                backfill_progress=MappingProxyType(dict(self._share)),
                reconciled=MappingProxyType(dict(self._reconciled)),
                units=self.units,
                stale=self.stale,
            )
