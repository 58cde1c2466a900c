"""`btcturk-exporter backfill`: take the balances, sync the ledger, fill prices, write the OpenMetrics file.

The order matters. The balances are taken first and the ledger synced after them, so the ledger holds
every record up to the balances (a record newer than them is left out of the walk, with a notice);
taken the other way round, a trade between the sync and the balances would make every step before
it wrong. For the same reason one walk back from those balances is complete, so an account older
than `activity.since` whose ledger has no opening positions yet (no exporter ran on it) gets them
from that walk, by the reconciler's rule (activity/reconciler.py keep_openings). The file ends where
the exporter's own scrapes begin (`live_since_ms` in the ledger's state, written at the first
successful live poll), so the two never overlap.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import TextIO

from exporter.activity.reconcile import opening_quantities, walk_back
from exporter.activity.reconciler import keep_openings
from exporter.activity.sync import ActivitySync
from exporter.api import retries
from exporter.api.account import Account
from exporter.api.client import BALANCES
from exporter.api.errors import ApiError
from exporter.api.parsing import Balance
from exporter.api.records import KINDS, Trade, Transfer
from exporter.backfill.prometheus import LiveTarget, PrometheusError, live_target
from exporter.backfill.timeline import AccountHistory, Notice, Plan, iso
from exporter.backfill.writer import Progress, Summary, backfill
from exporter.commands.common import (
    PROG,
    CommandError,
    add_common_flags,
    load,
    moment,
    settings_of,
    storage_dir,
    url_flag,
)
from exporter.commands.fetch import make_sync
from exporter.config.activity_settings import ActivitySettings, parse_since
from exporter.config.loader import Config
from exporter.describe import FlagParser
from exporter.durations import DurationError, parse_duration_ms
from exporter.ledger.cursors import LIVE_SINCE
from exporter.ledger.schema import LedgerError
from exporter.ledger.store import Ledger
from exporter.pricing.steps import step_hours, step_price_at

HOUR_S = 3600
MAX_STEP_MS = 7 * 86_400_000
DEFAULT_JOB = "btcturk"


def build_backfill_parser() -> argparse.ArgumentParser:
    """Flags of `backfill`."""
    parser = FlagParser(
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
    parser.add_argument(
        "--label.job",
        dest="label_job",
        metavar="NAME",
        help=f"The job label Prometheus gives the exporter's series (default {DEFAULT_JOB}, the job of "
        "the bundled configs; with --prometheus.url, read from there).",
    )
    parser.add_argument(
        "--label.instance",
        dest="label_instance",
        metavar="HOST:PORT",
        help="The instance label Prometheus gives the exporter's series: the target it scrapes "
        "(with --prometheus.url, read from there).",
    )
    parser.add_argument(
        "--prometheus.url",
        dest="prometheus_url",
        metavar="URL",
        help="A Prometheus scraping the exporter: its job and instance labels, and where its samples "
        "begin (the default --until), are read from there.",
    )
    return parser


def target_of(args: argparse.Namespace) -> tuple[tuple[tuple[str, str], ...], LiveTarget | None]:
    """The job and instance labels of every series, and the live target they were read from, if any."""
    if args.prometheus_url:
        url = url_flag(args.prometheus_url, "--prometheus.url")
        try:
            live = live_target(url, args.label_job, args.label_instance)
        except PrometheusError as exc:
            raise CommandError(f"--prometheus.url: {exc}") from None
        return (("job", live.job), ("instance", live.instance)), live
    if not args.label_instance:
        raise CommandError(
            "give --prometheus.url (a Prometheus scraping the exporter) or --label.instance (the target "
            "it scrapes, e.g. localhost:9788): without the live series' instance label, the dashboards "
            "cannot show the backfilled past"
        )
    return (("job", args.label_job or DEFAULT_JOB), ("instance", args.label_instance)), None


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

    def balances(self, account: Account) -> tuple[int, tuple[Balance, ...]]:
        """(time the balances were asked for, in ms, and the account's balances)."""
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
            )
        except ApiError as exc:
            raise CommandError(f"balances of account {account.name}: {exc}") from None
        return asked_ms, answer

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

    def take_openings(self, name: str, balances: Sequence[Balance], at_ms: int) -> None:
        """Keep what one walk back from the balances says the account held at `since`, as its openings,
        when its ledger has none yet (no exporter ran on it); call it once the history is synced whole.

        The balances were asked for at `at_ms`, before the sync read every endpoint from `since` to
        past them, so the walk holds every record up to them. It is one walk, where the exporter waits
        for two polls in a row to agree: a record stamped before the balances that shows up only later
        (a withdrawal recorded when it settles) would make it wrong, and the exporter, run on this
        ledger, replaces the set once its own two walks say otherwise. An asset the walk drives below
        zero gets none (keep_openings): the steps show its negative holding, never a guessed one.
        """
        if self.ledger.openings(name):
            return  # the exporter's (two polls agreed on them) or an earlier run's: kept as they are
        if self.ledger.state(LIVE_SINCE) is not None:
            # An exporter polled on this ledger: openings are its reconciler's, whose two polls may
            # have agreed on none; one walk must not overrule them.
            return
        rebuilds = self.ledger.rebuilds  # the file the walked records are read from
        walks = walk_back(self.ledger.trades(name), self.ledger.transfers(name), balances, at_ms)
        try:
            keep_openings(self.ledger, name, opening_quantities(walks), rebuilds)
        except LedgerError as exc:
            raise CommandError(str(exc)) from None


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
        flows: set[int] = set()  # the unit value values every holding at each flow
        for record in records:
            hour = {_hour(record.timestamp_ms)}
            if isinstance(record, Trade):
                assets |= {record.base, record.quote}
                need(record.base, hour)
                need(record.quote, hour)
            elif record.currency is not None:
                assets.add(record.currency)
                need(record.currency, hour)
                flows |= hour
        for asset in assets:
            need(asset, hours_of_steps | flows)
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
    since = moment(args.since, "--since", timezone.utc)
    until = moment(args.until, "--until", timezone.utc)
    if since is not None and until is not None and since >= until:  # before any network call
        raise CommandError(f"--since: {args.since} is not before --until ({args.until})")
    step_ms = _step_ms(args.step)
    config = load(args, required=True)
    assert config is not None
    settings = settings_of(config, args)
    target, live = target_of(args)
    directory = storage_dir(args.storage_path)
    try:
        ledger = Ledger.open(directory)
    except LedgerError as exc:
        raise CommandError(str(exc)) from None
    with ledger:
        run = Run(config, settings, ledger, err)
        summary = _backfill(run, args, Window(since, until, step_ms), target, live, out)
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


