"""The `ledger holdings` subcommand: what each account held at a moment, its value and its cost.

For year-end and wealth statements: `--at 2027-01-01` is midnight in --tz (default report.timezone,
Europe/Istanbul), and counts every record before it. Works from the ledger alone unless
--config.file is given, which fetches the past prices the cache lacks.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TextIO

from exporter.commands.common import (
    PROG,
    CommandError,
    LedgerReader,
    add_common_flags,
    add_cost_basis_flag,
    add_tz_flag,
    history_start,
    moment,
    zone_of,
)
from exporter.describe import FlagParser
from exporter.ledger import holdings, tables
from exporter.ledger.periods import iso_local
from exporter.ledger.tables import Cell
from exporter.pricing.history import HourMemo


def build_holdings_parser() -> argparse.ArgumentParser:
    """Flags of `ledger holdings`."""
    parser = FlagParser(
        prog=f"{PROG} ledger holdings",
        description="Per account, asset and valuation currency: the quantity held at a moment, its value "
        "at that moment's prices and its cost basis.",
        allow_abbrev=False,
    )
    add_common_flags(parser)
    parser.add_argument(
        "--at",
        metavar="DATE|TIME",
        required=True,
        help="A date (midnight in --tz), a time in --tz (2026-06-30T18:00), or one in UTC (...Z).",
    )
    add_tz_flag(parser, "--at is read in")
    add_cost_basis_flag(parser)
    parser.add_argument("--account", metavar="NAME", help="Only this account (default: every one).")
    parser.add_argument("--format", dest="fmt", choices=tables.FORMATS, default="text")
    return parser


def ledger_holdings(argv: Sequence[str], out: TextIO) -> int:
    """`ledger holdings`: write the holdings at --at to `out`."""
    args = build_holdings_parser().parse_args(argv)
    reader = LedgerReader.of(args)
    currencies = reader.settings.currencies
    where = zone_of(args, reader.config)
    at = moment(args.at, "--at", where)
    assert at is not None  # a required flag
    # Only the records before --at count: the later ones are not read.
    with reader.histories(until_ms=at) as (ledger, histories):
        for name in histories:
            # The ledger holds nothing from before its history's start, not even the openings stamped
            # there: an empty row set would say nothing was held.
            begins = history_start(ledger, name)
            if begins is not None and at <= begins:
                raise CommandError(
                    f"--at: {args.at} is not after the ledger's history of account {name!r} begins"
                    f" ({iso_local(begins, where)}, activity.since): what it held then is unknown"
                    + ("; give --account for another" if len(histories) > 1 else "")
                )
        prices = HourMemo(reader.prices(ledger, histories, currencies, [at], until_ms=at))
        rows: list[dict[str, Cell]] = []
        for name, (trades, transfers) in histories.items():
            rows += holdings.holdings(
                name, trades, transfers, currencies, at, iso_local(at, where), prices.price_at, reader.method
            )
    rows.sort(key=lambda r: (str(r["account"]), str(r["asset"]), str(r["currency"])))
    tables.write(out, holdings.COLUMNS, rows, args.fmt)
    return 0
