"""One turn of one account's transaction endpoint: where to read from, and the cursor as it advances.

The first run backfills from `since`, oldest first, `requests_per_turn` requests at a time; once it has
reached the present, each turn re-reads from a little before the newest record (late arrivals) to now.
The cursor in the ledger records progress window by window, so a restart resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from exporter.activity.windows import Progress, read_range
from exporter.api.records import ENDPOINTS, Kind, Trade, Transfer
from exporter.api.transactions import Record
from exporter.config.activity_settings import MAX_WINDOW_MS, ActivitySettings, parse_since
from exporter.ledger.cursors import Cursor, origin_key
from exporter.ledger.store import Ledger


def read_turn(
    settings: ActivitySettings,
    ledger: Ledger,
    account: str,
    kind: Kind,
    now_ms: int,
    fetch: Callable[[int, int], Sequence[Record]],
    span_ms: int = MAX_WINDOW_MS,
    on_changed: Callable[[Record], None] | None = None,
    size: Callable[[Sequence[Record]], int] = len,
) -> Progress:
    """Read one turn of `account`'s `kind` records into the ledger; `fetch(a, b)` makes one request.

    `on_changed` hears of each record whose id was stored already with other fields (the first
    version stays); `size` tells how many items an answer had (bad ones left out included).
    """
    path = ENDPOINTS[kind]
    # The file the cursor is read from: progress is only ever recorded into that one.
    rebuilds = ledger.rebuilds
    cursor = ledger.cursor(account, kind)
    if ledger.rebuilds != rebuilds:  # that read found the file gone or damaged: read the new one
        rebuilds = ledger.rebuilds
        cursor = ledger.cursor(account, kind)
    limit: int | None = None
    if not cursor.backfill_complete:
        start = cursor.backfilled_to_ms
        if start is None:
            start = parse_since(settings.since, now_ms)
            # Where the history begins, for reading it back in chunks (the earliest of the endpoints).
            origin = ledger.state(origin_key(account))
            if origin is None or int(origin) > start:
                ledger.set_state(origin_key(account), str(start))
        limit = settings.requests_per_turn
    else:
        read_to = cursor.backfilled_to_ms if cursor.backfilled_to_ms is not None else now_ms
        latest = cursor.newest_ms if cursor.newest_ms is not None else read_to
        start = max(min(latest, read_to) - int(settings.overlap * 1000), read_to - MAX_WINDOW_MS)
    start = min(start, now_ms)
    newest = cursor.newest_ms

    def store(records: Sequence[Record]) -> int:
        nonlocal newest
        if records:
            stamp = max(r.timestamp_ms for r in records)
            newest = stamp if newest is None else max(newest, stamp)
        trades: list[Trade] = []
        transfers: list[Transfer] = []
        if kind == "trade":
            stored = ledger.upsert_trades(account, [r for r in records if isinstance(r, Trade)], trades)
        else:
            batch = [r for r in records if isinstance(r, Transfer)]
            stored = ledger.upsert_transfers(account, batch, transfers)
        if on_changed is not None:
            changed: list[Record] = [*trades, *transfers]
            for record in changed:
                on_changed(record)
        return stored

    def reached(end_ms: int) -> None:
        complete = cursor.backfill_complete or end_ms >= now_ms
        ledger.set_cursor(account, kind, Cursor(newest, end_ms, complete), rebuilds)

    return read_range(
        fetch,
        store,
        start,
        now_ms,
        cap=settings.page_cap,
        span_ms=span_ms,
        max_requests=limit,
        on_window=reached,
        what=f"{path} of account {account}",
        size=size,
    )
