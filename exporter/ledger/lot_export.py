"""`ledger export --lots`: for each sale or withdrawal, the lots it consumed under a lot method.

Pure over a replay kept with events (`compute(..., keep_events=True)` under fifo, lifo or hifo): one
row per part of a lot a record gave away, with when that lot was acquired, the quantity taken and
its cost in the valuation currency. A record that gave more than the ledger shows held lists the
lots there were; the rest is its shortfall (docs/cost-basis.md).
"""

from __future__ import annotations

from exporter.api.records import Trade
from exporter.ledger.costbasis import CostBasis
from exporter.ledger.periods import iso_utc
from exporter.ledger.tables import Cell

COLUMNS = (
    "account",
    "time",
    "timestamp_ms",
    "kind",
    "id",
    "type",
    "asset",
    "currency",
    "acquired_at",
    "acquired_ms",
    "quantity",
    "cost",
)


def rows(account: str, basis: CostBasis, since_ms: int | None = None) -> list[dict[str, Cell]]:
    """The lot rows of one account's replay, in its time order."""
    result: list[dict[str, Cell]] = []
    for event in basis.events:
        record = event.record
        if not event.lots or (since_ms is not None and record.timestamp_ms < since_ms):
            continue
        kind, kind_type, asset = (
            ("trade", record.side, record.base if record.side == "sell" else record.quote)
            if isinstance(record, Trade)
            else (record.kind, record.balance_type, record.currency or "")
        )
        for part in event.lots:
            result.append(
                {
                    "account": account,
                    "time": iso_utc(record.timestamp_ms),
                    "timestamp_ms": record.timestamp_ms,
                    "kind": kind,
                    "id": str(record.id),
                    "type": kind_type,
                    "asset": asset,
                    "currency": basis.currency,
                    "acquired_at": iso_utc(part.acquired_ms),
                    "acquired_ms": part.acquired_ms,
                    "quantity": part.quantity,
                    "cost": part.cost,
                }
            )
    return result
