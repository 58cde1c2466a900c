"""The `ledger export` and `backfill` subcommands: their flags, and what they share.

`btcturk-exporter ledger export ...` and `btcturk-exporter backfill ...` are dispatched here before the
exporter's own flags are parsed. Each answers a bad flag with argparse's usage line and exit 2, and
any other problem (no ledger, unknown account, a configuration error, an API failure) with one line on
stderr and exit 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from exporter.activity.sync import ActivitySync
from exporter.api.client import ApiError, Client
from exporter.api.ratelimit import Gates
from exporter.api.records import Trade, Transfer
from exporter.api.transactions import ActivityClient
from exporter.config.activity_settings import ActivitySettings
from exporter.config.loader import Config, ConfigError, load_config
from exporter.ledger import export
from exporter.ledger.costbasis import compute
from exporter.ledger.store import DEFAULT_STORAGE_DIR, Ledger, LedgerError, ledger_path
from exporter.logs import setup_logging
from exporter.pricing.history import BRIDGES, PriceHistory

PROG = "btcturk-exporter"
SUBCOMMANDS = ("ledger", "backfill")
_TIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?Z?)?")


class CommandError(Exception):
    """A problem to report as one line on stderr, with exit status 1."""


def activity_settings(config: Config) -> ActivitySettings:
    """The activity settings of a configuration."""
    return config.activity


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


def build_export_parser() -> argparse.ArgumentParser:
    """Flags of `ledger export`."""
    parser = argparse.ArgumentParser(
        prog=f"{PROG} ledger export",
        description="Print the ledger: one row per trade or transfer, with its value at its time and, "
        "for sales, the profit it realised.",
        allow_abbrev=False,
    )
    add_common_flags(parser)
    parser.add_argument("--account", metavar="NAME", help="Only this account (default: every one).")
    parser.add_argument("--since", metavar="DATE", help="Only records at or after this UTC date or time.")
    parser.add_argument("--format", dest="fmt", choices=export.FORMATS, default="csv")
    return parser


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
    settings = ActivitySettings() if config is None else activity_settings(config)
    if args.graph_api_url:
        settings = dataclasses.replace(settings, graph_api_url=args.graph_api_url)
    return settings


def open_existing(storage: str) -> Ledger:
    """The ledger of a storage directory, read-only; CommandError when there is none or it cannot be read.

    Read as it is: never migrated or written (what the export caches goes to an in-memory copy), so a
    read-only file, or one an older release left, is read without being changed.
    """
    path = ledger_path(storage)
    if not path.is_file():
        raise CommandError(
            f"no ledger at {path}: start the exporter once, or run `{PROG} backfill --config.file FILE"
            f" --storage.path {storage}` to sync"
        )
    try:
        return Ledger.read_only(path)
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


def cached_pairs(ledger: Ledger, assets: Iterable[str], quotes: Iterable[str]) -> set[tuple[str, str]]:
    """The pairs among `assets` x `quotes` whose candles the ledger has cached (routes without the API)."""
    found = set()
    for base in assets:
        for quote in quotes:
            if base != quote and any(ledger.state(f"prices:{r}:{base}{quote}") for r in ("60", "1D")):
                found.add((base, quote))
    return found


def ledger_export(argv: Sequence[str], out: TextIO) -> int:
    """`ledger export`: write the ledger's rows to `out`."""
    args = build_export_parser().parse_args(argv)
    since = None if args.since is None else parse_time(args.since, "--since")
    config = load(args, required=False)
    settings = settings_of(config, args)
    currency = settings.currencies[0]
    with open_existing(args.storage_path) as ledger:
        # A configured account with no records yet is known, and has no rows.
        known = sorted(
            {*ledger.accounts(), *(a.name for a in config.accounts)} if config else ledger.accounts()
        )
        if args.account is not None and args.account not in known:
            held = ", ".join(known) if known else "none yet"
            raise CommandError(f"--account: no account {args.account!r} in {ledger.path} (it holds: {held})")
        names = [args.account] if args.account is not None else known
        histories = {name: (ledger.trades(name), ledger.transfers(name)) for name in names}
        if config is None:
            prices = PriceHistory(ledger, lambda *_: ())
            assets = {a for t, f in histories.values() for a in _assets(t, f)}
            prices.set_pairs(cached_pairs(ledger, assets, {*assets, *BRIDGES, currency}))
        else:
            sync = make_sync(config, settings, ledger)
            if sync.refresh_market() is None:
                raise CommandError(f"market status from {config.api_url} failed (see the log line above)")
            prices = sync.prices
            needs: dict[tuple[str, str], set[int]] = {}
            for trades, transfers in histories.values():
                for pair, hours in prices.needs(trades, transfers, [currency]).items():
                    needs.setdefault(pair, set()).update(hours)
            try:
                prices.prefetch(needs, sync.client.rest.now_ms() / 1000)
            except ApiError as exc:
                raise CommandError(f"price history: {exc}") from None
        rows = []
        for name in names:
            trades, transfers = histories[name]
            basis = compute(
                trades, transfers, currency, prices.price_at, settings.cost_basis, keep_events=True
            )
            rows += [r for r in export.rows(name, basis) if since is None or r.timestamp_ms >= since]
    rows.sort(key=lambda r: (r.timestamp_ms, r.account))
    export.write(out, rows, args.fmt)
    return 0


def _assets(trades: Iterable[Trade], transfers: Iterable[Transfer]) -> set[str]:
    found = {a for t in trades for a in (t.base, t.quote)}
    return found | {t.currency for t in transfers if t.currency is not None}


def run(argv: Sequence[str]) -> int:
    """Run a subcommand (argv[0] is `ledger` or `backfill`); return its exit status."""
    # Imported here: the backfill's engine is only loaded when asked for.
    from exporter.commands.backfill import backfill_main

    setup_logging("info", "logfmt")
    logging.getLogger("exporter").setLevel(logging.INFO)
    try:
        if argv[0] == "backfill":
            return backfill_main(argv[1:], sys.stdout, sys.stderr)
        if len(argv) < 2 or argv[1] != "export":
            print(f"usage: {PROG} ledger export [flags]; see {PROG} ledger export --help", file=sys.stderr)
            return 2
        return ledger_export(argv[2:], sys.stdout)
    except CommandError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `| head` closed the pipe: not an error of ours
        # Python would report the failed flush of stdout at exit; point it at /dev/null instead.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def storage_dir(text: str) -> Path:
    """The storage directory, created when missing; CommandError when that fails."""
    path = Path(text)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"--storage.path: cannot create {path}: {exc.strerror}") from None
    return path
