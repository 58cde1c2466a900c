"""One turn of one account's transaction endpoint: where to read from, and the cursor as it advances.

The first run backfills from `since`, oldest first, `requests_per_turn` requests at a time; once it has
reached the present, each turn re-reads from a little before the newest record (late arrivals) to now.
The cursor in the ledger records progress window by window, so a restart resumes where it stopped.
`since` moved earlier than where an endpoint's history was read from is read first, from the new since
up to there. Cursors are in the server's time, and one ahead of the server (a clock jump) is pulled back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from exporter.activity.windows import Progress, read_range
from exporter.api.records import ENDPOINTS, Kind, Trade, Transfer
from exporter.api.transactions import Record
from exporter.config.activity_settings import MAX_WINDOW_MS, ActivitySettings, parse_since
from exporter.ledger.cursors import Cursor, origin_key
from exporter.ledger.store import Ledger
from exporter.logs import BoundedLog


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
    errors: BoundedLog | None = None,
    longest: int = 0,
    on_strays: Callable[[Sequence[Record]], None] | None = None,
) -> Progress:
    """Read one turn of `account`'s `kind` records into the ledger; `fetch(a, b)` makes one request.

    `on_changed` hears of each record whose id was stored already with other fields (the first
    version stays); `size` tells how many items an answer had (bad ones left out included); `errors`
    bounds the rate of the lines about truncated pages; `longest` is the longest answer seen;
    `on_strays` hears of records an answer held outside the window asked (activity/windows.py).
    """
    path = ENDPOINTS[kind]
    # The file the cursor is read from: progress is only ever recorded into that one.
    rebuilds = ledger.rebuilds
    cursor = ledger.cursor(account, kind)
    if ledger.rebuilds != rebuilds:  # that read found the file gone or damaged: read the new one
        rebuilds = ledger.rebuilds
        cursor = ledger.cursor(account, kind)
    since_ms = parse_since(settings.since, now_ms)
    reread = ledger.state(_reread_key(account, kind))
    if reread:
        since_ms = min(since_ms, int(reread))
    begun = _begun(ledger, account, kind)
    if cursor.backfilled_to_ms is not None and begun is not None and since_ms < begun:
        older = _Older(since_ms, begun, span_ms, on_changed, size, errors, longest, on_strays)
        return _read_older(settings, ledger, account, kind, fetch, older)
    limit: int | None = None
    if not cursor.backfill_complete:
        start = cursor.backfilled_to_ms
        if start is None:
            start = since_ms
            ledger.set_state(begun_key(account, kind), str(start))
            _extend_origin(ledger, account, start)
        limit = settings.requests_per_turn
    else:
        # The cursors are in the server's time: one ahead of it (its clock jumped forward, then back)
        # is pulled back to the server's now, or nothing after the jump back would be read for a day.
        read_to = min(cursor.backfilled_to_ms if cursor.backfilled_to_ms is not None else now_ms, now_ms)
        latest = min(cursor.newest_ms if cursor.newest_ms is not None else read_to, read_to)
        start = max(latest - int(settings.overlap * 1000), read_to - MAX_WINDOW_MS)
    start = min(start, now_ms)
    newest = cursor.newest_ms

    def store(records: Sequence[Record]) -> int:
        nonlocal newest
        if records:
            stamp = max(r.timestamp_ms for r in records)
            newest = stamp if newest is None else max(newest, stamp)
        return _upsert(ledger, account, kind, records, on_changed)

    def reached(end_ms: int) -> None:
        complete = cursor.backfill_complete or end_ms >= now_ms
        ledger.set_cursor(account, kind, Cursor(newest, end_ms, complete), rebuilds)

    progress = read_range(
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
        errors=errors,
        longest=longest,
        when=_when,
        ident=_ident,
        on_strays=on_strays,
    )
    if not cursor.backfill_complete:
        progress.begun_ms, progress.goal_ms = _begun(ledger, account, kind), now_ms
    return progress


def _when(record: Record) -> int:
    return record.timestamp_ms


def _ident(record: Record) -> int:
    return record.id


def begun_key(account: str, kind: Kind) -> str:
    """The state key of where the history of `account`'s `kind` endpoint has been read from (Unix ms)."""
    return f"activity:begun:{account}:{kind}"


