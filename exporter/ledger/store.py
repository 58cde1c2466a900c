"""The ledger: an embedded SQLite file holding each account's trades and transfers, exactly.

One file, `ledger.db` inside the storage directory (`--storage.path`, default `data/`), in WAL mode.
Amounts are stored as decimal strings and ids as text, so nothing passes through a float. Accounts are
stored by their configured name only: the file holds no keys or other secrets.

The ledger is a copy of what the exchange already keeps. Deleting it (with its `-wal` and `-shm`
companions) is always safe: the history is read again from `activity.since`, at the next start or at
once by a running exporter, which notices (db.LedgerDb); so is a damaged file, which is moved aside.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from operator import itemgetter
from pathlib import Path

from exporter.api.records import Kind, Trade, Transfer
from exporter.ledger import commission, openings, records
from exporter.ledger.cursors import Cursor, SyncState, state_value
from exporter.ledger.db import LedgerDb
from exporter.ledger.prices import PriceCache
from exporter.ledger.schema import LedgerError, reason

DEFAULT_STORAGE_DIR = "data"
FILENAME = "ledger.db"


def ledger_path(storage_dir: str | Path = DEFAULT_STORAGE_DIR) -> Path:
    """Where the ledger lives inside a storage directory."""
    return Path(storage_dir) / FILENAME


class Ledger:
    """One open ledger file; safe to share between threads (one connection behind a lock).

    Records are written by `records` (each id keeps its first version) and read here.
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

    # --- records -----------------------------------------------------------------------------------

    def upsert_trades(self, account: str, trades: Iterable[Trade], changed: list[Trade] | None = None) -> int:
        """Store new trades; how many were new (records.upsert_trades)."""
        return records.upsert_trades(self._db, account, trades, changed)

    def upsert_transfers(
        self, account: str, transfers: Iterable[Transfer], changed: list[Transfer] | None = None
    ) -> int:
        """Store new transfers, whichever endpoint answered; how many were new (records.upsert_transfers)."""
        return records.upsert_transfers(self._db, account, transfers, changed)

    def trades(self, account: str, since_ms: int | None = None, until_ms: int | None = None) -> list[Trade]:
        """One account's trades, oldest first (ties in id order), optionally within [since, until), each
        with its pair's commission flag as last remembered (remember_commission)."""
        where, args = _window(account, since_ms, until_ms)
        with self._db.read() as db:
            # Sorted here, not in SQL: ids are text, so SQL's order of them is not numeric order; and
            # without a window SQLite reads the table in key order, faster than following the time
            # index row by row (a window follows it: EXPLAIN QUERY PLAN).
            rows = db.execute(f"SELECT {records.TRADE_COLUMNS} FROM trades WHERE {where}", args).fetchall()
            numerator = commission.numerator_pairs(db)
        with _rows_of(self.path, "trades"):
            trades = records.trades_of(rows, numerator)
        trades.sort(key=_TIME_AND_ID)
        return trades

    def transfers(
        self, account: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[Transfer]:
        """One account's crypto and fiat transfers, oldest first, optionally within [since, until)."""
        where, args = _window(account, since_ms, until_ms)
        with self._db.read() as db:
            query = f"SELECT {records.TRANSFER_COLUMNS} FROM transfers WHERE {where}"
            rows = db.execute(query, args).fetchall()
        with _rows_of(self.path, "transfers"):
            transfers = [records.transfer_of(r) for r in rows]
        transfers.sort(key=_TIME_KIND_ID)
        return transfers

    def openings(
        self, account: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[Transfer]:
        """One account's opening positions (ledger/openings.py), optionally within [since, until)."""
        with _rows_of(self.path, "openings"):
            return openings.read(self._db, account, since_ms, until_ms)

    def history_transfers(
        self, account: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[Transfer]:
        """The account's transfers with its openings, which every replay of its history takes in."""
        return self.openings(account, since_ms, until_ms) + self.transfers(account, since_ms, until_ms)

    def set_openings(
        self, account: str, at_ms: int, quantities: Mapping[str, Decimal], rebuilds: int | None = None
    ) -> bool:
        """Replace the account's openings as one set; True when they changed (openings.replace)."""
        return openings.replace(self._db, account, at_ms, quantities, rebuilds)

    def remember_commission(self, flags: Mapping[str, bool]) -> bool:
        """Keep exchangeinfo's commissionFromNumerator per pair; whether it changed (ledger.commission)."""
        return commission.remember(self._db, flags)

    def numerator_pairs(self) -> frozenset[str]:
        """The pairs last remembered to take a buy's commission from the numerator (ledger.commission)."""
        with self._db.read() as db:
            return commission.numerator_pairs(db)

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

    def record_count(self, account: str) -> int:
        """How many trades and transfers one account has: the count the writes keep (records.count_key),
        counted when a ledger made before it has none yet."""
        with self._db.read() as db:
            kept = state_value(db, records.count_key(account))
            return int(kept) if kept is not None else records.counted(db, account)

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


# Sort keys made in C: a Python function per row was a tenth of reading 100,000 trades.
# By position, not name (Trade and Transfer are NamedTuples): a field's name is a property call.
_TIME_AND_ID = itemgetter(Trade._fields.index("timestamp_ms"), Trade._fields.index("id"))
_TIME_KIND_ID = itemgetter(*map(Transfer._fields.index, ("timestamp_ms", "kind", "id")))


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


@contextmanager
def _rows_of(path: Path, table: str) -> Iterator[None]:
    """Rows made into records: one the exporter never wrote (an id or amount edited by hand into
    something other than a number) ends the read as a LedgerError naming the file and table."""
    try:
        yield
    except (ValueError, ArithmeticError) as exc:  # int(), Decimal(): decimal.InvalidOperation
        raise LedgerError(
            f"ledger {path}: a row of {table} is not one the exporter wrote ({reason(exc)})"
        ) from None
