"""The transaction endpoints' turns: each endpoint's loop over the accounts, and one account's turn.

One loop per endpoint (trade, crypto, fiat) takes every account in turn, so a 429 on one endpoint holds
only that endpoint, and a long backfill of one account shares the endpoint with the others
(`requests_per_turn` at a time). A turn's outcome goes into the account's SyncHealth.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from exporter.activity.backfill_progress import BackfillProgress
from exporter.activity.context import SyncContext
from exporter.activity.oddities import RecordOddities
from exporter.activity.state import SyncHealth
from exporter.activity.turn import read_turn
from exporter.activity.windows import Progress
from exporter.api import permissions, retries
from exporter.api.account import Account
from exporter.api.errors import ApiError
from exporter.api.records import ENDPOINTS, Kind, Skipped
from exporter.api.transactions import Record
from exporter.config.activity_settings import MAX_WINDOW_MS
from exporter.ledger.schema import LedgerError
from exporter.logs import BoundedLog
from exporter.loops import Loops

log = logging.getLogger(__name__)

# A failure repeating on every turn (a backfill retried with backoff) is logged once per this long.
WARN_EVERY_S = 60.0


class EndpointSync:
    """Reads every account's records, endpoint by endpoint and turn by turn, into the ledger."""

    def __init__(
        self,
        context: SyncContext,
        *,
        on_stored: Callable[[str], None],
        on_clock_offset: Callable[[float], None] | None,
        oddities: RecordOddities,
        on_rebuild: Callable[[], None],
    ) -> None:
        """`on_stored(account)` is told when a turn stored new records."""
        settings = context.settings
        self.settings = settings
        self.accounts = context.accounts
        self.client = context.client
        self.ledger = context.ledger
        self.calls = context.calls
        self.health = context.health
        self.on_stored = on_stored
        # The offset is the shared client's: a re-measure here must reach btcturk_clock_offset_seconds.
        self.on_clock_offset = on_clock_offset
        self.oddities = oddities
        self.watch = context.watch
        self.on_rebuild = on_rebuild
        self._clock = context.clock
        self._monotonic = monotonic = context.monotonic
        self._spans: dict[tuple[str, Kind], int] = {}
        self._done: dict[tuple[str, Kind], bool] = {}
        # Between failed turns of a backfill: from about a second up to the interval (at most a minute).
        self._turn_policy = retries.Policy(0.0, backoff_max=min(settings.interval, 60.0), backoff_base=1.0)
        self._warnings = BoundedLog(log, WARN_EVERY_S)
        self._progress = BackfillProgress(self.health, monotonic)
        self._longest: dict[str, int] = {}  # per endpoint path: the longest answer seen

    def loop(self, kind: Kind, loops: Loops, wake: threading.Event) -> None:
        """Take every account's turn on `kind`'s endpoint, again and again; `wake` the publisher after each
        round. The next round starts at once while a backfill has more to read, after a backoff when a
        backfill's turn failed, else after the interval."""
        failures: dict[str, int] = {}
        while True:
            started = self._monotonic()
            more = False
            retry_in = self.settings.interval
            for account in self.accounts:
                progress = self.sync_endpoint(account, kind)
                more = more or (progress is not None and not progress.done)
                if (
                    progress is None
                    and self.health[account.name].permitted
                    and self._backfilling(account, kind)
                ):
                    # A failed turn of a backfill is tried again soon, not a whole interval later.
                    failures[account.name] = failures.get(account.name, 0) + 1
                    retry_in = min(retry_in, retries.backoff(failures[account.name], self._turn_policy))
                else:
                    failures.pop(account.name, None)
            wake.set()
            if not more:
                loops.sleep(max(0.0, min(started + self.settings.interval - self._monotonic(), retry_in)))

    def _backfilling(self, account: Account, kind: Kind) -> bool:
        # Until a turn has reached the present (a first backfill, older history after since moved).
        return not self._done.get((account.name, kind), False)

    def sync_endpoint(self, account: Account, kind: Kind) -> Progress | None:
        """One turn of one account's endpoint: backfill or re-read the recent window. None: skipped."""
        health = self.health[account.name]
        if not health.due(self._monotonic()):
            return None
        path = ENDPOINTS[kind]
        self.watch.notice_rebuild(self.health, self.on_rebuild)
        try:
            try:
                progress = self._read(account, kind)
            except ApiError as exc:
                if exc.reason != "auth" or not health.permitted:
                    raise
                # Clock drift is the usual cause of a 401: measure again and try once more.
                with contextlib.suppress(ApiError):
                    offset = self.client.rest.sync_clock(self.calls.hook(account.name))
                    if self.on_clock_offset is not None:
                        self.on_clock_offset(offset)
                progress = self._read(account, kind)
        except ApiError as exc:
            health.failed(kind, path, exc.reason)
            every = self.settings.permission_recheck
            _tell_failure(exc, account.name, path, health, self._monotonic() + every, every, self._warnings)
            return None
        except LedgerError as exc:
            health.failed(kind, path, "ledger")
            self.watch.failed(exc)
            return None
        self.watch.ok()
        if progress.truncated:
            for _ in range(progress.truncated):
                health.failed(kind, path, "truncated")
        self._done[(account.name, kind)] = progress.done
        self._progress.tell(account.name, kind, progress)
        if progress.stored:
            self.on_stored(account.name)
        if health.succeeded(kind, self._clock(), progress.done, progress.stored):
            log.info("activity of account %s is readable again", account.name)
        return progress

    def _read(self, account: Account, kind: Kind) -> Progress:
        path = ENDPOINTS[kind]
        hook = self.calls.hook(account.name)
        who = f"activity {account.name}"

        left_out: dict[int, int] = {}  # id(answer) -> its bad items, for the page-cap check

        def fetch(start_ms: int, end_ms: int) -> Sequence[Record]:
            skipped: list[Skipped] = []

            def attempt(left: float) -> Sequence[Record]:
                end = time.monotonic() + left
                return self.client.records(account, kind, start_ms, end_ms, hook, end, skipped)

            records = self.calls.call(path, who, attempt, path)
            for bad in skipped:
                self.oddities.bad(account.name, path, bad)
            left_out.clear()
            left_out[id(records)] = len(skipped)
            return records

        def size(records: Sequence[Record]) -> int:
            return len(records) + left_out.get(id(records), 0)

        def changed(record: Record) -> None:
            self.oddities.changed(account.name, path, record)

        key = (account.name, kind)
        progress = read_turn(
            self.settings, self.ledger, account.name, kind, self.client.rest.now_ms(), fetch,
            self._spans.get(key, MAX_WINDOW_MS), changed, size, self._warnings, self._longest.get(path, 0),
        )  # fmt: skip
        self._spans[key] = progress.span_ms
        # The API's cap is the same for every account: what one account's answers taught holds for all.
        self._longest[path] = max(self._longest.get(path, 0), progress.longest)
        return progress


def _tell_failure(
    exc: ApiError,
    account: str,
    path: str,
    health: SyncHealth,
    recheck: float,
    every_s: float,
    warnings: BoundedLog,
) -> None:
    """One line for a failed turn: a 401 turns the account's activity off until `recheck` (said once)."""
    if exc.reason != "auth":
        warnings.log(logging.WARNING, f"{account} {path}", "activity sync of account %s: %s", account, exc)
    elif health.refuse(recheck):
        log.warning(
            "activity of account %s is off: %s answers 401 (the key lacks the %s permission, or is bound "
            "to another IP); balances are unaffected; trying again every %gs",
            account,
            path,
            permissions.BY_PATH.get(path, permissions.ACCOUNT),
            every_s,
        )
