"""The `ledger report` subcommand: per period, account, asset and currency, how the account did.

Works from the ledger alone (prices from its cache) unless --config.file is given, which fetches
the past prices the cache lacks. Rows come from ledger/report.py; --tz (default report.timezone,
Europe/Istanbul) says where a month, quarter or year begins.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from itertools import chain
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
from exporter.ledger import report, tables
from exporter.ledger.periods import PERIODS, bounds
from exporter.ledger.tables import Cell
from exporter.pricing.history import HourMemo


def build_report_parser() -> argparse.ArgumentParser:
    """Flags of `ledger report`."""
    parser = FlagParser(
        prog=f"{PROG} ledger report",
        description="Per period, account, asset and valuation currency: realized profit, proceeds, cost "
        "of what was sold, fees, taxes, deposits and withdrawals, and the account's value at the period's "
        "start and end with its time-weighted return.",
        allow_abbrev=False,
    )
    add_common_flags(parser)
    parser.add_argument("--period", choices=PERIODS, required=True, help="month, quarter or year.")
    add_tz_flag(parser, "periods are cut in and dates read in")
    add_cost_basis_flag(parser)
    parser.add_argument("--account", metavar="NAME", help="Only this account (default: every one).")
    parser.add_argument("--since", metavar="DATE", help="From this date (midnight in --tz) or time on.")
    parser.add_argument(
        "--until", metavar="DATE", help="Up to this date or time, not included (default and at most now)."
    )
    parser.add_argument("--format", dest="fmt", choices=tables.FORMATS, default="text")
    return parser


def ledger_report(argv: Sequence[str], out: TextIO) -> int:
    """`ledger report`: write the period rows to `out`."""
    args = build_report_parser().parse_args(argv)
    reader = LedgerReader.of(args)
    where = zone_of(args, reader.config)
    since = moment(args.since, "--since", where)
    asked = moment(args.until, "--until", where)
    now = int(time.time() * 1000)
    # No period past now: its rows would show sums of 0 for records not yet made, as if known.
    until = now if asked is None or asked > now else asked
    if since is not None and since >= until:
        end = f"--until ({args.until})" if until == asked else "now"
        raise CommandError(f"--since: {args.since} is not before {end}")
    currencies = list(reader.settings.currencies)
    with reader.histories() as (ledger, histories):
        moments: set[int] = {until}
        for trades, transfers in histories.values():
            # The first record's moment, as report.report() orders them: no second sort to find it.
            earliest = min(
                chain((t.timestamp_ms for t in trades), (t.timestamp_ms for t in transfers)), default=None
            )
            if earliest is not None:
                first = bounds(earliest, args.period, where)[1] if since is None else since
                for window in report.windows(first, until, args.period, where):
                    moments.update((window.start_ms, window.end_ms))
            moments.update(t.timestamp_ms for t in transfers)
        prices = HourMemo(reader.prices(ledger, histories, currencies, moments))
        rows: list[dict[str, Cell]] = []
        for name, (trades, transfers) in histories.items():
            rows += report.report(
                name,
                trades,
                transfers,
                currencies,
                prices.price_at,
                reader.method,
                args.period,
                where,
                since,
                until,
                history_start(ledger, name),
            )
    rows.sort(key=lambda r: tuple(str(r[k]) for k in ("period", "account", "asset", "currency")))
    tables.write(out, report.COLUMNS, rows, args.fmt)
    return 0
