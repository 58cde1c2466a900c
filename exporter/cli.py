"""The command line's one entry (`btcturk-exporter`, `python -m exporter`): a subcommand or the exporter.

`ledger export|report|holdings` and `backfill` go to commands/dispatch.py, each with its own flags;
any other command line is the exporter's own (serve.py).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from exporter.commands.dispatch import SUBCOMMANDS
from exporter.commands.dispatch import run as run_command

# Flags every subcommand takes too, which may come before it: the image's entrypoint is
# `btcturk-exporter --storage.path=...`, so `docker run IMAGE backfill` arrives as
# `--storage.path=... backfill`.
SHARED_FLAGS = ("--storage.path", "--config.file")


def subcommand_argv(argv: Sequence[str]) -> list[str] | None:
    """A subcommand's argv (`backfill ...`, `ledger export ...`), the shared flags given before it
    moved just after it, where a later one of the user's own still wins; None for the exporter."""
    lead: list[str] = []
    i = 0
    while i < len(argv) and argv[i].split("=", 1)[0] in SHARED_FLAGS:
        width = 1 if "=" in argv[i] else 2
        lead += argv[i : i + width]
        i += width
    if i >= len(argv) or argv[i] not in SUBCOMMANDS:
        return None
    words = 2 if argv[i : i + 2] == ["ledger", "export"] else 1
    return [*argv[i : i + words], *lead, *argv[i + words :]]


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand, or the exporter until SIGTERM or SIGINT; return the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if (command := subcommand_argv(argv)) is not None:  # `ledger export`, `backfill`: their own flags
        return run_command(command)
    # Deferred, for start-up time: the exporter's server, pipeline and demo bring in the whole
    # package with requests, tenacity and prometheus_client, which a ledger subcommand never uses.
    from exporter.serve import serve

    return serve(argv)
