"""`ledger export`: one row per trade or transfer with its value and realized profit, as CSV or JSON.

Pure over records: the rows come from a cost-basis replay (`compute(..., keep_events=True)`) and are
written to a text stream. Amounts are written as decimal strings, in JSON too, never as floats: the
API's own amounts exactly, the computed `value`, `fee_value`, `tax_value` and `realized` rounded for
display to the valuation currency's places by ledger/display.py, the rounding `ledger report` sums
(the ledger and the replay keep them exact).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, TextIO

from exporter.api.records import Trade
from exporter.ledger.costbasis import CostBasis, PriceAt
from exporter.ledger.display import shown_in
from exporter.ledger.holdings import paid, trade_paid
from exporter.ledger.periods import iso_utc

Format = Literal["csv", "json"]
FORMATS: tuple[Format, ...] = ("csv", "json")

COLUMNS = (
    "account",
    "time",
    "timestamp_ms",
    "kind",
    "id",
    "order_id",
    "type",
    "asset",
    "quote",
    "amount",
    "price",
    "fee",
    "tax",
    "fee_currency",
    "value",
    "fee_value",
    "tax_value",
    "realized",
    "currency",
    "shortfall",
)
# The computed columns, in the valuation currency: shown rounded (ledger/display.py).
_COMPUTED = ("value", "fee_value", "tax_value", "realized")
# A spreadsheet runs a cell starting with one of these as a formula; text cells get a leading quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Row:
    """One exported record; None is an absent value (empty in CSV, null in JSON)."""

    account: str
    timestamp_ms: int
    kind: str
    id: int
    order_id: int | None
    type: str
    asset: str | None
    quote: str | None
    amount: Decimal
    price: Decimal | None
    fee: Decimal | None
    tax: Decimal | None
    fee_currency: str | None
    value: Decimal | None
    realized: Decimal | None
    currency: str
    # The fee and tax valued in `currency` at the record's time (positive): what `ledger report` sums
    # as fees and taxes. None without a price, or (fee_value, tax_value) on a transfer without one.
    fee_value: Decimal | None = None
    tax_value: Decimal | None = None
    # What the record gave away beyond the ledger's holding (history missing before the first record),
    # in units of the asset given: a sale's or withdrawal's `asset`, a buy's `quote`.
    shortfall: Decimal | None = None

    @property
    def time(self) -> str:
        """The record's time in ISO 8601, UTC, to the millisecond."""
        return iso_utc(self.timestamp_ms)


def rows(account: str, basis: CostBasis, price_at: PriceAt) -> list[Row]:
    """The export rows of one account's replay, in its time order (needs keep_events=True).

    `price_at` values the fees and taxes, as the replay valued the records.
    """
    result = []
    for event in basis.events:
        record = event.record
        if isinstance(record, Trade):
            fee_value, tax_value = trade_paid(record, basis.currency, price_at)
            row = Row(
                account=account,
                timestamp_ms=record.timestamp_ms,
                kind="trade",
                id=record.id,
                order_id=record.order_id,
                type=record.side,
                asset=record.base,
                quote=record.quote,
                amount=record.amount,
                price=record.price,
                fee=record.fee,
                tax=record.tax,
                fee_currency=record.fee_asset,
                value=event.value,
                realized=event.realised,
                currency=basis.currency,
                shortfall=event.shortfall,
                fee_value=fee_value,
                tax_value=tax_value,
            )
        else:
            when, asset = record.timestamp_ms, record.currency
            fee_value = tax_value = None
            if asset is not None and record.fee is not None:
                fee_value = paid(record.fee, asset, basis.currency, when, price_at)
            if asset is not None and record.tax is not None:
                tax_value = paid(record.tax, asset, basis.currency, when, price_at)
            row = Row(
                account=account,
                timestamp_ms=record.timestamp_ms,
                kind=record.kind,
                id=record.id,
                order_id=None,
                type=record.balance_type,
                asset=record.currency,
                quote=None,
                amount=record.amount,
                price=None,
                fee=record.fee,
                tax=record.tax,
                fee_currency=record.currency if record.fee is not None or record.tax is not None else None,
                value=event.value,
                realized=None,
                currency=basis.currency,
                shortfall=event.shortfall,
                fee_value=fee_value,
                tax_value=tax_value,
            )
        result.append(row)
    return result


def _values(row: Row) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    shown = shown_in(row.currency)
    for name in COLUMNS:
        value = getattr(row, name)
        if value is None:
            out[name] = None
        elif isinstance(value, Decimal):
            out[name] = _computed(shown(value)) if name in _COMPUTED else format(value, "f")
        else:
            out[name] = str(value)
    return out


def _computed(amount: Decimal) -> str:
    # The API's own amounts keep its digits ("0.00250000"); a computed one drops the trailing zeros
    # that multiplication leaves behind ("1498230.0"), which changes nothing of its value.
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def write_csv(stream: TextIO, export_rows: Iterable[Row]) -> None:
    """Write a header and one line per row; text cells that a spreadsheet would run are quoted."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in export_rows:
        values = _values(row)
        for name in ("account", "asset", "quote", "fee_currency", "currency"):
            text = values[name]
            if text is not None and text.startswith(_FORMULA_STARTS):
                values[name] = "'" + text
        writer.writerow("" if values[name] is None else values[name] for name in COLUMNS)


def write_json(stream: TextIO, export_rows: Iterable[Row]) -> None:
    """Write a JSON array of objects; amounts are strings so no reader turns them into floats."""
    stream.write("[")
    for index, row in enumerate(export_rows):
        values: dict[str, object] = dict(_values(row))
        values["timestamp_ms"] = row.timestamp_ms
        stream.write(("," if index else "") + "\n  " + json.dumps(values, ensure_ascii=False))
    stream.write("\n]\n")


def write(stream: TextIO, export_rows: Iterable[Row], fmt: Format) -> None:
    """Write rows in `fmt` (csv or json)."""
    if fmt == "csv":
        write_csv(stream, export_rows)
    elif fmt == "json":
        write_json(stream, export_rows)
    else:
        raise ValueError(f"unknown export format {fmt!r} (expected csv or json)")
