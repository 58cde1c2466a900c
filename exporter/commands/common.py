"""What the subcommands share: the program name, the one-line error, the common flags and their loading.

Each subcommand answers a bad flag with argparse's usage line and exit 2, and any other problem (no
ledger, unknown account, a configuration error, an API failure) with a CommandError: one line on
stderr and exit 1 (commands/dispatch.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from exporter.activity.sync import ActivitySync
from exporter.api.client import Client
from exporter.api.ratelimit import Gates
from exporter.api.transactions import ActivityClient
from exporter.config.activity_settings import ActivitySettings
from exporter.config.loader import Config, ConfigError, load_config
from exporter.ledger.store import DEFAULT_STORAGE_DIR, Ledger, LedgerError, ledger_path

PROG = "btcturk-exporter"
_TIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?Z?)?")


class CommandError(Exception):
    """A problem to report as one line on stderr, with exit status 1."""


def parse_time(text: str, flag: str) -> int:
    """Unix ms of `2025-01-31` (midnight UTC) or `2025-01-31T14:00[:00]Z`; CommandError naming the flag."""
    match = _TIME.fullmatch(text.strip())
    try:
        if match is None:
            raise ValueError
        day, hour, minute, second = match.groups()
        moment = datetime.strptime(day, "%Y-%m-%d").replace(
            hour=int(hour or 0), minute=int(minute or 0), second=int(second or 0), tzinfo=timezone.utc
        )
    except ValueError:
        raise CommandError(
            f"{flag}: expected a UTC date (2025-01-31) or time (2025-01-31T14:00:00Z), got {text[:40]!r}"
        ) from None
    return int(moment.timestamp()) * 1000


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """--config.file, --storage.path and --graph-api.url, shared by both subcommands."""
    parser.add_argument("--config.file", dest="config_file", metavar="PATH", help="YAML configuration file.")
    parser.add_argument(
        "--storage.path",
        dest="storage_path",
        default=DEFAULT_STORAGE_DIR + "/",
        metavar="DIR",
        help=f"Directory of the ledger file (default {DEFAULT_STORAGE_DIR}/).",
    )
    parser.add_argument(
        "--graph-api.url",
        dest="graph_api_url",
        metavar="URL",
        help="Where past prices come from (default: the configuration's, https://graph-api.btcturk.com).",
    )


def load(args: argparse.Namespace, *, required: bool) -> Config | None:
    """The configuration named by --config.file (or the BTCTURK_* variables when required)."""
    if args.config_file is None and not required:
        return None
    try:
        return load_config(args.config_file, os.environ)
    except ConfigError as exc:
        raise CommandError(str(exc).replace("\n", "; ")) from None


def settings_of(config: Config | None, args: argparse.Namespace) -> ActivitySettings:
    """Activity settings from the configuration, with --graph-api.url applied."""
    settings = ActivitySettings() if config is None else config.activity
    if args.graph_api_url:
        settings = dataclasses.replace(settings, graph_api_url=args.graph_api_url)
    return settings


def open_existing(storage: str) -> Ledger:
    """The ledger of a storage directory; CommandError when there is none yet or it cannot be read."""
    path = ledger_path(storage)
    if not path.is_file():
        raise CommandError(
            f"no ledger at {path}: start the exporter once, or run `{PROG} backfill --config.file FILE"
            f" --storage.path {storage}` to sync"
        )
    try:
        return Ledger(path)
    except LedgerError as exc:
        raise CommandError(str(exc)) from None


def make_sync(
    config: Config,
    settings: ActivitySettings,
    ledger: Ledger,
    on_request: Callable[[str, str, str], None] | None = None,
) -> ActivitySync:
    """A one-shot activity sync of every configured account, its price history on the ledger's cache."""
    rest = Client(config.api_url, config.timeout)
    client = ActivityClient(rest, Client(settings.graph_api_url, config.timeout))
    return ActivitySync(
        settings,
        config.accounts,
        client,
        ledger,
        gates=Gates(),
        on_snapshot=lambda _: None,
        on_request=on_request,
    )


def storage_dir(text: str) -> Path:
    """The storage directory, created when missing; CommandError when that fails."""
    path = Path(text)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"--storage.path: cannot create {path}: {exc.strerror}") from None
    return path
