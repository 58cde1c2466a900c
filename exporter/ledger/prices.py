"""The ledger's price cache (`ledger.prices`): candle closes kept for valuing past records."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from exporter.ledger.db import LedgerDb, decimal_text


class PriceCache:
    """Candle closes kept in the ledger file (`ledger.prices`), for valuing past records."""

    def __init__(self, db: LedgerDb) -> None:
        self._db = db

    def put(self, pair: str, resolution: str, closes: Iterable[tuple[int, Decimal]]) -> None:
        """Cache candle closes of a pair (`BTCTRY`) at a resolution (`60`, `1D`), by start time in s."""
        rows = ((pair, resolution, time_s, decimal_text(close)) for time_s, close in closes)
        with self._db.write() as db:
            db.executemany("INSERT OR REPLACE INTO prices VALUES (?, ?, ?, ?)", rows)

    def close_at(self, pair: str, resolution: str, time_s: int) -> Decimal | None:
        """The cached close of the candle starting exactly at `time_s`, None when not cached."""
        with self._db.read() as db:
            row = db.execute(
                "SELECT close FROM prices WHERE pair = ? AND resolution = ? AND time_s = ?",
                [pair, resolution, time_s],
            ).fetchone()
        return None if row is None else Decimal(row[0])

    def latest(self, pair: str, resolution: str, at_or_before_s: int) -> tuple[int, Decimal] | None:
        """The newest cached (start time, close) at or before a time, None when none is cached."""
        with self._db.read() as db:
            row = db.execute(
                "SELECT time_s, close FROM prices WHERE pair = ? AND resolution = ? AND time_s <= ?"
                " ORDER BY time_s DESC LIMIT 1",
                [pair, resolution, at_or_before_s],
            ).fetchone()
        return None if row is None else (int(row[0]), Decimal(row[1]))
