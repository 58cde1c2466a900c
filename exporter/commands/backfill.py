"""`btcturk-exporter backfill`: sync the ledger, take the balances, fill prices, write the OpenMetrics file.

The order matters. The balances are taken first and the ledger synced after them, so the ledger holds
every record up to the balances (a record newer than them is left out of the walk, with a notice);
taken the other way round, a trade between the sync and the balances would make every step before
it wrong. The file ends where the exporter's own scrapes begin (`live_since_ms` in the ledger's state,
written at the first successful live poll), so the two never overlap.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from exporter.activity.sync import ActivitySync
from exporter.api import retries
from exporter.api.client import BALANCES, ApiError
from exporter.api.parsing import Balance
from exporter.api.records import Trade, Transfer
from exporter.backfill.timeline import AccountHistory, Plan, iso
from exporter.backfill.writer import Progress, Summary, backfill
from exporter.commands.ledger import (
    PROG,
    CommandError,
    add_common_flags,
    load,
    make_sync,
    parse_time,
    settings_of,
    storage_dir,
)
from exporter.config.activity_settings import ActivitySettings, parse_since
from exporter.config.loader import Account, Config
from exporter.durations import DurationError, parse_duration_ms
from exporter.ledger.store import KINDS, Ledger, LedgerError
from exporter.pricing.steps import step_hours, step_price_at

HOUR_S = 3600
MAX_STEP_MS = 7 * 86_400_000
LIVE_SINCE = "live_since_ms"


def build_backfill_parser() -> argparse.ArgumentParser:
    """Flags of `backfill`."""
    parser = argparse.ArgumentParser(
        prog=f"{PROG} backfill",
        description="Write the accounts' past, as the exporter would have shown it, as an OpenMetrics file "
        "for `promtool tsdb create-blocks-from openmetrics`.",
        allow_abbrev=False,
    )
    add_common_flags(parser)
    parser.add_argument(
        "--since", metavar="DATE", help="First step (default: as far back as the ledger is complete)."
    )
    parser.add_argument(
        "--until",
        metavar="DATE",
        help="End, not included (default: when the exporter's own scrapes began, else now).",
    )
    parser.add_argument("--step", default="1h", metavar="DURATION", help="Between samples (default 1h).")
    parser.add_argument("--out", metavar="FILE", help="Write here (default: standard output).")
    return parser


class Run:
    """One backfill's connections, call counts and progress lines."""

    def __init__(self, config: Config, settings: ActivitySettings, ledger: Ledger, err: TextIO) -> None:
        self.config, self.settings, self.ledger, self.err = config, settings, ledger, err
        self.calls: Counter[str] = Counter()
        self.sync: ActivitySync = make_sync(config, settings, ledger, self.count)

    def count(self, _account: str, endpoint: str, _code: str) -> None:
        self.calls[endpoint] += 1

    def say(self, line: str) -> None:
        print(f"backfill: {line}", file=self.err, flush=True)

    def balances(self, account: Account) -> tuple[int, dict[str, Decimal]]:
        """(time the balances were asked for, in ms, and each asset's total balance)."""
        rest = self.sync.client.rest
        asked_ms = rest.now_ms()
        policy = retries.Policy(self.config.timeout, backoff_max=30.0)

        def attempt(left: float) -> tuple[Balance, ...]:
            return rest.balances(account, lambda e, c: self.count("", e, c), time.monotonic() + left)

        try:
            answer = retries.call(
                attempt,
                gate=self.sync.gates.for_path(BALANCES),
                endpoint=BALANCES,
                who=f"account {account.name}",
                deadline=time.monotonic() + self.settings.request_deadline,
                policy=policy,
                clock=time.monotonic,
                sleep=time.sleep,
                rng=random.Random(),
            )
        except ApiError as exc:
            raise CommandError(f"balances of account {account.name}: {exc}") from None
        return asked_ms, {b.asset: b.balance for b in answer if b.balance}

    def synced(self, account: Account) -> bool:
        """Sync the account's three endpoints to now; True when every one's history is complete."""
        read = True
        for kind in KINDS:
            stored = 0
            while (progress := self.sync.sync_endpoint(account, kind)) is not None:
                stored += progress.stored
                if progress.done:
                    break
            read = read and progress is not None
            self.say(f"synced account {account.name} {kind}: {stored} records new or changed")
        # Read to now on this run, and from `since` on some run: the ledger holds every record.
        return read and all(self.ledger.cursor(account.name, kind).backfill_complete for kind in KINDS)


def _step_ms(text: str) -> int:
    try:
        return parse_duration_ms(text, MAX_STEP_MS)
    except DurationError as exc:
        raise CommandError(f"--step: {exc}") from None


def _needs(histories: Sequence[AccountHistory], plan: Plan) -> dict[tuple[str, str], set[int]]:
    """Every hour (start, s) at which each (asset, currency) of the steps and the records is priced."""
    needs: dict[tuple[str, str], set[int]] = {}

    def need(asset: str, hours: set[int]) -> None:
        for currency in plan.currencies:
            if asset != currency:
                needs.setdefault((asset, currency), set()).update(hours)

    for history in histories:
        steps = plan.steps(history.complete_since_ms, history.balances_ms + 1)
        hours_of_steps = step_hours(steps)
        records: list[Trade | Transfer] = [*history.trades, *history.transfers]
        assets = set(history.balances)
        for record in records:
            hour = {_hour(record.timestamp_ms)}
            if isinstance(record, Trade):
                assets |= {record.base, record.quote}
                need(record.base, hour)
                need(record.quote, hour)
            elif record.currency is not None:
                assets.add(record.currency)
                need(record.currency, hour)
        for asset in assets:
            need(asset, hours_of_steps)
    return needs


