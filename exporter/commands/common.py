"""What the subcommands share: the program name, the one-line error, the common flags, their loading and
the ledger readers' preamble (LedgerReader: configuration, cost basis, the ledger and its histories).

Each subcommand answers a bad flag with one line naming it and exit 2 (describe.FlagParser), and any
other problem (no ledger, unknown account, a configuration error, an API failure) with a CommandError:
one line on stderr and exit 1 (commands/dispatch.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import tzinfo
from pathlib import Path

from exporter.api.errors import ApiError
from exporter.api.records import Trade, Transfer
from exporter.config.activity_settings import COST_METHODS, ActivitySettings, CostMethod
from exporter.config.loader import Config, ConfigError, load_config
from exporter.config.report import DEFAULT_TIMEZONE, zone
from exporter.config.values import parse_api_url
from exporter.ledger.cursors import origin_key
from exporter.ledger.periods import parse_moment
from exporter.ledger.schema import LedgerError
from exporter.ledger.store import DEFAULT_STORAGE_DIR, Ledger, ledger_path
from exporter.pricing.history import PriceHistory, hours_of
from exporter.pricing.routes import BRIDGES

PROG = "btcturk-exporter"


class CommandError(Exception):
    """A problem to report as one line on stderr, with exit status 1."""


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


def url_flag(text: str, flag: str) -> str:
    """A URL flag's value, checked as the configuration's URLs are (http or https, a host and port,
    no user name or password, which the log lines naming it would show); CommandError naming it."""
    problems: list[str] = []
    url = parse_api_url(text, flag, problems, api_path_check=False)
    if url is None:
        raise CommandError(problems[0])
    return url


def settings_of(config: Config | None, args: argparse.Namespace) -> ActivitySettings:
    """Activity settings from the configuration, with --graph-api.url applied."""
    settings = ActivitySettings() if config is None else config.activity
    if args.graph_api_url:
        url = url_flag(args.graph_api_url, "--graph-api.url")
        settings = dataclasses.replace(settings, graph_api_url=url)
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


def storage_dir(text: str) -> Path:
    """The storage directory, created when missing; CommandError when that fails."""
    path = Path(text)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"--storage.path: cannot create {path}: {exc.strerror}") from None
    return path


Histories = dict[str, tuple[list[Trade], list[Transfer]]]


def add_cost_basis_flag(parser: argparse.ArgumentParser) -> None:
    """--cost-basis, which overrides activity.cost_basis."""
    parser.add_argument(
        "--cost-basis",
        dest="cost_basis",
        choices=COST_METHODS,
        help="How the cost of what is sold is taken (default: activity.cost_basis, itself average).",
    )


def method_of(args: argparse.Namespace, settings: ActivitySettings) -> CostMethod:
    """--cost-basis if given, else the configuration's activity.cost_basis."""
    method: CostMethod = args.cost_basis or settings.cost_basis
    return method


def add_tz_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """--tz, which overrides report.timezone."""
    parser.add_argument(
        "--tz",
        metavar="ZONE",
        help=f"IANA time zone {what} (default: report.timezone, itself {DEFAULT_TIMEZONE}).",
    )


def zone_of(args: argparse.Namespace, config: Config | None) -> tzinfo:
    """--tz if given, else the configuration's report.timezone; CommandError naming a bad one."""
    name = args.tz if args.tz is not None else config.report.timezone if config else DEFAULT_TIMEZONE
    try:
        return zone(name)
    except ValueError as exc:
        raise CommandError(f"--tz: {exc}") from None


def moment(text: str | None, flag: str, where: tzinfo) -> int | None:
    """A --since/--until/--at value in Unix ms (a date is midnight in `where`); CommandError if bad."""
    if text is None:
        return None
    try:
        return parse_moment(text, flag, where)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


@dataclasses.dataclass(frozen=True)
class LedgerReader:
    """What the ledger's readers (`ledger export`, `report`, `holdings`) resolve before reading.

    The configuration (None without --config.file), its activity settings with --graph-api.url
    applied, and the cost-basis method (--cost-basis, else activity.cost_basis).
    """

    args: argparse.Namespace
    config: Config | None
    settings: ActivitySettings
    method: CostMethod

    @classmethod
    def of(cls, args: argparse.Namespace) -> LedgerReader:
        """Resolve the common flags; CommandError on a configuration error."""
        config = load(args, required=False)
        settings = settings_of(config, args)
        return cls(args, config, settings, method_of(args, settings))

    @contextmanager
    def histories(self, until_ms: int | None = None) -> Iterator[tuple[Ledger, Histories]]:
        """The ledger of --storage.path read-only, and the histories of --account (else every account),
        with `until_ms` only their records before it.

        CommandError when there is no ledger, it cannot be read, or it has no such account.
        """
        with open_existing(self.args.storage_path) as ledger:
            names = accounts_of(ledger, self.config, self.args.account)
            yield ledger, read_histories(ledger, names, until_ms)

    def prices(
        self,
        ledger: Ledger,
        histories: Histories,
        currencies: Sequence[str],
        moments: Iterable[int] = (),
        until_ms: int | None = None,
    ) -> PriceHistory:
        """price_source() for these histories with this reader's configuration and settings; `until_ms`
        as they were read up to (histories())."""
        return price_source(ledger, self.config, self.settings, histories, currencies, moments, until_ms)


