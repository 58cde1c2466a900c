"""Harmless variations the live API shows, served by default so that clients cannot come to rely on one form.

Seeded, so a test run is repeatable; a test that needs one exact form can narrow them.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

# Success `code` values seen on the live API (btcturk-api-notes.md).
SUCCESS_CODES: tuple[int | str, ...] = (0, "0", "SUCCESS", "")


@dataclass
class Quirks:
    """Which success code, whether balances carry `timestamp`, and how old ticker rows are."""

    seed: int = 0
    success_codes: tuple[int | str, ...] = SUCCESS_CODES
    # Share of balance answers without `timestamp` (older deployments do not send it).
    timestamp_absent: float = 0.25
    # Ticker rows are rebuilt about once a second: each row is this old (ms) when served.
    ticker_age_ms: tuple[int, int] = (250, 1650)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"quirks-{self.seed}")

    def success_code(self) -> int | str:
        """The `code` of this success envelope."""
        with self._lock:
            return self._rng.choice(self.success_codes)

    def balance_timestamp(self, now_ms: int) -> int | None:
        """The balance rows' `timestamp`, or None when this answer goes without."""
        with self._lock:
            return None if self._rng.random() < self.timestamp_absent else now_ms

    def ticker_stamps(self, now_ms: int, rows: int) -> list[int]:
        """One `timestamp` per ticker row, each a second or so old."""
        low, high = self.ticker_age_ms
        with self._lock:
            return [now_ms - self._rng.randint(low, high) for _ in range(rows)]

    def exact(self) -> None:
        """Always code 0, always a balance timestamp, fresh ticker rows: for tests that compare exactly."""
        self.success_codes = (0,)
        self.timestamp_absent = 0.0
        self.ticker_age_ms = (0, 0)
