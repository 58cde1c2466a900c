"""Read one endpoint's history over a time range, window by window, without losing a record to a cap.

The transaction endpoints answer at most 30 days a request and an unknown number of items; an answer
`cap` items long may have been cut, so its window is read again in halves until every window answers
less than `cap`. Windows share their boundary millisecond: records there are read twice (the ledger
is idempotent on id), whether the API's endDate is inclusive or not.

The API answers only the window asked, each record once. A full page holding a record dated outside
the window, or one id twice, is not filled by the window's records, so halving would not shorten it (an
upstream padding every page to the cap keeps every window "full" down to one millisecond, ~31 requests,
then advances a millisecond a request). Such a window is not read: its records inside the window are
kept, the turn ends there (`Progress.ignored`), and the caller backs off and asks the window again
later. Stray records in an answer shorter than a page leave room to spare: it is read as usual, and
the strays are told (`on_strays`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from exporter.config.activity_settings import MAX_WINDOW_MS
from exporter.logs import BoundedLog

log = logging.getLogger(__name__)

R = TypeVar("R")

# An API whose cap is below the configured one answers pages of its own cap again and again: an
# answer as long as the longest seen is taken as possibly cut too, once that is at least this long
# (no API pages fewer; below it, windows with equal counts would be split for nothing).
LEARN_FROM = 10


@dataclass
class Progress:
    """What one turn of reading did."""

    requests: int = 0
    stored: int = 0  # records new in the ledger (a stored id never changes)
    reached_ms: int | None = None  # everything up to here has been read
    done: bool = False  # the whole range is read
    truncated: int = 0  # one-millisecond windows that still answered a full page
    ignored: bool = False  # the turn ended at an answer that was not the window's records (see above)
    span_ms: int = MAX_WINDOW_MS  # the window length to start the next turn with
    longest: int = 0  # the longest answer seen, this turn and before
    # While a backfill runs: the range it covers, [begun_ms, goal_ms] (None once it reached the present).
    begun_ms: int | None = None
    goal_ms: int | None = None

    def share(self) -> float:
        """How much of the backfill's range is read, 0..1 (1 when there is no backfill)."""
        if self.begun_ms is None or self.goal_ms is None or self.done or self.goal_ms <= self.begun_ms:
            return 1.0
        reached = self.begun_ms if self.reached_ms is None else self.reached_ms
        return min(1.0, max(0.0, (reached - self.begun_ms) / (self.goal_ms - self.begun_ms)))


def read_range(
    fetch: Callable[[int, int], Sequence[R]],
    store: Callable[[Sequence[R]], int],
    start_ms: int,
    end_ms: int,
    *,
    cap: int,
    span_ms: int = MAX_WINDOW_MS,
    max_requests: int | None = None,
    on_window: Callable[[int], None] | None = None,
    what: str = "",
    size: Callable[[Sequence[R]], int] = len,
    errors: BoundedLog | None = None,
    longest: int = 0,
    when: Callable[[R], int] | None = None,
    ident: Callable[[R], object] | None = None,
    on_strays: Callable[[Sequence[R]], None] | None = None,
) -> Progress:
    """Read [start_ms, end_ms] oldest first; `fetch(a, b)` answers the records in [a, b].

    Stops after `max_requests` (the caller resumes from `reached_ms`); `on_window(end)` is called once
    each window's records are stored, so a cursor can record progress as it is made. `size(records)`
    is how many items the answer had, against the cap (more than `len` when bad items were left out).
    `errors` bounds the rate of the truncation lines (always-full pages would log one per millisecond
    window). `longest` is the longest answer seen before (Progress.longest hands it on): see LEARN_FROM.
    `when(record)` (its time, ms) and `ident(record)` (its id) let a page that is not the window's
    records be told (see the module's docstring); without them every answer is taken as the window's.
    `on_strays(records)` hears of such records in an answer shorter than a page, which is read as usual.
    """
    errors = errors or BoundedLog(log, 0.0)
    progress = Progress(reached_ms=start_ms, span_ms=max(1, min(span_ms, MAX_WINDOW_MS)), longest=longest)
    position = start_ms
    span = progress.span_ms
    while position < end_ms:
        if max_requests is not None and progress.requests >= max_requests:
            break
        stop = min(position + span, end_ms)
        records = fetch(position, stop)
        progress.requests += 1
        served = size(records)
        strays = _strays(records, position, stop, when, ident)
        # Against the page known before this answer: one with strays teaches no cap (LEARN_FROM).
        if strays and served >= _full(cap, progress.longest):
            # A full page that is not this window's records: halving cannot shorten it (the cap is not
            # what fills it). Keep the records that are the window's, and read the window again later.
            progress.ignored = True
            errors.log(
                logging.WARNING,
                "window " + what,
                "%s does not answer the window asked: a full page with %d of %d records dated outside "
                "the window %d-%d ms or repeated; the records in it are kept, and the window is read again "
                "after a backoff (the history is not complete meanwhile)",
                what or "activity",
                len(strays),
                served,
                position,
                stop,
            )
            stray = {id(r) for r in strays}
            progress.stored += store([r for r in records if id(r) not in stray])
            break
        if strays and on_strays is not None:
            on_strays(strays)  # a page with room to spare: every record of the window is in it
        progress.longest = max(progress.longest, served)
        full = _full(cap, progress.longest)
        if served >= full:
            if stop - position > 1:
                span = max(1, (stop - position) // 2)
                continue
            # Nothing left to split: the records are kept, and the loss is said out loud.
            progress.truncated += 1
            errors.log(
                logging.ERROR,
                what,
                "%s: %d records in the window %d-%d ms, a full page (the page cap); some may be missing "
                "(raise activity.page_cap if the API answers more)",
                what or "activity",
                served,
                position,
                stop,
            )
        progress.stored += store(records)
        if on_window is not None:
            on_window(stop)
        position = progress.reached_ms = stop
        if served < full // 2:
            span = min(MAX_WINDOW_MS, span * 2)
    progress.done = position >= end_ms
    progress.span_ms = span
    return progress


def _full(cap: int, longest: int) -> int:
    """How many items make a page that may have been cut: the cap, or a smaller one the API showed."""
    return min(cap, longest) if longest >= LEARN_FROM else cap


def _strays(
    records: Sequence[R],
    start_ms: int,
    end_ms: int,
    when: Callable[[R], int] | None,
    ident: Callable[[R], object] | None,
) -> list[R]:
    """The records of an answer to [start_ms, end_ms] that are not that window's: dated outside it, or
    an id already in the answer."""
    seen: set[object] = set()
    strays = []
    for record in records:
        key = None if ident is None else ident(record)
        if (when is not None and not start_ms <= when(record) <= end_ms) or (key is not None and key in seen):
            strays.append(record)
        if key is not None:
            seen.add(key)
    return strays
