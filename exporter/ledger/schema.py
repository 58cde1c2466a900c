"""The ledger file's schema, its migrations, and opening it: WAL mode, migrated, provably writable."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path


class LedgerError(Exception):
    """The ledger file cannot be opened, written or understood; the message names the path."""


class LedgerUnreadable(LedgerError):
    """The file is there but is no ledger this release can read (damaged pages, a bad header, a newer
    schema): moving it aside and rebuilding from the API is safe, trying again is not."""


# SQLite's primary result codes (sqlite3.h; the module has them, its type stubs do not): a file whose
# contents are wrong (CORRUPT, NOTADB), not merely unreachable, and a full disk.
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 11, 13, 26
_DAMAGED = frozenset({_SQLITE_CORRUPT, _SQLITE_NOTADB})


def damaged(exc: sqlite3.Error) -> bool:
    """Whether an SQLite error says the file's contents are damaged (not a lock, a full disk, a path)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _DAMAGED


def disk_full(exc: sqlite3.Error) -> bool:
    """Whether an SQLite error is a full disk (or a file size limit reached)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == _SQLITE_FULL


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


def _v3(db: sqlite3.Connection) -> None:
    # Version 3: a transfer is keyed by (account, id), not by endpoint: the same deposit answered by
    # both /crypto and /fiat is one record, counted once. Of a pair already stored twice, the crypto
    # row is kept (the first in key order); the ids are the exchange's own, one sequence for both.
    _script(
        db,
        """
        CREATE TABLE transfers_v3 (
            account TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, timestamp_ms INTEGER NOT NULL,
            balance_type TEXT NOT NULL, currency TEXT, amount TEXT NOT NULL,
            fee TEXT, tax TEXT, funds TEXT,
            PRIMARY KEY (account, id)
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO transfers_v3 SELECT * FROM transfers ORDER BY account, id, kind;
        DROP TABLE transfers;
        ALTER TABLE transfers_v3 RENAME TO transfers;
        CREATE INDEX transfers_by_time ON transfers (account, timestamp_ms);
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


def _v4(db: sqlite3.Connection) -> None:
    # Version 4: opening positions, what each account held at its history's start (ledger/openings.py).
    # Derived, never an API record: one row per account and asset, all replaced at once.
    _script(
        db,
        """
        CREATE TABLE openings (
            account TEXT NOT NULL, asset TEXT NOT NULL, timestamp_ms INTEGER NOT NULL, amount TEXT NOT NULL,
            PRIMARY KEY (account, asset)
        ) WITHOUT ROWID;
        """,
    )


# MIGRATIONS[n] takes a file from version n to n + 1. Append only: a released step never changes.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3, _v4)
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
        # A valid header says nothing of the pages behind it: a damaged one would fail every write
        # that touches it, for as long as the file is kept. Checked once here, before anything trusts it.
        check = check_pages(db)
        if check is not None:
            raise LedgerUnreadable(f"ledger {path}: damaged pages ({check})")
    except sqlite3.Error as exc:
        db.close()
        if damaged(exc):
            raise LedgerUnreadable(f"ledger {path}: not a readable ledger ({reason(exc)})") from None
        raise LedgerError(f"ledger {path}: cannot open: {reason(exc)}") from None
    except LedgerError:
        db.close()
        raise
    return db


def read_copy(path: Path) -> sqlite3.Connection:
    """An in-memory copy of the ledger at `path`, migrated there: readers never write or migrate the file.

    With a `-wal` beside it a writer may be at work: the file is read through it, read-only. Without
    one no writer has it open (a WAL-mode writer keeps its -wal while open), and the file is read as
    immutable, so nothing is created beside it and a read-only directory is no obstacle.
    """
    uri = path.resolve().as_uri()
    live = path.with_name(path.name + "-wal").exists()
    try:
        memory = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        mode = "mode=ro" if live else "mode=ro&immutable=1"
        _copy(sqlite3.connect(f"{uri}?{mode}", uri=True), memory, path)
        _migrate(memory, path)
        check = check_pages(memory)
    except sqlite3.Error as exc:
        if damaged(exc):
            raise LedgerUnreadable(f"ledger {path}: not a readable ledger ({reason(exc)})") from None
        raise LedgerError(f"ledger {path}: cannot read: {reason(exc)}") from None
    if check is not None:
        raise LedgerUnreadable(f"ledger {path}: damaged pages ({check})")
    return memory


def _copy(source: sqlite3.Connection, memory: sqlite3.Connection, path: Path) -> None:
    try:
        current = int(source.execute("PRAGMA user_version").fetchone()[0])
        if current > VERSION:
            raise LedgerUnreadable(
                f"ledger {path}: schema version {current} is newer than this exporter's {VERSION}"
                " (written by a newer release; upgrade to read it)"
            )
        if current == 0:
            # The exporter sets a version with the tables it makes: an empty file, or another
            # program's database, read as a ledger would say that nothing was ever held.
            raise LedgerError(f"ledger {path}: not a ledger (no schema version: the exporter never wrote it)")
        source.backup(memory)
    finally:
        source.close()


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    # BEGIN IMMEDIATE takes the write lock first: two processes opening a new file cannot both
    # run the same migration, and a file we cannot write fails here, at open, not at the first sync.
    db.execute("BEGIN IMMEDIATE")
    try:
        current = int(db.execute("PRAGMA user_version").fetchone()[0])
        if current > VERSION:
            raise LedgerUnreadable(
                f"ledger {path}: schema version {current} is newer than this exporter's {VERSION}"
                " (written by a newer release)"
            )
        for step in range(current, VERSION):
            MIGRATIONS[step](db)
            db.execute(f"PRAGMA user_version = {step + 1}")
        # Touch the file under the write lock even when nothing migrated, to prove it is writable.
        db.execute("INSERT OR IGNORE INTO state (key, value) VALUES ('created_version', ?)", [VERSION])
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def check_pages(db: sqlite3.Connection) -> str | None:
    """SQLite's quick_check of every page of an open file: None when sound, else its first complaint."""
    first = db.execute("PRAGMA quick_check(1)").fetchone()
    # One line: SQLite's complaint spans several (`*** in database main ***` and a line per page).
    found = " ".join(str(first[0]).split()) if first is not None else "no answer"
    return None if found == "ok" else found[:120]


def reason(exc: BaseException) -> str:
    """The first line of an error, short enough for a one-line message."""
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]
