"""The ledger: an embedded SQLite file holding each account's trades and transfers, exactly.

One file, `ledger.db` inside the storage directory (`--storage.path`, default `data/`), in WAL mode.
Amounts are stored as decimal strings and ids as text, so nothing passes through a float. Accounts are
stored by their configured name only: the file holds no keys or other secrets.

The ledger is a copy of what the exchange already keeps. Deleting it (with its `-wal` and `-shm`
companions) is always safe: the history is read again from `activity.since`, at the next start or at
once by a running exporter, which notices (db.LedgerDb); so is a damaged file, which is moved aside.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from exporter.api.records import Kind, Trade, Transfer
from exporter.ledger.cursors import Cursor, SyncState
from exporter.ledger.db import LedgerDb, decimal_text
from exporter.ledger.prices import PriceCache
from exporter.ledger.schema import MIGRATIONS, VERSION, LedgerError

__all__ = [
    "MIGRATIONS",
    "VERSION",
    "Cursor",
    "Ledger",
    "LedgerError",
    "PriceCache",
    "SyncState",
    "ledger_path",
]

DEFAULT_STORAGE_DIR = "data"
FILENAME = "ledger.db"

_INSERT_TRADE = "INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_TRANSFER = "INSERT INTO transfers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_TRADE_COLUMNS = "id, order_id, timestamp_ms, base, quote, side, price, amount, fee, tax"
_TRANSFER_COLUMNS = "kind, id, timestamp_ms, balance_type, currency, amount, fee, tax, funds"
# Ids looked up per statement when checking what is stored already (far under SQLite's variable limit).
_LOOKUP = 500


def ledger_path(storage_dir: str | Path = DEFAULT_STORAGE_DIR) -> Path:
    """Where the ledger lives inside a storage directory."""
    return Path(storage_dir) / FILENAME


def _optional(amount: Decimal | None) -> str | None:
    return None if amount is None else decimal_text(amount)


def _trade_row(account: str, t: Trade) -> tuple[object, ...]:
    return (
        account,
        str(t.id),
        None if t.order_id is None else str(t.order_id),
        t.timestamp_ms,
        t.base,
        t.quote,
        t.side,
        decimal_text(t.price),
        decimal_text(t.amount),
        decimal_text(t.fee),
        decimal_text(t.tax),
    )


def _transfer_row(account: str, t: Transfer) -> tuple[object, ...]:
    return (
        account,
        t.kind,
        str(t.id),
        t.timestamp_ms,
        t.balance_type,
        t.currency,
        decimal_text(t.amount),
        _optional(t.fee),
        _optional(t.tax),
        _optional(t.funds),
    )


def _trade(r: Sequence[Any], symbols: dict[str, str]) -> Trade:
    return Trade(
        int(r[0]),
        None if r[1] is None else int(r[1]),
        r[2],
        symbols.setdefault(r[3], r[3]),
        symbols.setdefault(r[4], r[4]),
        "buy" if r[5] == "buy" else "sell",
        Decimal(r[6]),
        Decimal(r[7]),
        Decimal(r[8]),
        Decimal(r[9]),
    )


def _transfer(r: Sequence[Any]) -> Transfer:
    return Transfer(
        kind=r[0],
        id=int(r[1]),
        timestamp_ms=r[2],
        balance_type=r[3],
        currency=r[4],
        amount=Decimal(r[5]),
        fee=None if r[6] is None else Decimal(r[6]),
        tax=None if r[7] is None else Decimal(r[7]),
        funds=None if r[8] is None else Decimal(r[8]),
    )


def _stored(
    db: sqlite3.Connection, table: str, columns: str, account: str, ids: list[str]
) -> list[Sequence[Any]]:
    rows: list[Sequence[Any]] = []
    for at in range(0, len(ids), _LOOKUP):
        chunk = ids[at : at + _LOOKUP]
        marks = ", ".join("?" * len(chunk))
        rows += db.execute(
            f"SELECT {columns} FROM {table} WHERE account = ? AND id IN ({marks})", [account, *chunk]
        ).fetchall()
    return rows


class Ledger:
    """One open ledger file; safe to share between threads (one connection behind a lock).

    A record's id is immutable: the first version stored is kept, and one served again with other
    fields is left out (and reported, so the caller can count it); a transfer is one record by its id,
    whichever endpoint answered it. So no total counted over the ledger can go down.
    """

    def __init__(self, path: str | Path, busy_timeout_s: float = 5.0, *, read_only: bool = False) -> None:
        """Open (creating and migrating when needed) the file; `read_only`: an in-memory copy of it."""
        self.path = Path(path)
        self._db = LedgerDb(self.path, busy_timeout_s, read_only=read_only)
        self.prices = PriceCache(self._db)
        self.sync = SyncState(self._db)

    @classmethod
    def open(cls, storage_dir: str | Path = DEFAULT_STORAGE_DIR) -> Ledger:
        """Open (creating when needed) `ledger.db` in `storage_dir`."""
        return cls(ledger_path(storage_dir))

    @classmethod
    def read_only(cls, path: str | Path) -> Ledger:
        """Read a ledger file without writing or migrating it (writes go to an in-memory copy)."""
        return cls(path, read_only=True)

    def close(self) -> None:
        """Close the file; the ledger is unusable afterwards."""
        self._db.close()

    def check(self) -> bool:
        """Check every page on disk; a damaged file is moved aside and rebuilt (False)."""
        return self._db.check()

    @property
    def rebuilds(self) -> int:
        """How many times the file was rebuilt (damaged, deleted or replaced) since it was opened."""
        return self._db.rebuilds

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        """The schema version of the open file."""
        with self._db.read() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    # --- records -----------------------------------------------------------------------------------

    def upsert_trades(self, account: str, trades: Iterable[Trade], changed: list[Trade] | None = None) -> int:
        """Store new trades by (account, id); return how many were new. Repeating is harmless.

        A stored id keeps its first version; one here with other fields is appended to `changed`.
        """
        batch = list(trades)
        with self._db.write() as db:
            symbols: dict[str, str] = {}
            rows = _stored(db, "trades", _TRADE_COLUMNS, account, sorted({str(t.id) for t in batch}))
            known = {t.id: t for t in (_trade(r, symbols) for r in rows)}
            new = []
            for t in batch:
                first = known.setdefault(t.id, t)
                if first is t:
                    new.append(_trade_row(account, t))
                elif first != t and changed is not None:
                    changed.append(t)
            db.executemany(_INSERT_TRADE, new)
            return len(new)

    def upsert_transfers(
        self, account: str, transfers: Iterable[Transfer], changed: list[Transfer] | None = None
    ) -> int:
        """Store new transfers by (account, id), whichever endpoint (kind) answered; how many were new.

        A stored id keeps its first version; one here with other fields (the kind aside: the same
        deposit from /crypto and /fiat is one record) is appended to `changed`.
        """
        batch = list(transfers)
        with self._db.write() as db:
            rows = _stored(db, "transfers", _TRANSFER_COLUMNS, account, sorted({str(t.id) for t in batch}))
            known = {t.id: t for t in map(_transfer, rows)}
            new = []
            for t in batch:
                first = known.setdefault(t.id, t)
                if first is t:
                    new.append(_transfer_row(account, t))
                elif replace(first, kind=t.kind) != t and changed is not None:
                    changed.append(t)
            db.executemany(_INSERT_TRANSFER, new)
            return len(new)

    def trades(self, account: str, since_ms: int | None = None, until_ms: int | None = None) -> list[Trade]:
        """One account's trades, oldest first (ties in id order), optionally within [since, until)."""
        where, args = _window(account, since_ms, until_ms)
        with self._db.read() as db:
            # Sorted here, not in SQL: reading the table in key order and sorting in Python is faster
            # than following the time index row by row, and ids are text here, so SQL's order of
            # them is not numeric order.
            rows = db.execute(f"SELECT {_TRADE_COLUMNS} FROM trades WHERE {where}", args).fetchall()
        symbols: dict[str, str] = {}  # one str object per symbol, not one per row
        trades = [_trade(r, symbols) for r in rows]
        trades.sort(key=_time_and_id)
        return trades

    def transfers(
        self, account: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[Transfer]:
        """One account's crypto and fiat transfers, oldest first, optionally within [since, until)."""
        where, args = _window(account, since_ms, until_ms)
        with self._db.read() as db:
            rows = db.execute(f"SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE {where}", args).fetchall()
        transfers = [_transfer(r) for r in rows]
        transfers.sort(key=lambda t: (t.timestamp_ms, t.kind, t.id))
        return transfers

    def accounts(self) -> list[str]:
        """Every account with at least one record, sorted."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT account FROM trades UNION SELECT account FROM transfers ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]

    def counts(self) -> dict[tuple[str, Kind], int]:
        """How many records each (account, kind) holds; kinds are trade, crypto and fiat."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT account, 'trade', count(*) FROM trades GROUP BY account"
                " UNION ALL SELECT account, kind, count(*) FROM transfers GROUP BY account, kind"
            ).fetchall()
        return {(r[0], r[1]): r[2] for r in rows}

    def newest_ms(self, account: str, kind: Kind) -> int | None:
        """The newest record time (Unix ms) of one account and endpoint kind, None when it has none."""
        with self._db.read() as db:
            if kind == "trade":
                row = db.execute(
                    "SELECT max(timestamp_ms) FROM trades WHERE account = ?", [account]
                ).fetchone()
            else:
                row = db.execute(
                    "SELECT max(timestamp_ms) FROM transfers WHERE account = ? AND kind = ?", [account, kind]
                ).fetchone()
        return None if row[0] is None else int(row[0])

    # --- sync cursors and state, kept by `sync` ---------------------------------------------------

    def cursor(self, account: str, endpoint: Kind) -> Cursor:
        """Where the sync of one account's endpoint stands (SyncState.cursor)."""
        return self.sync.cursor(account, endpoint)

    def set_cursor(self, account: str, endpoint: Kind, cursor: Cursor, rebuilds: int | None = None) -> None:
        """Record how far the sync of one account's endpoint has got (SyncState.set_cursor)."""
        self.sync.set_cursor(account, endpoint, cursor, rebuilds)

    def state(self, key: str) -> str | None:
        """A value from the state table, None when never set (SyncState.state)."""
        return self.sync.state(key)

    def set_state(self, key: str, value: str, *, keep_existing: bool = False) -> str:
        """Set a state value, or only when unset; the value now stored (SyncState.set_state)."""
        return self.sync.set_state(key, value, keep_existing=keep_existing)


def _time_and_id(trade: Trade) -> tuple[int, int]:
    return (trade.timestamp_ms, trade.id)


def _window(account: str, since_ms: int | None, until_ms: int | None) -> tuple[str, list[object]]:
    clauses: list[str] = ["account = ?"]
    args: list[object] = [account]
    if since_ms is not None:
        clauses.append("timestamp_ms >= ?")
        args.append(since_ms)
    if until_ms is not None:
        clauses.append("timestamp_ms < ?")
        args.append(until_ms)
    return " AND ".join(clauses), args
