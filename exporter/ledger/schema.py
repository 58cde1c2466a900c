"""The ledger file's schema, its migrations, and opening it: WAL mode, migrated, provably writable."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path


class LedgerError(Exception):
    """The ledger file cannot be opened, written or understood; the message names the path."""


def _script(db: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it commits first, and a migration must be one transaction with its version.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE trades (
            account TEXT NOT NULL, id TEXT NOT NULL, order_id TEXT, timestamp_ms INTEGER NOT NULL,
            base TEXT NOT NULL, quote TEXT NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL,
            amount TEXT NOT NULL, fee TEXT NOT NULL, tax TEXT NOT NULL,
            PRIMARY KEY (account, id)
        ) WITHOUT ROWID;
        CREATE TABLE transfers (
            account TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, timestamp_ms INTEGER NOT NULL,
            balance_type TEXT NOT NULL, currency TEXT, amount TEXT NOT NULL,
            fee TEXT, tax TEXT, funds TEXT,
            PRIMARY KEY (account, kind, id)
        ) WITHOUT ROWID;
        CREATE TABLE cursors (
            account TEXT NOT NULL, endpoint TEXT NOT NULL, newest_ms INTEGER, backfilled_to_ms INTEGER,
            backfill_complete INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (account, endpoint)
        ) WITHOUT ROWID;
        CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        """,
    )


def _v2(db: sqlite3.Connection) -> None:
    # Version 2: past closes for valuing history, and indexes for reads over a time window.
    _script(
        db,
        """
        CREATE TABLE prices (
            pair TEXT NOT NULL, resolution TEXT NOT NULL, time_s INTEGER NOT NULL, close TEXT NOT NULL,
            PRIMARY KEY (pair, resolution, time_s)
        ) WITHOUT ROWID;
        CREATE INDEX trades_by_time ON trades (account, timestamp_ms);
        CREATE INDEX transfers_by_time ON transfers (account, timestamp_ms);
        """,
    )


# MIGRATIONS[n] takes a file from version n to n + 1. Append only: a released step never changes.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2)
VERSION = len(MIGRATIONS)


def connect(path: Path, busy_timeout_s: float = 5.0) -> sqlite3.Connection:
    """Open (creating when needed) and migrate the ledger at `path`; LedgerError names it on failure."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise LedgerError(f"ledger {path}: cannot open: {reason(exc)}") from None
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LedgerError(f"ledger {path}: cannot use WAL mode (got {mode!r})")
        db.execute("PRAGMA synchronous = NORMAL")
        _migrate(db, path)
    except sqlite3.Error as exc:
        db.close()
        raise LedgerError(f"ledger {path}: cannot open: {reason(exc)}") from None
    except LedgerError:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    # BEGIN IMMEDIATE takes the write lock first: two processes opening a new file cannot both
    # run the same migration, and a file we cannot write fails here, at open, not at the first sync.
    db.execute("BEGIN IMMEDIATE")
    try:
        current = int(db.execute("PRAGMA user_version").fetchone()[0])
        if current > VERSION:
            raise LedgerError(
                f"ledger {path}: schema version {current} is newer than this exporter's {VERSION}"
                " (written by a newer release; upgrade, or delete the file to rebuild it)"
            )
        for step in range(current, VERSION):
            MIGRATIONS[step](db)
            db.execute(f"PRAGMA user_version = {step + 1}")
        # Touch the file under the write lock even when nothing migrated, to prove it is writable.
        db.execute("INSERT OR IGNORE INTO state (key, value) VALUES ('created_version', ?)", [VERSION])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def reason(exc: BaseException) -> str:
    """The first line of an error, short enough for a one-line message."""
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]