@dataclass(frozen=True, slots=True)
class Window:
    """The flags' time range (ms; None where not given) and step."""

    since: int | None
    until: int | None
    step_ms: int


def _end(run: Run, window: Window, live: LiveTarget | None, histories: Sequence[AccountHistory]) -> int:
    """Where the file ends: --until, else where the live samples begin, else the balances' time."""
    if window.until is not None:
        return window.until
    if live is not None:
        return live.begins_ms
    started = run.ledger.state(LIVE_SINCE)
    return int(started) if started else min(h.balances_ms for h in histories)


def _end_source(window: Window, live: LiveTarget | None, run: Run) -> str:
    if window.until is not None:
        return ""
    if live is not None:
        return " (where Prometheus's live series begin)"
    return " (live_since_ms)" if run.ledger.state(LIVE_SINCE) else ""


def _backfill(
    run: Run,
    args: argparse.Namespace,
    window: Window,
    target: tuple[tuple[str, str], ...],
    live: LiveTarget | None,
    out: TextIO,
) -> Summary | None:
    since, step_ms = window.since, window.step_ms
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
        balances_ms, polled = run.balances(account)
        if not run.synced(account):
            # No openings from part of a history either: nothing of the account is written at all.
            run.say(
                f"account {account.name}: its transaction history could not be read to the end (see the "
                "log lines above); nothing is written for it"
            )
            continue
        run.take_openings(account.name, polled, balances_ms)
        balances = {b.asset: b.balance for b in polled if b.balance}
        trades, transfers = run.ledger.trades(account.name), run.ledger.history_transfers(account.name)
        complete = complete_since(trades, transfers, run.settings.since, now_ms, step_ms)
        histories.append(AccountHistory(account.name, balances, balances_ms, trades, transfers, complete))
    if not histories:
        run.say("no account could be synced; nothing is written")
        return None
    end = _end(run, window, live, histories)
    start = since if since is not None else min(h.complete_since_ms or 0 for h in histories)
    labels = ", ".join(f"{name}={value}" for name, value in target)
    run.say(f"steps of {args.step} from {iso(start)} to {iso(end)}{_end_source(window, live, run)}; {labels}")
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
    # Records as the live exporter values them (the candle holding them), steps by the last candle
    # closed by them: a record stamped on a step (an opening at a `since` on the hour) is still a record.
    step_price = step_price_at(prices)

    def progress(step: Progress) -> None:
        run.say(str(step).removeprefix("backfill: "))

    if args.out:
        path = Path(args.out)
        partial = path.with_name(path.name + ".partial")
        with partial.open("w", encoding="utf-8") as stream:
            summary = backfill(
                stream, histories, plan, prices.price_at, progress, target, step_price=step_price
            )
        os.replace(partial, path)  # a failed run leaves no half-written file under the real name
    else:
        summary = backfill(out, histories, plan, prices.price_at, progress, target, step_price=step_price)
        out.flush()
    for line in notice_lines(summary.notices):
        run.say(line)
    return summary


def notice_lines(notices: Sequence[Notice]) -> list[str]:
    """One line per notice, but one per account for the cost-basis gaps, which come per asset and currency."""
    lines: list[str] = []
    partial: dict[str, list[Notice]] = {}
    for notice in notices:
        if notice.code == "partial_cost_basis":
            partial.setdefault(notice.account, []).append(notice)
        else:
            lines.append(str(notice))
    for account, gaps in partial.items():
        assets = sorted({n.asset or "" for n in gaps})
        lines.append(
            f"account {account}: the ledger does not account for the whole holding of {len(assets)} "
            f"asset{'' if len(assets) == 1 else 's'} ({', '.join(assets)}) over part of the range, so their "
            f"cost basis and unrealized profit are left out there ({len(gaps)} series; first: "
            f"{gaps[0].message})"
        )
    return lines
