"""Opening positions: what an account held where its ledger's history begins (`activity.since`).

Derived, never an API record. When `since` cuts an account's history, the balances walked back through
every record since then (activity/reconcile.py) leave, per asset, what was held before the first one;
that enters the ledger as one deposit of kind `opening` per asset, stamped at the history's start, and
every replay takes it as the deposit it stands for (valued at that moment's price, an inflow to net
deposits and the units). An opening's id is its time in Unix ms, so with its asset it names the row.

An account's openings are replaced as a set, in one transaction: a kill -9 leaves the old set or the
new one, never a mix, and writing the same set again changes nothing. They live in the ledger file,
so deleting it deletes them, and the sync derives them again once the history is read back.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from exporter.api.records import OPENING, Transfer
from exporter.ledger.db import LedgerDb, decimal_text


def opening(asset: str, at_ms: int, quantity: Decimal) -> Transfer:
    """The opening record of `quantity` of `asset` held at `at_ms`."""
    return Transfer(OPENING, at_ms, at_ms, "deposit", asset, quantity)


def read(ledger: LedgerDb, account: str, since_ms: int | None, until_ms: int | None) -> list[Transfer]:
    """One account's openings (in asset order), optionally those within [since, until)."""
    query = "SELECT asset, timestamp_ms, amount FROM openings WHERE account = ?"
    args: list[object] = [account]
    if since_ms is not None:
        query += " AND timestamp_ms >= ?"
        args.append(since_ms)
    if until_ms is not None:
        query += " AND timestamp_ms < ?"
        args.append(until_ms)
    with ledger.read() as db:
        rows = db.execute(query + " ORDER BY asset", args).fetchall()
    return [opening(r[0], int(r[1]), Decimal(r[2])) for r in rows]


def replace(
    ledger: LedgerDb, account: str, at_ms: int, quantities: Mapping[str, Decimal], rebuilds: int | None = None
) -> bool:
    """Make `quantities` (positive, per asset) at `at_ms` the account's openings; True when they changed.

    With `rebuilds`, only into the file that count of rebuilds opened: openings derived from one
    file's history must never land in a rebuilt one that has not read it back yet.
    """
    wanted = sorted((asset, at_ms, decimal_text(q)) for asset, q in quantities.items() if q > 0)
    with ledger.write(rebuilds) as db:
        rows = db.execute(
            "SELECT asset, timestamp_ms, amount FROM openings WHERE account = ? ORDER BY asset", [account]
        ).fetchall()
        if [(r[0], int(r[1]), r[2]) for r in rows] == wanted:
            return False
        db.execute("DELETE FROM openings WHERE account = ?", [account])
        db.executemany("INSERT INTO openings VALUES (?, ?, ?, ?)", [(account, *row) for row in wanted])
        return True
