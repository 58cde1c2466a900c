"""Which pairs take a buy's fee from the numerator, as the ledger remembers exchangeinfo saying.

A trade item does not say which asset its fee was taken from; the pair's `commissionFromNumerator` in
exchangeinfo does (api.market). It is kept in the state table whenever exchangeinfo is read, so a
replay without network (`ledger export`, `backfill`) moves holdings as the live exporter does. Each
answer is merged into what is kept: a pair keeps its last stated flag, even once an answer leaves it
out (a delisted pair's past trades still took their fee where they did). A pair never seen with the
flag follows the vendor notes' rule, fee and tax in the denominator. Deleting the ledger forgets them
with the records; the next exchangeinfo read, which comes before any cost basis, states them again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

from exporter.ledger.cursors import put_state, state_value
from exporter.ledger.db import LedgerDb

KEY = "commission_from_numerator"


def _stored(db: sqlite3.Connection) -> dict[str, bool]:
    stored = state_value(db, KEY)
    try:
        value = json.loads(stored) if stored is not None else {}
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, bool)}


def remember(ledger: LedgerDb, flags: Mapping[str, bool]) -> bool:
    """Merge one exchangeinfo answer's flags (pair -> bool) into the ledger; whether anything changed."""
    with ledger.write() as db:
        before = _stored(db)
        after = {**before, **flags}
        if after == before:
            return False
        put_state(db, KEY, json.dumps(after, sort_keys=True, separators=(",", ":")))
        return True


def numerator_pairs(db: sqlite3.Connection) -> frozenset[str]:
    """The pairs last stated to take commission from the numerator (read within an open read)."""
    return frozenset(pair for pair, flag in _stored(db).items() if flag)
