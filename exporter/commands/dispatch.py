"""The subcommands' one entry point: `btcturk-exporter ledger export|report|holdings ...` and `backfill ...`.

The cli hands argv here before the exporter's own flags are parsed; each subcommand parses its own.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from exporter.commands.common import PROG, CommandError
from exporter.commands.holdings import ledger_holdings
from exporter.commands.ledger import ledger_export
from exporter.commands.report import ledger_report
from exporter.ledger.schema import LedgerError
from exporter.logs import setup_logging

SUBCOMMANDS = ("ledger", "backfill")
# The `ledger` subcommands: each takes its argv after the name, and stdout.
LEDGER: dict[str, Callable[[Sequence[str], TextIO], int]] = {
    "export": ledger_export,
    "report": ledger_report,
    "holdings": ledger_holdings,
}


def run(argv: Sequence[str]) -> int:
    """Run a subcommand (argv[0] is `ledger` or `backfill`); return its exit status."""
    setup_logging("info", "logfmt")
    logging.getLogger("exporter").setLevel(logging.INFO)
    try:
        if argv[0] == "backfill":
            # Deferred, for start-up time: the backfill brings in the API client, the activity sync
            # and the OpenMetrics writer (requests, tenacity, prometheus_client), which the ledger's
            # readers never use.
            from exporter.commands.backfill import backfill_main

            return backfill_main(argv[1:], sys.stdout, sys.stderr)
        if len(argv) < 2 or argv[1] not in LEDGER:
            names = "|".join(LEDGER)
            print(f"usage: {PROG} ledger {names} [flags]; see {PROG} ledger export --help", file=sys.stderr)
            return 2
        return LEDGER[argv[1]](argv[2:], sys.stdout)
    except (CommandError, LedgerError) as exc:
        # A LedgerError met while reading (a table missing from a damaged file) ends the command as
        # one line too: its messages are one line where they are made (schema.reason, check_pages).
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Python would report the failed flush of stdout at exit; point it at /dev/null instead.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        if argv[0] == "backfill":
            # A cut OpenMetrics file is no backfill: promtool would load part of the past as if whole.
            print(
                f"{PROG}: backfill: standard output was closed before the file was complete; nothing "
                "usable was written (write it with --out FILE)",
                file=sys.stderr,
            )
            return 1
        return 0  # `ledger export | head` stops reading on purpose: not an error of ours
