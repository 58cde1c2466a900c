"""The activity sync's view of its ledger file: one line per outage, and what a rebuild resets.

A write that fails (a full disk, a file gone) marks activity down and is said once until the ledger is
writable again; when the ledger was moved aside and rebuilt, no account counts as backfilled until it
is read again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from exporter.activity.state import SyncHealth
from exporter.ledger.schema import LedgerError
from exporter.ledger.store import Ledger

log = logging.getLogger(__name__)


class LedgerWatch:
    """Shared by the endpoint loops and the publisher."""

    def __init__(self, ledger: Ledger, stopping: Callable[[], bool]) -> None:
        self.ledger = ledger
        self._stopping = stopping
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._rebuilds = ledger.rebuilds

    def failed(self, exc: LedgerError) -> None:
        """A read or write failed: say so once per outage (not at shutdown, when the ledger is closed)."""
        if self._stopping():
            return
        with self._lock:
            first = self._problem != str(exc)
            self._problem = str(exc)
        if first:
            log.error("activity sync cannot write the ledger: %s; activity is down until it can", exc)

    def ok(self) -> None:
        """A write went through: say that an outage, if any, is over."""
        with self._lock:
            was, self._problem = self._problem, None
        if was is not None:
            log.info("the ledger %s is writable again; activity sync resumed", self.ledger.path)

    def notice_rebuild(self, health: Mapping[str, SyncHealth], on_rebuild: Callable[[], None]) -> None:
        """After the ledger was rebuilt, restart every account's health and call `on_rebuild`."""
        with self._lock:
            rebuilds, self._rebuilds = self._rebuilds, self.ledger.rebuilds
        if rebuilds != self._rebuilds:
            for each in health.values():
                each.restart()
            on_rebuild()