def _reread_key(account: str, kind: Kind) -> str:
    # Unix ms to read the history again from (set by the reconciliation), "" when none is asked for.
    return f"activity:reread:{account}:{kind}"


def request_reread(ledger: Ledger, account: str, kind: Kind, from_ms: int) -> None:
    """Read the endpoint's history from `from_ms` up to where it has been read, again, by the next turns.

    The same path as older history after since moved earlier: resumable, the backfill incomplete
    meanwhile (no cost basis, no reconciliation over a history being re-read).
    """
    cursor = ledger.cursor(account, kind)
    if cursor.backfilled_to_ms is None:
        return
    ledger.set_state(_reread_key(account, kind), str(from_ms))
    ledger.set_state(_older_key(account, kind), "")
    ledger.set_state(begun_key(account, kind), str(cursor.backfilled_to_ms))


def _older_key(account: str, kind: Kind) -> str:
    # "<from_ms>:<reached_ms>": how far a read of older history (since moved earlier) has got.
    return f"activity:older:{account}:{kind}"


def _begun(ledger: Ledger, account: str, kind: Kind) -> int | None:
    # Ledgers written before the key existed began at the account's origin (every endpoint alike).
    text = ledger.state(begun_key(account, kind)) or ledger.state(origin_key(account))
    return None if text is None else int(text)


def _extend_origin(ledger: Ledger, account: str, start_ms: int) -> None:
    # Where the history begins, for reading it back in chunks (the earliest of the endpoints).
    origin = ledger.state(origin_key(account))
    if origin is None or int(origin) > start_ms:
        ledger.set_state(origin_key(account), str(start_ms))


def _upsert(
    ledger: Ledger,
    account: str,
    kind: Kind,
    records: Sequence[Record],
    on_changed: Callable[[Record], None] | None,
) -> int:
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


@dataclass(frozen=True)
class _Older:
    """What a read of older history (since moved earlier) goes by."""

    since_ms: int
    begun_ms: int
    span_ms: int
    on_changed: Callable[[Record], None] | None
    size: Callable[[Sequence[Record]], int]
    errors: BoundedLog | None
    longest: int
    on_strays: Callable[[Sequence[Record]], None] | None


def _read_older(
    settings: ActivitySettings,
    ledger: Ledger,
    account: str,
    kind: Kind,
    fetch: Callable[[int, int], Sequence[Record]],
    older: _Older,
) -> Progress:
    """`since` was moved earlier than where the history was read from: read [since, begun] first.

    The turn is never `done` while older history is missing, so the endpoint's backfill is not
    complete (no cost basis over part of it) and the loop goes on at once, like a first backfill.
    """
    since_ms, begun_ms = older.since_ms, older.begun_ms
    key = _older_key(account, kind)
    start = since_ms
    resume = ledger.state(key)
    if resume:
        first, _, reached = resume.partition(":")
        # A duration `since` moves forward with the clock: an earlier start of the same read still holds.
        if int(first) <= since_ms and int(reached) <= begun_ms:
            since_ms, start = int(first), int(reached)
    origin = since_ms

    def reached_to(end_ms: int) -> None:
        ledger.set_state(key, f"{origin}:{end_ms}")

    progress = read_range(
        fetch,
        lambda records: _upsert(ledger, account, kind, records, older.on_changed),
        start,
        begun_ms,
        cap=settings.page_cap,
        span_ms=older.span_ms,
        max_requests=settings.requests_per_turn,
        on_window=reached_to,
        what=f"{ENDPOINTS[kind]} of account {account}",
        size=older.size,
        errors=older.errors,
        longest=older.longest,
        when=_when,
        ident=_ident,
        on_strays=older.on_strays,
    )
    progress.begun_ms, progress.goal_ms = origin, begun_ms
    if progress.done:
        ledger.set_state(_reread_key(account, kind), "")
        ledger.set_state(begun_key(account, kind), str(origin))
        _extend_origin(ledger, account, origin)
    progress.done = False
    return progress
