"""The ledger file's one connection, behind a lock: reads, and write transactions that say what failed.

The ledger is a copy of what the exchange keeps, so a file that cannot be trusted is never repaired or
worked around: it is moved aside (kept, renamed `ledger.db.damaged-<UTC time>`) with one log line
naming it, and a new one is made that the sync fills again from the API. That happens at open (a bad
header, damaged pages, a newer schema), when SQLite reports damage while running, when `check()`
finds damaged pages, and when the file was deleted or replaced under the running process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from exporter.ledger.schema import (
    LedgerError,
    LedgerUnreadable,
    check_pages,
    connect,
    damaged,
    disk_full,
    read_copy,
    reason,
)

log = logging.getLogger(__name__)

COMPANIONS = ("", "-wal", "-shm")


def decimal_text(amount: Decimal) -> str:
    """An amount as the ledger stores it: a plain decimal string, never a float."""
    return format(amount, "f")


def move_aside(path: Path) -> Path:
    """Rename the ledger file and its WAL companions to `<name>.damaged-<UTC time>`; the new name."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in COMPANIONS:
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    return aside


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _damage_on_disk(path: Path, busy_timeout_s: float) -> str | None:
    """What is wrong with the file's pages on disk; None when they are sound or no verdict was had."""
    # Not the shared connection: its page cache would answer from memory what is wrong on disk.
    uri = path.resolve().as_uri()
    try:
        probe = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=busy_timeout_s)
        try:
            return check_pages(probe)
        finally:
            probe.close()
    except sqlite3.Error as exc:
        if not damaged(exc):
            return None  # busy, gone (the next write notices): not a verdict on the pages
        return reason(exc)


class LedgerDb:
    """One open ledger file; safe to share between threads (one connection behind a lock).

    `read_only` makes an in-memory copy of the file instead (schema.read_copy): the file is never
    written, migrated, moved or rebuilt, and a file it cannot read raises LedgerError.
    """

    def __init__(self, path: Path, busy_timeout_s: float = 5.0, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        # How many times the file has been rebuilt since this process opened it.
        self.rebuilds = 0
        self._db: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._closed = False
        if read_only:
            self._db = read_copy(path)
        else:
            self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            db = connect(self.path, self._busy_timeout_s)
        except LedgerUnreadable as exc:
            aside = move_aside(self.path)
            log.error("%s; moved aside to %s, rebuilding the ledger from the API", exc, aside.name)
            db = connect(self.path, self._busy_timeout_s)
        self._db, self._identity = db, _identity(self.path)
        return db

    def _connection(self) -> sqlite3.Connection:
        """The open connection; reopened when the file was deleted or replaced, or a rebuild failed."""
        if self._closed:
            # Never reopened: a thread still at work after close() must not make a new file.
            raise LedgerError(f"ledger {self.path}: closed")
        if self.read_only:
            assert self._db is not None
            return self._db
        if self._db is not None and _identity(self.path) == self._identity:
            return self._db
        if self._db is not None:
            # Writes would go on into a deleted inode (or another file's place) and be lost at exit.
            log.error(
                "ledger %s was deleted or replaced while running; rebuilding it from the API", self.path
            )
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
            self.rebuilds += 1
        return self._open()

    def _rebuild(self, why: str) -> LedgerError:
        """Move a damaged file aside and start a new one; the error to raise for the failed operation."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        aside = move_aside(self.path)
        self.rebuilds += 1
        log.error(
            "ledger %s is damaged (%s); moved aside to %s, rebuilding it from the API",
            self.path,
            why,
            aside.name,
        )
        with contextlib.suppress(LedgerError):
            self._open()  # failing now (a full disk), the next operation tries again
        return LedgerError(f"ledger {self.path}: damaged ({why}); rebuilt")

    def close(self) -> None:
        """Close the file; one found damaged at the end is moved aside, so no start meets it."""
        with self._lock:
            self._closed = True
            if self._db is None:
                return
            if not self.read_only and _identity(self.path) == self._identity:
                try:
                    check = check_pages(self._db)
                except sqlite3.Error as exc:
                    check = reason(exc)
                if check is not None:
                    self._db.close()
                    self._db = None
                    aside = move_aside(self.path)
                    log.error("ledger %s is damaged (%s); moved aside to %s", self.path, check, aside.name)
                    return
            self._db.close()
            self._db = None

    def check(self) -> bool:
        """Read every page from disk on a connection of its own; a damaged file is rebuilt (False)."""
        if self.read_only:
            return True
        found = _damage_on_disk(self.path, self._busy_timeout_s)
        if found is None:
            return True
        with self._lock:
            if self._closed:
                return False
            self._rebuild(found)
        return False

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, held for the reads inside the block."""
        with self._lock:
            try:
                yield self._connection()
            except sqlite3.Error as exc:
                if self.read_only or not damaged(exc):
                    raise LedgerError(f"ledger {self.path}: cannot read: {reason(exc)}") from None
                raise self._rebuild(reason(exc)) from None

    @contextmanager
    def write(self, rebuilds: int | None = None) -> Iterator[sqlite3.Connection]:
        """One immediate write transaction: committed at the end of the block, rolled back on error.

        With `rebuilds`, only into the file that count of rebuilds opened (LedgerError otherwise).
        """
        with self._lock:
            db = self._connection()
            if rebuilds is not None and rebuilds != self.rebuilds:
                raise LedgerError(f"ledger {self.path}: rebuilt since this write was planned")
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                # SQLite may have rolled back already (a full disk does): a second ROLLBACK would raise
                # "no transaction is active" and hide the reason.
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise self._failed(exc) from None
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _failed(self, exc: sqlite3.Error) -> LedgerError:
        if disk_full(exc):
            return LedgerError(f"disk full at {self.path}")
        if damaged(exc) and not self.read_only:
            return self._rebuild(reason(exc))
        return LedgerError(f"ledger {self.path}: cannot write: {reason(exc)}")
