"""The ledger's sync bookkeeping (`ledger.sync`): how far each account's endpoints are synced, and state."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from exporter.api.records import Kind
from exporter.ledger.db import LedgerDb

# State keys read and written by more than one part of the exporter.
# Unix ms of the first successful balance poll: where a backfill hands over to the live scrapes.
LIVE_SINCE = "live_since_ms"


def origin_key(account: str) -> str:
    """The state key of where `account`'s history begins (Unix ms): the earliest `since` read from."""
    return f"activity:origin:{account}"


def state_value(db: sqlite3.Connection, key: str) -> str | None:
    """A value of the state table, read on a connection already held (within a read or a write)."""
    row = db.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def put_state(db: sqlite3.Connection, key: str, value: str, *, keep_existing: bool = False) -> None:
    """Set a state value (with keep_existing, only when unset) within a write already open."""
    verb = "INSERT OR IGNORE" if keep_existing else "INSERT OR REPLACE"
    db.execute(f"{verb} INTO state (key, value) VALUES (?, ?)", [key, value])


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far one account's sync of one endpoint has got (times in Unix ms, None when not yet known)."""

    newest_ms: int | None = None
    backfilled_to_ms: int | None = None
    backfill_complete: bool = False


class SyncState:
    """Sync cursors and state values kept in the ledger file."""

    def __init__(self, db: LedgerDb) -> None:
        self._db = db

    def cursor(self, account: str, endpoint: Kind) -> Cursor:
        """Where the sync of one account's endpoint stands (an empty Cursor before the first sync)."""
        with self._db.read() as db:
            row = db.execute(
                "SELECT newest_ms, backfilled_to_ms, backfill_complete FROM cursors"
                " WHERE account = ? AND endpoint = ?",
                [account, endpoint],
            ).fetchone()
        return Cursor() if row is None else Cursor(row[0], row[1], bool(row[2]))

    def set_cursor(self, account: str, endpoint: Kind, cursor: Cursor, rebuilds: int | None = None) -> None:
        """Record how far the sync of one account's endpoint has got; with `rebuilds`, only into the
        file it was read from (a cursor must never claim history a rebuilt file does not hold)."""
        with self._db.write(rebuilds) as db:
            db.execute(
                "INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?, ?)",
                [account, endpoint, cursor.newest_ms, cursor.backfilled_to_ms, int(cursor.backfill_complete)],
            )

    def state(self, key: str) -> str | None:
        """A value from the state table (e.g. `live_since_ms`), None when never set."""
        with self._db.read() as db:
            return state_value(db, key)

    def set_state(self, key: str, value: str, *, keep_existing: bool = False) -> str:
        """Set a state value (or, with keep_existing, only when unset); return the value now stored."""
        with self._db.write() as db:
            put_state(db, key, value, keep_existing=keep_existing)
            return str(state_value(db, key))