def _hour(ms: int) -> int:
    """The hour whose candle values a record at `ms`, as the live exporter values it."""
    return ms // 1000 // HOUR_S * HOUR_S


def complete_since(
    trades: Sequence[Trade], transfers: Sequence[Transfer], since: str, now_ms: int, step_ms: int
) -> int:
    """From when the ledger holds every record: `since`, but never before the step before its first record.

    Every endpoint's sync has reached now from `since`. A duration is measured from now, which is no
    earlier than from the first sync. The first record bounds it too: the sync does not fetch again
    what lies before the `since` of its first backfill, so a `since` moved earlier afterwards would
    claim history the ledger never read. Steps before the first record would show only zeros anyway.
    """
    bound = parse_since(since, now_ms)
    times = [t.timestamp_ms for t in trades] + [t.timestamp_ms for t in transfers]
    if not times:
        return bound
    return max(bound, (min(times) - 1) // step_ms * step_ms)


def backfill_main(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """Run `backfill` with these flags; progress and the summary go to `err`."""
    args = build_backfill_parser().parse_args(argv)
    since = None if args.since is None else parse_time(args.since, "--since")
    until = None if args.until is None else parse_time(args.until, "--until")
    step_ms = _step_ms(args.step)
    config = load(args, required=True)
    assert config is not None
    settings = settings_of(config, args)
    directory = storage_dir(args.storage_path)
    try:
        ledger = Ledger.open(directory)
    except LedgerError as exc:
        raise CommandError(str(exc)) from None
    with ledger:
        run = Run(config, settings, ledger, err)
        summary = _backfill(run, args, since, until, step_ms, out)
    if summary is None:
        return 1
    span = (
        "nothing" if summary.first_ms is None else f"{iso(summary.first_ms)} to {iso(summary.last_ms or 0)}"
    )
    calls = ", ".join(f"{path} {n}" for path, n in sorted(run.calls.items()))
    accounts = f"{summary.accounts} account" + ("" if summary.accounts == 1 else "s")
    run.say(
        f"done: {accounts}, {summary.series} series, {summary.samples} samples, {span}"
        f"{' into ' + args.out if args.out else ''}; {sum(run.calls.values())} API calls ({calls or 'none'})"
    )
    if not summary.samples:
        run.say("no samples were written (see the notices above)")
        return 1
    return 0


def _backfill(
    run: Run, args: argparse.Namespace, since: int | None, until: int | None, step_ms: int, out: TextIO
) -> Summary | None:
    rest = run.sync.client.rest
    try:
        rest.sync_clock(lambda e, c: run.count("", e, c))
    except ApiError as exc:
        raise CommandError(f"server time: {exc}") from None
    if run.sync.refresh_market() is None:
        raise CommandError(f"market status from {run.config.api_url} failed (see the log line above)")
    now_ms = rest.now_ms()
    histories = []
    for account in run.config.accounts:
        balances_ms, balances = run.balances(account)
        if not run.synced(account):
            run.say(
                f"account {account.name}: its transaction history could not be read to the end (see the "
                "log lines above); nothing is written for it"
            )
            continue
        trades, transfers = run.ledger.trades(account.name), run.ledger.transfers(account.name)
        complete = complete_since(trades, transfers, run.settings.since, now_ms, step_ms)
        histories.append(AccountHistory(account.name, balances, balances_ms, trades, transfers, complete))
    if not histories:
        run.say("no account could be synced; nothing is written")
        return None
    live = run.ledger.state(LIVE_SINCE)
    end = until if until is not None else int(live) if live else min(h.balances_ms for h in histories)
    start = since if since is not None else min(h.complete_since_ms or 0 for h in histories)
    run.say(
        f"steps of {args.step} from {iso(start)} to {iso(end)}"
        + (" (live_since_ms)" if live and until is None else "")
    )
    try:
        plan = Plan(start, end, step_ms, run.settings.currencies, run.settings.cost_basis)
    except ValueError as exc:
        raise CommandError(str(exc)) from None

    def report(pair: tuple[str, str], hours: int, error: ApiError | None) -> None:
        if error is None:
            run.say(f"prices of {''.join(pair)} ready ({hours} hours)")
        else:
            run.say(f"price history of {''.join(pair)}: {error}; its values are left out")

    prices = run.sync.prices
    prices.prefetch(_needs(histories, plan), now_ms / 1000, report)
    price_before = step_price_at(prices, step_ms)

    def progress(step: Progress) -> None:
        run.say(str(step).removeprefix("backfill: "))

    if args.out:
        target = Path(args.out)
        partial = target.with_name(target.name + ".partial")
        with partial.open("w", encoding="utf-8") as stream:
            summary = backfill(stream, histories, plan, price_before, progress)
        os.replace(partial, target)  # a failed run leaves no half-written file under the real name
    else:
        summary = backfill(out, histories, plan, price_before, progress)
        out.flush()
    for notice in summary.notices:
        run.say(str(notice))
    return summary
