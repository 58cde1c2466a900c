"""Rows of named text cells written as CSV, JSON or a terminal table: the reports' one text format.

A cell is a string, an int (written as a JSON number), a Decimal (an exact decimal string, in JSON
too, never a float) or None (absent: empty in CSV, null in JSON, `-` in the table). The table is for
reading, not for sums: it rounds amounts to TEXT_PLACES decimal places (CSV and JSON never round).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Context, Decimal
from typing import Literal, TextIO

Format = Literal["csv", "json", "text"]
FORMATS: tuple[Format, ...] = ("csv", "json", "text")
Cell = str | int | Decimal | None
# A spreadsheet runs a cell starting with one of these as a formula; text cells get a leading quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A cost split in proportion carries 60 significant digits; a terminal needs eight decimal places.
TEXT_PLACES = 8
_TEXT_QUANTUM = Decimal(1).scaleb(-TEXT_PLACES)
_WIDE = Context(prec=80)  # rounding a 60-digit amount to 8 places must not overflow the context


def amount(value: Decimal) -> str:
    """A computed amount as plain decimal text without the trailing zeros arithmetic leaves behind."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _text(cell: Cell) -> str | None:
    if cell is None:
        return None
    return amount(cell) if isinstance(cell, Decimal) else str(cell)


def write_csv(stream: TextIO, columns: Sequence[str], rows: Iterable[Mapping[str, Cell]]) -> None:
    """A header and one line per row; a text cell a spreadsheet would run is quoted."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        line = []
        for name in columns:
            cell = row[name]
            text = _text(cell) or ""
            if isinstance(cell, str) and text.startswith(_FORMULA_STARTS):
                text = "'" + text
            line.append(text)
        writer.writerow(line)


def write_json(stream: TextIO, columns: Sequence[str], rows: Iterable[Mapping[str, Cell]]) -> None:
    """A JSON array of objects with exactly `columns` as keys; amounts are strings."""
    stream.write("[")
    for index, row in enumerate(rows):
        values = {name: row[name] if isinstance(row[name], int) else _text(row[name]) for name in columns}
        stream.write(("," if index else "") + "\n  " + json.dumps(values, ensure_ascii=False))
    stream.write("\n]\n")


def write_text(stream: TextIO, columns: Sequence[str], rows: Iterable[Mapping[str, Cell]]) -> None:
    """An aligned table for a terminal: text left, numbers right, `-` where a value is absent."""
    cells = [[_shown(row[name]) for name in columns] for row in rows]
    numeric = [
        all(row[i] is None or _is_number(row[i]) for row in cells)
        and any(row[i] is not None for row in cells)
        for i in range(len(columns))
    ]
    shown = [[c if c is not None else "-" for c in row] for row in cells]
    widths = [max([len(name), *(len(row[i]) for row in shown)]) for i, name in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    stream.write(line(columns) + "\n")
    for row in shown:
        stream.write(line(row) + "\n")


def _shown(cell: Cell) -> str | None:
    if isinstance(cell, Decimal) and cell.as_tuple().exponent < -TEXT_PLACES:  # type: ignore[operator]
        cell = cell.quantize(_TEXT_QUANTUM, context=_WIDE)
    return _text(cell)


def _is_number(text: str | None) -> bool:
    try:
        Decimal(text or "")
    except ArithmeticError:
        return False
    return True


def write(stream: TextIO, columns: Sequence[str], rows: Iterable[Mapping[str, Cell]], fmt: Format) -> None:
    """Write rows in `fmt` (csv, json or text)."""
    writers = {"csv": write_csv, "json": write_json, "text": write_text}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r} (expected csv, json or text)")
    writers[fmt](stream, columns, rows)
