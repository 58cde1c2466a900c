"""Per-endpoint, per-client-IP request budgets, as the live API enforces them.

A window starts with the first request to the endpoint ("the period starts from the first request"),
not at the clock minute; going over the limit blocks the IP for a whole window from that moment.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class _Budget:
    started: float
    used: int
    blocked_until: float = -math.inf


class RateLimiter:
    """Windows of `window` seconds per (client IP, path); paths without a limit are never refused."""

    def __init__(self, limits: Mapping[str, int], window: float) -> None:
        self.limits = dict(limits)
        self.window = window
        self._lock = threading.Lock()
        self._budgets: dict[tuple[str, str], _Budget] = {}

    def consume(self, client: str, path: str, now: float) -> float | None:
        """Count one request; return the Retry-After seconds when it is refused."""
        limit = self.limits.get(path)
        if limit is None:
            return None
        with self._lock:
            budget = self._budgets.get((client, path))
            if budget is not None and now < budget.blocked_until:
                return max(1, math.ceil(budget.blocked_until - now))
            if budget is None or now >= budget.started + self.window or budget.blocked_until > -math.inf:
                budget = self._budgets[(client, path)] = _Budget(now, 0)
            budget.used += 1
            if budget.used <= limit:
                return None
            budget.blocked_until = now + self.window
            return max(1, math.ceil(self.window))