def cached_pairs(ledger: Ledger, assets: Iterable[str], quotes: Iterable[str]) -> set[tuple[str, str]]:
    """The pairs among `assets` x `quotes` whose candles the ledger has cached (routes without the API)."""
    found = set()
    for base in assets:
        for quote in quotes:
            if base != quote and any(ledger.state(f"prices:{r}:{base}{quote}") for r in ("60", "1D")):
                found.add((base, quote))
    return found


def accounts_of(ledger: Ledger, config: Config | None, account: str | None) -> list[str]:
    """The accounts to read: --account, checked against the ledger's and the configuration's, or all."""
    # A configured account with no records yet is known, and has no rows.
    known = sorted({*ledger.accounts(), *(a.name for a in config.accounts)} if config else ledger.accounts())
    if account is not None and account not in known:
        held = ", ".join(known) if known else "none yet"
        raise CommandError(f"--account: no account {account!r} in {ledger.path} (it holds: {held})")
    return [account] if account is not None else known


def history_start(ledger: Ledger, account: str) -> int | None:
    """Where the ledger's history of `account` begins (Unix ms: the earliest `activity.since` it was
    read from); None when it was never synced. What was held before that moment is not in the ledger."""
    text = ledger.state(origin_key(account))
    return None if text is None else int(text)


def read_histories(ledger: Ledger, names: Iterable[str], until_ms: int | None = None) -> Histories:
    """Each account's trades and transfers from the ledger (with `until_ms`, those before it), its
    openings among the transfers."""
    return {
        name: (ledger.trades(name, None, until_ms), ledger.history_transfers(name, None, until_ms))
        for name in names
    }


def price_source(
    ledger: Ledger,
    config: Config | None,
    settings: ActivitySettings,
    histories: Histories,
    currencies: Sequence[str],
    moments: Iterable[int] = (),
    until_ms: int | None = None,
) -> PriceHistory:
    """Past prices for valuing these histories in `currencies`, and every asset of them at `moments`.

    Without a configuration, only what the ledger's cache holds (no network); with one, what is
    missing is fetched first. Either way only closed candles price (PriceHistory.finals_only): a
    record in the hour still open has no value yet, as a record with no cached price. `until_ms`:
    the histories hold only the records before it (a reader that counts no later one); the routes
    are still those of the whole histories (_history_assets).
    """
    assets = _history_assets(ledger, histories, {*BRIDGES, *(c.upper() for c in currencies)}, until_ms)
    if config is None:
        prices = PriceHistory(ledger, lambda *_: ())
        prices.finals_only()
        prices.set_pairs(cached_pairs(ledger, assets, {*assets, *BRIDGES, *currencies}))
        return prices
    # Deferred, for start-up time: fetch.py brings in the API client and the activity pipeline
    # (requests, tenacity, prometheus_client), which a read without --config.file never uses.
    from exporter.commands.fetch import make_sync

    sync = make_sync(config, settings, ledger)
    if sync.refresh_market() is None:
        raise CommandError(f"market status from {config.api_url} failed (see the log line above)")
    prices = sync.prices
    prices.finals_only()
    # What to price, by (asset, currency) and hour: prefetch routes each as price_at will.
    needs: dict[tuple[str, str], set[int]] = {}
    for trades, transfers in histories.values():
        for want, hours in prices.needs(trades, transfers, currencies).items():
            needs.setdefault(want, set()).update(hours)
    hours = hours_of(moments)
    for asset in assets if hours else ():
        for currency in currencies:
            if asset.upper() != currency.upper():
                needs.setdefault((asset.upper(), currency.upper()), set()).update(hours)
    try:
        prices.prefetch(needs, sync.client.rest.now_ms() / 1000)
    except ApiError as exc:
        raise CommandError(f"price history: {exc}") from None
    return prices


def _history_assets(ledger: Ledger, histories: Histories, routed: set[str], until_ms: int | None) -> set[str]:
    """The assets of the histories; read up to `until_ms`, with those of `routed` the later records name.

    Offline, the pairs routes are made of are the cached ones among the history's assets
    (cached_pairs), so whether a bridge or valuation currency (`routed`) is among them can decide an
    earlier asset's route, even when only a later record names it. Any other later asset cannot be
    on a route of an earlier one: the later records are read only when one of `routed` is missing.
    """
    found = {a for t, f in histories.values() for a in _assets(t, f)}
    if until_ms is None or routed <= found:
        return found
    for name in histories:
        found |= routed & _assets(ledger.trades(name, until_ms), ledger.history_transfers(name, until_ms))
    return found


def _assets(trades: Iterable[Trade], transfers: Iterable[Transfer]) -> set[str]:
    found = {a for t in trades for a in (t.base, t.quote)}
    return found | {t.currency for t in transfers if t.currency is not None}
