"""The ledger checked against the balances as the sync runs: which poll is compared, and what follows.

The comparison itself is reconcile.py's; here, the polls kept per account (the latest is usually newer
than the last read), the two polls that must agree, one warning for a mismatch, and one re-read of the
account's history until it matches again.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping

from exporter.activity.reconcile import State, compare, confirmed
from exporter.activity.state import SyncHealth
from exporter.activity.turn import request_reread
from exporter.api.records import KINDS
from exporter.api.transactions import ActivityClient
from exporter.ledger.cursors import origin_key
from exporter.ledger.store import Ledger
from exporter.poll.snapshot import AccountSnapshot

log = logging.getLogger(__name__)


class Reconciler:
    """Compares each account's ledger with its balance polls, as the publisher publishes."""

    def __init__(
        self,
        ledger: Ledger,
        client: ActivityClient,
        health: Mapping[str, SyncHealth],
        balances: Callable[[str], AccountSnapshot | None] | None,
        clock: Callable[[], float],
    ) -> None:
        """`balances(account)` is the latest balance poll; None (or no callable) skips the check."""
        self.ledger = ledger
        self.client = client
        self.health = health
        self.balances = balances
        self._clock = clock
        self._polls: dict[str, deque[AccountSnapshot]] = {}
        self._checked: dict[str, float] = {}  # per account: taken_at of the balance poll last compared
        self._last: dict[str, dict[str, State]] = {}  # per account: the last comparison's states
        self._reread: set[str] = set()  # accounts re-read for the difference they show (once each)

    def check(self, name: str) -> None:
        """Compare the ledger with the latest balance poll it has been read past; a difference two
        polls agree on is published, warned about once (a mismatch) and the history read again."""
        latest = self.balances(name) if self.balances is not None else None
        if latest is None:
            return
        # The latest poll is usually newer than the last read of the endpoints: the polls seen at the
        # last few wakes (an endpoint round apart) are kept, and the newest the ledger is read past used.
        polls = self._polls.setdefault(name, deque(maxlen=4))
        if not polls or polls[-1].taken_at != latest.taken_at:
            polls.append(latest)
        offset_ms = self.client.rest.now_ms() - round(self._clock() * 1000)  # to the server's time
        read = [self.ledger.cursor(name, kind).backfilled_to_ms for kind in KINDS]
        if any(r is None for r in read):
            return
        read_to = min(r for r in read if r is not None)
        ready = [p for p in polls if round(p.taken_at * 1000) + offset_ms <= read_to]
        if not ready or self._checked.get(name) == ready[-1].taken_at:
            return  # records up to the poll may still be unread, or this poll is compared already
        snapshot = ready[-1]
        at_ms = round(snapshot.taken_at * 1000) + offset_ms
        self._checked[name] = snapshot.taken_at
        current = compare(self.ledger.trades(name), self.ledger.transfers(name), snapshot.balances, at_ms)
        agreed = confirmed(self._last.get(name), current)
        self._last[name] = current
        health = self.health[name]
        health.reconciled(agreed)
        off = sorted(asset for asset, state in agreed.items() if state != "match")
        if not off:
            if agreed and all(s == "match" for s in current.values()):
                self._reread.discard(name)
            return
        if name in self._reread:
            return
        self._reread.add(name)
        origin = self.ledger.state(origin_key(name))
        wrong = [asset for asset in off if agreed[asset] == "mismatch"]
        if wrong:
            log.warning(
                "the ledger of account %s does not add up to its balances (%s): reading its history again",
                name, ", ".join(wrong),
            )  # fmt: skip
        else:
            log.info(
                "the ledger of account %s holds less than its balances (%s), possibly held since before "
                "activity.since; reading its history again once",
                name, ", ".join(off),
            )  # fmt: skip
        if origin is not None:
            for kind in KINDS:
                request_reread(self.ledger, name, kind, int(origin))
