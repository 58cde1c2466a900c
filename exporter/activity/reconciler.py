"""The ledger checked against the balances as the sync runs: which poll is compared, and what follows.

The comparison itself is reconcile.py's; here, the polls kept per account (the latest is usually newer
than the last read), the two polls that must agree, one warning for a mismatch, and one re-read of the
account's history until it matches again; and the openings (ledger/openings.py), what the walk-back
says was held at `since`, kept in the ledger once two polls in a row agree on them (keep_openings, the
one rule that stores them, which `btcturk-exporter backfill` applies to its one walk too).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal

from exporter.activity.reconcile import State, Walk, confirmed, opening_quantities, state_of, walk_back
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
        self._shown: dict[str, dict[str, State]] = {}  # per account: the last states with the openings
        self._proposed: dict[str, dict[str, Decimal]] = {}  # per account: the last check's openings
        self._rereading: set[str] = set()  # accounts whose history this check asked to be read again

    def check(self, name: str) -> bool:
        """Compare the ledger with the latest balance poll it has been read past (reconcile()); True
        when that changed the account's openings (its cost basis is then due again)."""
        rebuilds = self.ledger.rebuilds
        walks = self.reconcile(name)
        if walks is None:
            return False
        if name in self._rereading:
            # No openings from a history about to be read again: two walks after it must agree first.
            self._rereading.discard(name)
            self._proposed.pop(name, None)
            changed = False
        else:
            changed = self._settle_openings(name, walks, rebuilds)
        held = {o.currency: o.quantity for o in self.ledger.openings(name) if o.currency is not None}
        shown = {asset: state_of(w, held.get(asset, Decimal(0))) for asset, w in walks.items()}
        self.health[name].reconciled(confirmed(self._shown.get(name), shown))
        self._shown[name] = shown
        return changed

    def _settle_openings(self, name: str, walks: Mapping[str, Walk], rebuilds: int) -> bool:
        """Keep the openings two walk-backs in a row agree on, over a history read whole since `since`."""
        proposed = opening_quantities(walks)
        agreed = self._proposed.get(name) == proposed
        self._proposed[name] = proposed
        return agreed and keep_openings(self.ledger, name, proposed, rebuilds)

    def reconcile(self, name: str) -> dict[str, Walk] | None:
        """Walk the ledger's records back from the latest balance poll it has been read past; a
        difference two polls agree on is warned about once (a mismatch) and the history read again.
        None when no new poll is ready."""
        latest = self.balances(name) if self.balances is not None else None
        if latest is None:
            return None
        # The latest poll is usually newer than the last read of the endpoints: the polls seen at the
        # last few wakes (an endpoint round apart) are kept, and the newest the ledger is read past used.
        polls = self._polls.setdefault(name, deque(maxlen=4))
        if not polls or polls[-1].taken_at != latest.taken_at:
            polls.append(latest)
        offset_ms = self.client.rest.now_ms() - round(self._clock() * 1000)  # to the server's time
        read = [self.ledger.cursor(name, kind).backfilled_to_ms for kind in KINDS]
        if any(r is None for r in read):
            return None
        read_to = min(r for r in read if r is not None)
        ready = [p for p in polls if round(p.taken_at * 1000) + offset_ms <= read_to]
        if not ready or self._checked.get(name) == ready[-1].taken_at:
            return None  # records up to the poll may still be unread, or this poll is compared already
        snapshot = ready[-1]
        at_ms = round(snapshot.taken_at * 1000) + offset_ms
        self._checked[name] = snapshot.taken_at
        # The API's records alone: the openings are what this walk says, never part of it.
        walks = walk_back(self.ledger.trades(name), self.ledger.transfers(name), snapshot.balances, at_ms)
        current = {asset: state_of(w) for asset, w in walks.items()}
        agreed = confirmed(self._last.get(name), current)
        self._last[name] = current
        off = sorted(asset for asset, state in agreed.items() if state != "match")
        if not off:
            if agreed and all(s == "match" for s in current.values()):
                self._reread.discard(name)
            return walks
        if name in self._reread:
            return walks
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
                "activity.since (its opening positions); reading its history again once",
                name, ", ".join(off),
            )  # fmt: skip
        if origin is not None:
            for kind in KINDS:
                request_reread(self.ledger, name, kind, int(origin))
        self._rereading.add(name)
        return walks


def keep_openings(ledger: Ledger, name: str, quantities: Mapping[str, Decimal], rebuilds: int) -> bool:
    """Make `quantities`, what walks back say was held before the first record (opening_quantities),
    the account's openings, stamped at its history's start; True when that changed them, said in one
    info line.

    Only over a history read whole since `since` (every endpoint's backfill complete) and into the file
    `rebuilds` counts, the one the walked records were read from. Which walks may be kept is the
    caller's: the reconciler's two polls in a row, or the backfill command's one walk.
    """
    origin = ledger.state(origin_key(name))
    if origin is None or ledger.rebuilds != rebuilds:
        return False
    # Never from a backfill half done (nor from a file rebuilt since the records were read).
    if not all(ledger.cursor(name, kind).backfill_complete for kind in KINDS):
        return False
    changed = ledger.set_openings(name, int(origin), quantities, rebuilds)
    if changed:
        shown = ", ".join(f"{format(q, 'f')} {a}" for a, q in sorted(quantities.items())) or "none"
        log.info("account %s: opening positions at its history's start (activity.since): %s", name, shown)
    return changed
