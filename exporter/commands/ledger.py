"""`btcturk-exporter ledger export`: print the ledger's rows, valued at their time, with realised profit."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import timezone
from typing import TextIO

from exporter.commands.common import (
    PROG,
    CommandError,
    LedgerReader,
    add_common_flags,
    add_cost_basis_flag,
    moment,
)
from exporter.describe import FlagParser
from exporter.ledger import export, lot_export, tables
from exporter.ledger.costbasis import compute


def build_export_parser() -> argparse.ArgumentParser:
    """Flags of `ledger export`."""
    parser = FlagParser(
        prog=f"{PROG} ledger export",
        description="Print the ledger: one row per trade or transfer, with its value at its time and, "
        "for sales, the profit it realized.",
        allow_abbrev=False,
    )
    add_common_flags(parser)
    parser.add_argument("--account", metavar="NAME", help="Only this account (default: every one).")
    parser.add_argument("--since", metavar="DATE", help="Only records at or after this UTC date or time.")
    parser.add_argument("--format", dest="fmt", choices=export.FORMATS, default="csv")
    add_cost_basis_flag(parser)
    parser.add_argument(
        "--lots",
        action="store_true",
        help="For each sale or withdrawal, the lots it consumed (needs a lot method: fifo, lifo or hifo).",
    )
    return parser


def ledger_export(argv: Sequence[str], out: TextIO) -> int:
    """`ledger export`: write the ledger's rows (or, with --lots, the lots its sales took) to `out`."""
    args = build_export_parser().parse_args(argv)
    since = moment(args.since, "--since", timezone.utc)
    reader = LedgerReader.of(args)
    if args.lots and reader.method == "average":
        raise CommandError("--lots: average cost takes no lots; add --cost-basis fifo, lifo or hifo")
    currency = reader.settings.currencies[0]
    with reader.histories() as (ledger, histories):
        prices = reader.prices(ledger, histories, [currency])
        rows = []
        lots: list[dict[str, tables.Cell]] = []
        for name, (trades, transfers) in histories.items():
            basis = compute(trades, transfers, currency, prices.price_at, reader.method, keep_events=True)
            if args.lots:
                lots += lot_export.rows(name, basis, since)
            else:
                found = export.rows(name, basis, prices.price_at)
                rows += [r for r in found if since is None or r.timestamp_ms >= since]
    if args.lots:
        lots.sort(key=lambda r: (str(r["timestamp_ms"]).zfill(16), str(r["account"])))
        tables.write(out, lot_export.COLUMNS, lots, args.fmt)
        return 0
    rows.sort(key=lambda r: (r.timestamp_ms, r.account))
    export.write(out, rows, args.fmt)
    return 0
