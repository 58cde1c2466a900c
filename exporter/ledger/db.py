"""The ledger file's one connection, behind a lock: reads, and write transactions that say what failed."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from exporter.ledger.schema import LedgerError, connect, reason


def decimal_text(amount: Decimal) -> str:
    """An amount as the ledger stores it: a plain decimal string, never a float."""
    return format(amount, "f")


class LedgerDb:
    """One open ledger file; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: Path, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = connect(path, busy_timeout_s)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, held for the reads inside the block."""
        with self._lock:
            yield self._db

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One immediate write transaction: committed at the end of the block, rolled back on error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self.path}: cannot write: {reason(exc)}") from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise LedgerError(f"ledger {self.path}: cannot write: {reason(exc)}") from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
