"""Client-side rate limiting: one gate per API budget, shared by every account of the process.

A gate holds two things: the sliding log of calls made in the last 60 s (so this process alone can
never exceed the endpoint's per-IP limit, however many retries a burst of 5xx sets off), and the pause
a 429's Retry-After asks for (which holds only that endpoint, never the others).

A small sliding log rather than `pyrate-limiter` or `limits`: callers must wait for a token bounded by
their own deadline and be woken at once by the poller's stop, and the Retry-After pause must be checked
under the same lock as the token. `limits` has no blocking acquire at all; pyrate-limiter's blocking
acquire sleeps on its own, so a stop could not wake it, and it knows nothing of pauses.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable

from exporter.api.budget import BUDGETS, BY_PATH, WINDOW, Budget

# The API's rate-limit window is 60 s, so a longer Retry-After is a misbehaving proxy, not advice.
MAX_RETRY_AFTER = 60.0
# A 429 without Retry-After still pauses its endpoint for this long.
DEFAULT_RATE_LIMIT_PAUSE = 5.0

# A call counts against this process's budget for this much longer than the API's window: the API
# counts a call when it arrives and starts its window at its first arrival, so with uneven network
# delays a log of send times kept for exactly 60 s could let 121 calls arrive within one of its windows.
ARRIVAL_SLACK = 2.0
HELD = WINDOW + ARRIVAL_SLACK

# Waits for `seconds`; raises to abandon the wait (the poller's stop).
Sleep = Callable[[float], None]


class Gate:
    """One budget's client-side limiter and Retry-After pause; thread-safe."""

    def __init__(self, budget: Budget, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: collections.deque[float] = collections.deque()
        self._paused_until = 0.0

    @property
    def name(self) -> str:
        """The budget's name, as logs and --check-config show it."""
        return self.budget.name

    def pause(self, seconds: float) -> None:
        """Hold every caller of this endpoint for `seconds` from now (extending, never shortening)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def paused(self) -> float:
        """Seconds left in the current pause, 0 when open."""
        with self._lock:
            return max(0.0, self._paused_until - self._clock())

    def _try(self) -> tuple[float, bool]:
        """Take a token if one is free now; else return how long to wait and whether a pause is why."""
        with self._lock:
            now = self._clock()
            if self._paused_until > now:
                return self._paused_until - now, True
            while self._calls and self._calls[0] <= now - HELD:
                self._calls.popleft()
            if len(self._calls) < self.budget.limit:
                self._calls.append(now)
                return 0.0, False
            return self._calls[0] + HELD - now, False

    def acquire(self, latest: float, sleep: Sleep) -> str | None:
        """Wait for a token until clock time `latest` at most; None once taken, else why it was not.

        The answer names the cause ("paused" or "limited") so the caller can tell a 429 pause from
        its own budget running dry.
        """
        while True:
            wait, paused = self._try()
            if not wait:
                return None
            left = latest - self._clock()
            if left <= 0:
                return "paused" if paused else "limited"
            sleep(min(wait, left))

    def used(self) -> int:
        """Calls still counted against the budget (made in the last window and its arrival slack)."""
        with self._lock:
            now = self._clock()
            return sum(1 for stamp in self._calls if stamp > now - HELD)


class Gates:
    """Every budget's gate, looked up by request path or budget name."""

    def __init__(
        self, budgets: Iterable[Budget] = BUDGETS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._by_name = {budget.name: Gate(budget, clock) for budget in budgets}

    def __getitem__(self, name: str) -> Gate:
        return self._by_name[name]

    def for_path(self, path: str) -> Gate:
        """The gate of the budget a request path draws on."""
        return self._by_name[BY_PATH[path].name]


def capped_pause(retry_after: float | None) -> float:
    """How long to pause for a Retry-After (absent: a short default; over the API's window: capped)."""
    if retry_after is None:
        return DEFAULT_RATE_LIMIT_PAUSE
    return min(retry_after, MAX_RETRY_AFTER)
