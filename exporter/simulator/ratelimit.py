"""Per-endpoint, per-client-IP request budgets in fixed windows."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping


class RateLimiter:
    """Fixed windows of `window` seconds per (client IP, path); paths without a limit are never refused."""

    def __init__(self, limits: Mapping[str, int], window: float) -> None:
        self.limits = dict(limits)
        self.window = window
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], tuple[int, int]] = {}

    def consume(self, client: str, path: str, now: float) -> float | None:
        """Count one request; return the Retry-After seconds when it is over the limit."""
        limit = self.limits.get(path)
        if limit is None:
            return None
        window = math.floor(now / self.window)
        with self._lock:
            seen_window, seen = self._seen.get((client, path), (window, 0))
            # Requests refused with 429 still count, so a blocked IP stays blocked until the window ends.
            seen = seen + 1 if seen_window == window else 1
            self._seen[(client, path)] = (window, seen)
        if seen <= limit:
            return None
        return max(1, math.ceil((window + 1) * self.window - now))
