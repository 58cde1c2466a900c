"""The ledger: an embedded SQLite file holding each account's trades and transfers, exactly.

One file, `ledger.db` inside the storage directory (`--storage.path`, default `data/`), in WAL mode.
Amounts are stored as decimal strings and ids as text, so nothing passes through a float. Accounts are
stored by their configured name only: the file holds no keys or other secrets.

The ledger is a copy of what the exchange already keeps. Deleting it (with its `-wal` and `-shm`
companions, while the exporter is stopped) is always safe: the next start reads the history again
from `activity.since`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

from exporter.activity import Trade, Transfer
from exporter.ledger_schema import MIGRATIONS, VERSION, LedgerError, connect, reason

__all__ = ["MIGRATIONS", "VERSION", "Cursor", "Kind", "Ledger", "LedgerError", "PriceCache", "ledger_path"]

DEFAULT_STORAGE_DIR = "data"
FILENAME = "ledger.db"

Kind = Literal["trade", "crypto", "fiat"]
KINDS: tuple[Kind, ...] = ("trade", "crypto", "fiat")


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far one account's sync of one endpoint has got (times in Unix ms, None when not yet known)."""

    newest_ms: int | None = None
    backfilled_to_ms: int | None = None
    backfill_complete: bool = False


def ledger_path(storage_dir: str | Path = DEFAULT_STORAGE_DIR) -> Path:
    """Where the ledger lives inside a storage directory."""
    return Path(storage_dir) / FILENAME


def _text(amount: Decimal) -> str:
    return format(amount, "f")


def _optional(amount: Decimal | None) -> str | None:
    return None if amount is None else format(amount, "f")


