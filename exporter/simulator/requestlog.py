"""Counts of answered requests per path and status, for tests to wait on."""

from __future__ import annotations

import threading
from collections import Counter


class RequestLog:
    """Thread-safe {(path, status): n}; status 0 means the request was hung up on or reset."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, int]] = Counter()
        self._changed = threading.Condition()

    def record(self, path: str, status: int) -> None:
        """Count one answered (or abandoned) request."""
        with self._changed:
            self._counts[(path, status)] += 1
            self._changed.notify_all()

    def count(self, path: str, status: int | None = None) -> int:
        """How many requests hit path (optionally only those answered with status)."""
        with self._changed:
            return self._count_locked(path, status)

    def _count_locked(self, path: str, status: int | None) -> int:
        if status is not None:
            return self._counts[(path, status)]
        return sum(n for (p, _), n in self._counts.items() if p == path)

    def stats(self) -> dict[str, dict[str, int]]:
        """Request counts as {path: {status: n}}."""
        result: dict[str, dict[str, int]] = {}
        with self._changed:
            for (path, status), n in sorted(self._counts.items()):
                result.setdefault(path, {})[str(status)] = n
        return result

    def wait_for(self, path: str, n: int, timeout: float, status: int | None) -> None:
        """Block until count(path, status) >= n, or raise TimeoutError."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._count_locked(path, status) >= n, timeout):
                seen = self._count_locked(path, status)
                raise TimeoutError(f"{path} (status {status}): {seen} requests after {timeout}s, wanted {n}")
