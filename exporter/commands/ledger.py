"""`btcturk-exporter ledger export`: print the ledger's rows, valued at their time, with realised profit."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import TextIO

from exporter.api.errors import ApiError
from exporter.api.records import Trade, Transfer
from exporter.commands.common import (
    PROG,
    CommandError,
    add_common_flags,
    load,
    make_sync,
    open_existing,
    parse_time,
    settings_of,
)
from exporter.ledger import export
from exporter.ledger.costbasis import compute
from exporter.ledger.store import Ledger
from exporter.pricing.history import BRIDGES, PriceHistory


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
