"""Trades and transfers as the ledger's rows: each record to its row and back, and the writes.

A record's id is immutable: the first version stored is kept, and one served again with other fields
is left out (and reported, so the caller can count it); a transfer is one record by its id, whichever
endpoint answered it. So no total counted over the ledger can go down.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from exporter.api.records import Trade, Transfer
from exporter.ledger.cursors import put_state, state_value
from exporter.ledger.db import LedgerDb, decimal_text

TRADE_COLUMNS = "id, order_id, timestamp_ms, base, quote, side, price, amount, fee, tax"
TRANSFER_COLUMNS = "kind, id, timestamp_ms, balance_type, currency, amount, fee, tax, funds"

_INSERT_TRADE = "INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_TRANSFER = "INSERT INTO transfers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


# The state key of how many trades and transfers an account holds, kept by the writes below in their
# own transaction: a replay asks it every pass (ledger/replay.py: has a record landed behind the
# cursor?), and count(*) over 100,000 index entries is ~10 ms, most of a new record's cost.
def count_key(account: str) -> str:
    """The state key of the account's record count."""
    return f"ledger:records:{account}"


def counted(db: sqlite3.Connection, account: str) -> int:
    """How many trades and transfers the account holds, counted."""
    row = db.execute(
        "SELECT (SELECT count(*) FROM trades WHERE account = ?)"
        " + (SELECT count(*) FROM transfers WHERE account = ?)",
        [account, account],
    ).fetchone()
    return int(row[0])


def _note_added(db: sqlite3.Connection, account: str, added: int) -> None:
    """Keep the account's record count after `added` rows were inserted (in the same transaction)."""
    key = count_key(account)
    kept = state_value(db, key)
    if kept is not None and added == 0:
        return
    held = counted(db, account) if kept is None else int(kept) + added  # a ledger made before the key
    put_state(db, key, str(held))


# Ids looked up per statement when checking what is stored already (far under SQLite's variable limit).
_LOOKUP = 500


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


def trades_of(rows: Iterable[Sequence[Any]], numerator: frozenset[str] = frozenset()) -> list[Trade]:
    """The trades of rows of TRADE_COLUMNS; `numerator` names the pairs that take commission from the
    numerator."""
    symbols: dict[str, str] = {}  # one str object per symbol, not one per row
    keep = symbols.setdefault
    # One comprehension and tuple.__new__, not a function per row and Trade(...): each is one more
    # Python call per row (a NamedTuple's __new__ is one), and a full replay reads 100,000 rows. The
    # fields are in Trade's order, as Trade(...) takes them.
    return [
        tuple.__new__(Trade, (
            int(r[0]),
            None if r[1] is None else int(r[1]),
            r[2],
            keep(r[3], r[3]),
            keep(r[4], r[4]),
            "buy" if r[5] == "buy" else "sell",
            Decimal(r[6]),
            Decimal(r[7]),
            Decimal(r[8]),
            Decimal(r[9]),
            r[3] + r[4] in numerator if numerator else False,
        ))
        for r in rows
    ]  # fmt: skip


def transfer_of(r: Sequence[Any]) -> Transfer:
    """The transfer of a row of TRANSFER_COLUMNS."""
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


def upsert_trades(
    ledger: LedgerDb, account: str, trades: Iterable[Trade], changed: list[Trade] | None = None
) -> int:
    """Store new trades by (account, id); return how many were new. Repeating is harmless.

    A stored id keeps its first version; one here with other fields is appended to `changed`.
    """
    batch = list(trades)
    with ledger.write() as db:
        rows = _stored(db, "trades", TRADE_COLUMNS, account, sorted({str(t.id) for t in batch}))
        known = {t.id: t for t in trades_of(rows)}
        new = []
        for t in batch:
            first = known.setdefault(t.id, t)
            if first is t:
                new.append(_trade_row(account, t))
            elif first != t and changed is not None:
                changed.append(t)
        db.executemany(_INSERT_TRADE, new)
        _note_added(db, account, len(new))
        return len(new)


def upsert_transfers(
    ledger: LedgerDb, account: str, transfers: Iterable[Transfer], changed: list[Transfer] | None = None
) -> int:
    """Store new transfers by (account, id), whichever endpoint (kind) answered; how many were new.

    A stored id keeps its first version; one here with other fields (the kind aside: the same
    deposit from /crypto and /fiat is one record) is appended to `changed`.
    """
    batch = list(transfers)
    with ledger.write() as db:
        rows = _stored(db, "transfers", TRANSFER_COLUMNS, account, sorted({str(t.id) for t in batch}))
        known = {t.id: t for t in map(transfer_of, rows)}
        new = []
        for t in batch:
            first = known.setdefault(t.id, t)
            if first is t:
                new.append(_transfer_row(account, t))
            elif first._replace(kind=t.kind) != t and changed is not None:
                changed.append(t)
        db.executemany(_INSERT_TRANSFER, new)
        _note_added(db, account, len(new))
        return len(new)