class Ledger:
    """One open ledger file; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = connect(self.path, busy_timeout_s)
        self.prices = PriceCache(self)

    @classmethod
    def open(cls, storage_dir: str | Path = DEFAULT_STORAGE_DIR) -> Ledger:
        """Open (creating when needed) `ledger.db` in `storage_dir`."""
        return cls(ledger_path(storage_dir))

    def close(self) -> None:
        """Close the file; the ledger is unusable afterwards."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        """The schema version of the open file."""
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
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

    # --- records -----------------------------------------------------------------------------------

    def upsert_trades(self, account: str, trades: Iterable[Trade]) -> int:
        """Store trades by (account, id); return how many were new or changed. Repeating is harmless."""
        rows = (
            (
                account,
                str(t.id),
                None if t.order_id is None else str(t.order_id),
                t.timestamp_ms,
                t.base,
                t.quote,
                t.side,
                _text(t.price),
                _text(t.amount),
                _text(t.fee),
                _text(t.tax),
            )
            for t in trades
        )
        with self._write() as db:
            before = db.total_changes
            db.executemany(
                """INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (account, id) DO UPDATE SET order_id = excluded.order_id,
                    timestamp_ms = excluded.timestamp_ms, base = excluded.base, quote = excluded.quote,
                    side = excluded.side, price = excluded.price, amount = excluded.amount,
                    fee = excluded.fee, tax = excluded.tax
                WHERE (order_id, timestamp_ms, base, quote, side, price, amount, fee, tax)
                    IS NOT (excluded.order_id, excluded.timestamp_ms, excluded.base, excluded.quote,
                    excluded.side, excluded.price, excluded.amount, excluded.fee, excluded.tax)""",
                rows,
            )
            return db.total_changes - before

    def upsert_transfers(self, account: str, transfers: Iterable[Transfer]) -> int:
        """Store transfers by (account, kind, id); return how many were new or changed."""
        rows = (
            (
                account,
                t.kind,
                str(t.id),
                t.timestamp_ms,
                t.balance_type,
                t.currency,
                _text(t.amount),
                _optional(t.fee),
                _optional(t.tax),
                _optional(t.funds),
            )
            for t in transfers
        )
        with self._write() as db:
            before = db.total_changes
            db.executemany(
                """INSERT INTO transfers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (account, kind, id) DO UPDATE SET timestamp_ms = excluded.timestamp_ms,
                    balance_type = excluded.balance_type, currency = excluded.currency,
                    amount = excluded.amount, fee = excluded.fee, tax = excluded.tax, funds = excluded.funds
                WHERE (timestamp_ms, balance_type, currency, amount, fee, tax, funds)
                    IS NOT (excluded.timestamp_ms, excluded.balance_type, excluded.currency,
                    excluded.amount, excluded.fee, excluded.tax, excluded.funds)""",
                rows,
            )
            return db.total_changes - before

    def trades(self, account: str, since_ms: int | None = None, until_ms: int | None = None) -> list[Trade]:
        """One account's trades, oldest first (ties in id order), optionally within [since, until)."""
        where, args = _window(account, since_ms, until_ms)
        with self._lock:
            # Sorted here, not in SQL: reading the table in key order and sorting in Python is faster
            # than following the time index row by row, and ids are text here, so SQL's order of
            # them is not numeric order.
            rows = self._db.execute(
                "SELECT id, order_id, timestamp_ms, base, quote, side, price, amount, fee, tax FROM trades"
                f" WHERE {where}",
                args,
            ).fetchall()
        symbols: dict[str, str] = {}  # one str object per symbol, not one per row
        trades = [
            Trade(
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
            for r in rows
        ]
        trades.sort(key=_time_and_id)
        return trades

    def transfers(
        self, account: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[Transfer]:
        """One account's crypto and fiat transfers, oldest first, optionally within [since, until)."""
        where, args = _window(account, since_ms, until_ms)
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, id, timestamp_ms, balance_type, currency, amount, fee, tax, funds"
                f" FROM transfers WHERE {where}",
                args,
            ).fetchall()
        transfers = [
            Transfer(
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
            for r in rows
        ]
        transfers.sort(key=lambda t: (t.timestamp_ms, t.kind, t.id))
        return transfers

    def accounts(self) -> list[str]:
        """Every account with at least one record, sorted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT account FROM trades UNION SELECT account FROM transfers ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]

    def counts(self) -> dict[tuple[str, Kind], int]:
        """How many records each (account, kind) holds; kinds are trade, crypto and fiat."""
        with self._lock:
            rows = self._db.execute(
                "SELECT account, 'trade', count(*) FROM trades GROUP BY account"
                " UNION ALL SELECT account, kind, count(*) FROM transfers GROUP BY account, kind"
            ).fetchall()
        return {(r[0], r[1]): r[2] for r in rows}

    def newest_ms(self, account: str, kind: Kind) -> int | None:
        """The newest record time (Unix ms) of one account and endpoint kind, None when it has none."""
        with self._lock:
            if kind == "trade":
                row = self._db.execute(
                    "SELECT max(timestamp_ms) FROM trades WHERE account = ?", [account]
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT max(timestamp_ms) FROM transfers WHERE account = ? AND kind = ?", [account, kind]
                ).fetchone()
        return None if row[0] is None else int(row[0])

    # --- sync cursors and state --------------------------------------------------------------------

    def cursor(self, account: str, endpoint: Kind) -> Cursor:
        """Where the sync of one account's endpoint stands (an empty Cursor before the first sync)."""
        with self._lock:
            row = self._db.execute(
                "SELECT newest_ms, backfilled_to_ms, backfill_complete FROM cursors"
                " WHERE account = ? AND endpoint = ?",
                [account, endpoint],
            ).fetchone()
        return Cursor() if row is None else Cursor(row[0], row[1], bool(row[2]))

    def set_cursor(self, account: str, endpoint: Kind, cursor: Cursor) -> None:
        """Record how far the sync of one account's endpoint has got."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?, ?)",
                [account, endpoint, cursor.newest_ms, cursor.backfilled_to_ms, int(cursor.backfill_complete)],
            )

    def state(self, key: str) -> str | None:
        """A value from the state table (e.g. `live_since_ms`), None when never set."""
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def set_state(self, key: str, value: str, *, keep_existing: bool = False) -> str:
        """Set a state value (or, with keep_existing, only when unset); return the value now stored."""
        with self._write() as db:
            verb = "INSERT OR IGNORE" if keep_existing else "INSERT OR REPLACE"
            db.execute(f"{verb} INTO state (key, value) VALUES (?, ?)", [key, value])
            return str(db.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()[0])


class PriceCache:
    """Candle closes kept in the ledger file (`ledger.prices`), for valuing past records."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def put(self, pair: str, resolution: str, closes: Iterable[tuple[int, Decimal]]) -> None:
        """Cache candle closes of a pair (`BTCTRY`) at a resolution (`60`, `1D`), by start time in s."""
        rows = ((pair, resolution, time_s, _text(close)) for time_s, close in closes)
        with self._ledger._write() as db:
            db.executemany("INSERT OR REPLACE INTO prices VALUES (?, ?, ?, ?)", rows)

    def close_at(self, pair: str, resolution: str, time_s: int) -> Decimal | None:
        """The cached close of the candle starting exactly at `time_s`, None when not cached."""
        with self._ledger._lock:
            row = self._ledger._db.execute(
                "SELECT close FROM prices WHERE pair = ? AND resolution = ? AND time_s = ?",
                [pair, resolution, time_s],
            ).fetchone()
        return None if row is None else Decimal(row[0])

    def latest(self, pair: str, resolution: str, at_or_before_s: int) -> tuple[int, Decimal] | None:
        """The newest cached (start time, close) at or before a time, None when none is cached."""
        with self._ledger._lock:
            row = self._ledger._db.execute(
                "SELECT time_s, close FROM prices WHERE pair = ? AND resolution = ? AND time_s <= ?"
                " ORDER BY time_s DESC LIMIT 1",
                [pair, resolution, at_or_before_s],
            ).fetchone()
        return None if row is None else (int(row[0]), Decimal(row[1]))


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
