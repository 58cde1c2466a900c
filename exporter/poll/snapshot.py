"""Immutable snapshots of what the poller learned, and the store that swaps them in atomically."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from exporter.api.parsing import Balance, Ticker

log = logging.getLogger(__name__)

# The account label used for the calls that no single account owns (ticker, server time).
SHARED = ""


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """One successful poll of one account: the balances worth exporting, and when they were taken.

    taken_at is wall-clock time, for the _timestamp_seconds metrics; taken_mono is the monotonic
    clock at the same moment, for ages: a wall clock stepped by NTP must not age data in or out.
    """

    account: str
    balances: tuple[Balance, ...]
    taken_at: float
    taken_mono: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class PriceSnapshot:
    """One successful ticker poll; taken_at and taken_mono as in AccountSnapshot."""

    tickers: tuple[Ticker, ...]
    taken_at: float
    taken_mono: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class AccountHealth:
    """How the last poll of an account went."""

    up: bool = False
    last_success: float | None = None
    poll_duration: float | None = None


@dataclass(frozen=True)
class View:
    """A consistent, read-only picture of the store at one generation."""

    generation: int
    accounts: tuple[str, ...]
    snapshots: Mapping[str, AccountSnapshot]
    health: Mapping[str, AccountHealth]
    prices: PriceSnapshot | None
    requests: Mapping[tuple[str, str, str], int]
    failures: Mapping[tuple[str, str], int]
    clock_offset: float | None = None
    # (endpoint, kind) -> answers or rows the client worked around (e.g. a ticker pair listed twice).
    oddities: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def ready(self) -> bool:
        """True once every configured account has had one successful poll."""
        return all(self.health[name].last_success is not None for name in self.accounts)


class Store:
    """The single place the poller writes to and the metrics layer reads from.

    Writers replace whole immutable objects under a lock and bump the generation; readers get a
    View that is built once per generation, so a scrape never sees half an update. Listeners given
    to on_publish run after every new balance or ticker snapshot, on the publishing thread.
    """

    def __init__(
        self,
        accounts: Sequence[str],
        failure_reasons: Sequence[str] = (),
        other_failures: Sequence[tuple[str, str]] = (),
        oddities: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._lock = threading.Lock()
        self._accounts = tuple(accounts)
        self._snapshots: dict[str, AccountSnapshot] = {}
        self._health = {name: AccountHealth() for name in self._accounts}
        self._prices: PriceSnapshot | None = None
        self._requests: dict[tuple[str, str, str], int] = {}
        # Known label sets start at 0 so that rate() and increase() see the first failure.
        self._failures = {(name, reason): 0 for name in self._accounts for reason in failure_reasons}
        self._failures.update((key, 0) for key in other_failures)
        self._oddities = dict.fromkeys(oddities, 0)
        self._clock_offset: float | None = None
        self._generation = 0
        self._view: View | None = None
        self._listeners: list[Callable[[], None]] = []

    def _changed(self) -> None:
        self._generation += 1
        self._view = None

    def on_publish(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each publish_balances and publish_prices, on the caller's thread."""
        self._listeners.append(listener)

    def _published(self) -> None:
        # Outside the lock: a listener may take a while (rendering) and will read view() itself.
        for listener in self._listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not make the poll that published fail
                log.exception("publish listener failed")

    def publish_balances(self, snapshot: AccountSnapshot, duration: float) -> None:
        """Swap in a successful poll of one account."""
        with self._lock:
            self._snapshots[snapshot.account] = snapshot
            self._health[snapshot.account] = AccountHealth(True, snapshot.taken_at, duration)
            self._changed()
        self._published()

    def publish_failure(self, account: str, reason: str, duration: float) -> None:
        """Record a failed poll; the last good snapshot stays for the metrics layer to age out."""
        with self._lock:
            old = self._health[account]
            self._health[account] = replace(old, up=False, poll_duration=duration)
            self._failures[account, reason] = self._failures.get((account, reason), 0) + 1
            self._changed()

    def publish_prices(self, snapshot: PriceSnapshot) -> None:
        """Swap in a successful ticker poll."""
        with self._lock:
            self._prices = snapshot
            self._changed()
        self._published()

    def count_failure(self, account: str, reason: str) -> None:
        """Count a failure that does not change any account's health (the shared ticker)."""
        with self._lock:
            self._failures[account, reason] = self._failures.get((account, reason), 0) + 1
            self._changed()

    def count_request(self, account: str, endpoint: str, code: str) -> None:
        """Count one HTTP exchange with the API."""
        key = (account, endpoint, code)
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1
            self._changed()

    def count_oddity(self, endpoint: str, kind: str) -> None:
        """Count one oddity the client worked around in an answer from `endpoint`."""
        with self._lock:
            self._oddities[endpoint, kind] = self._oddities.get((endpoint, kind), 0) + 1
            self._changed()

    def set_clock_offset(self, offset: float) -> None:
        """Record the measured server-minus-local clock offset."""
        with self._lock:
            self._clock_offset = offset
            self._changed()

    def view(self) -> View:
        """The current consistent picture; cheap when nothing changed since the last call."""
        with self._lock:
            if self._view is None:
                self._view = View(
                    generation=self._generation,
                    accounts=self._accounts,
                    snapshots=MappingProxyType(dict(self._snapshots)),
                    health=MappingProxyType(dict(self._health)),
                    prices=self._prices,
                    requests=MappingProxyType(dict(self._requests)),
                    failures=MappingProxyType(dict(self._failures)),
                    clock_offset=self._clock_offset,
                    oddities=MappingProxyType(dict(self._oddities)),
                )
            return self._view
