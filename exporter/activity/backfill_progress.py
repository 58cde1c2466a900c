"""How far each endpoint's backfill has read: the progress gauge, and its start, progress and end in the log.

A first sync of a real account takes minutes to hours: it logs its start, at most one progress line per
PROGRESS_EVERY_S (windows read of total, records so far) and its end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from exporter.activity.state import SyncHealth
from exporter.activity.windows import Progress
from exporter.api.records import ENDPOINTS, Kind
from exporter.config.activity_settings import MAX_WINDOW_MS

log = logging.getLogger(__name__)

# A backfill's progress is logged at most this often (its start and end always).
PROGRESS_EVERY_S = 10.0


@dataclass
class _Backfill:
    """A backfill under way, for its progress lines."""

    started: float  # monotonic
    told: float  # monotonic time of the last progress line
    records: int = 0
    requests: int = 0


def _windows(progress: Progress) -> tuple[int, int]:
    """30-day windows of the backfill's range read so far, and in all."""
    begun, goal = progress.begun_ms or 0, progress.goal_ms or 0
    reached = begun if progress.reached_ms is None else progress.reached_ms
    total = max(1, -(-(goal - begun) // MAX_WINDOW_MS))
    return min(total, max(0, (reached - begun) // MAX_WINDOW_MS)), total


class BackfillProgress:
    """Tells each account's health how much history is read, and logs the backfills under way."""

    def __init__(self, health: Mapping[str, SyncHealth], monotonic: Callable[[], float]) -> None:
        self.health = health
        self._monotonic = monotonic
        self._backfills: dict[tuple[str, Kind], _Backfill] = {}

    def tell(self, name: str, kind: Kind, progress: Progress) -> None:
        """Publish how much of the history is read; log a backfill's start, progress and end."""
        self.health[name].progressed(kind, progress.share())
        key, now, path = (name, kind), self._monotonic(), ENDPOINTS[kind]
        state = self._backfills.get(key)
        if state is None:
            if progress.begun_ms is None:
                return
            begun = datetime.fromtimestamp(progress.begun_ms / 1000, timezone.utc).isoformat(
                timespec="seconds"
            )
            log.info(
                "activity of account %s: reading the history of %s from %s (%d windows of 30 days)",
                name, path, begun, _windows(progress)[1],
            )  # fmt: skip
            state = self._backfills[key] = _Backfill(now, now)
        state.records += progress.stored
        state.requests += progress.requests
        if progress.begun_ms is None or progress.done:
            del self._backfills[key]
            log.info(
                "activity of account %s: the history of %s is read: %d records in %d requests, %.0fs",
                name, path, state.records, state.requests, now - state.started,
            )  # fmt: skip
        elif now - state.told >= PROGRESS_EVERY_S:
            state.told = now
            done, total = _windows(progress)
            log.info(
                "activity of account %s: history of %s %d of %d windows read (%.0f%%), %d records so far",
                name, path, done, total, 100 * progress.share(), state.records,
            )  # fmt: skip
