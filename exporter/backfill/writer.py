"""Write reconstructed timelines as one OpenMetrics file for `promtool tsdb create-blocks-from openmetrics`.

The file carries the live exporter's names and labels (balance, value, portfolio and unpriced gauges
from metrics/families.py, profit gauges and ledger counters from metrics/activity_families.py) and
never its health metrics. Families are written one at a time, every account's series in each, every
step of a series before the next series: the order OpenMetrics asks for. Only the timelines are held
in memory (one value per step and series); each series' lines are formatted and written as it goes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TextIO

from exporter.backfill.openmetrics import OpenMetricsWriter
from exporter.backfill.timeline import EXACT, AccountHistory, Notice, Plan, Timeline, reconstruct
from exporter.ledger.costbasis import PriceAt
from exporter.ledger.returns import unit_value
from exporter.metrics.activity_families import (
    ACTIVITY_FAMILIES,
    ASSET_COST_BASIS,
    ASSET_REALIZED_PROFIT,
    ASSET_UNREALIZED_PROFIT,
    COUNTER_FAMILY,
    NET_DEPOSITS,
    PORTFOLIO_UNIT_VALUE,
    Family,
)
from exporter.metrics.exposition import Number
from exporter.metrics.families import BALANCE_FAMILIES, VALUE_FAMILIES

_HELP = dict(BALANCE_FAMILIES + VALUE_FAMILIES)
BALANCE = Family("btcturk_balance", "gauge", _HELP["btcturk_balance"], ("account", "asset"))
BALANCE_VALUE = Family(
    "btcturk_balance_value", "gauge", _HELP["btcturk_balance_value"], ("account", "asset", "currency")
)
PORTFOLIO_VALUE = Family(
    "btcturk_portfolio_value", "gauge", _HELP["btcturk_portfolio_value"], ("account", "currency")
)
UNPRICED_ASSETS = Family(
    "btcturk_unpriced_assets", "gauge", _HELP["btcturk_unpriced_assets"], ("account", "currency")
)
# The bundle's recording rule behind the Profit panel (prometheus/rules.yml), written directly: promtool's
# rule backfill evaluates at offsets from the hour, where hourly samples are past Prometheus's lookback.
# tests/integration/test_backfill_joins_live.py checks the values against the rule's own expression.
PORTFOLIO_PROFIT = Family(
    "account_currency:btcturk_portfolio_profit:value_minus_net_deposits",
    "gauge",
    "Portfolio value minus net deposits (the recording rule of prometheus/rules.yml), backfilled.",
    ("account", "currency"),
)
FAMILIES: tuple[Family, ...] = (
    BALANCE,
    BALANCE_VALUE,
    PORTFOLIO_VALUE,
    UNPRICED_ASSETS,
    *ACTIVITY_FAMILIES,
    PORTFOLIO_PROFIT,
    PORTFOLIO_UNIT_VALUE,
)

_COUNTED = {family.name: counted for counted, family in COUNTER_FAMILY.items()}

Points = Iterable[tuple[int, Number]]
Series = tuple[tuple[str, ...], Points]  # label values (account first) and the points
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of the work, for a progress line on stderr."""

    stage: str  # "reconstruct" (name = account) or "write" (name = family)
    name: str
    done: int
    total: int
    samples: int = 0  # samples written so far (write stage)

    def __str__(self) -> str:
        if self.stage == "reconstruct":
            return f"backfill: reconstructed account {self.name} ({self.done}/{self.total})"
        return f"backfill: wrote {self.name} ({self.done}/{self.total} families, {self.samples} samples)"


@dataclass(frozen=True, slots=True)
class Summary:
    """What a backfill wrote: counts, the time range of its samples (ms), and the notices to show."""

    accounts: int
    families: int
    series: int
    samples: int
    first_ms: int | None
    last_ms: int | None
    notices: tuple[Notice, ...]


ProgressCallback = Callable[[Progress], None]


def backfill(
    out: TextIO,
    histories: Sequence[AccountHistory],
    plan: Plan,
    price_at: PriceAt,
    progress: ProgressCallback | None = None,
    target: Labels = (),
    step_price: PriceAt | None = None,
) -> Summary:
    """Reconstruct every account and write them all as one OpenMetrics file ending in `# EOF`.

    `target` holds the labels Prometheus attaches to the live series (`job`, `instance`), added to
    every series so that the past and the live samples are one series. `price_at` values the records,
    `step_price` (default `price_at`) the holdings at each step (timeline.reconstruct).
    """
    names = [h.account for h in histories]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"account {duplicates[0]!r} given twice")
    timelines = []
    for done, history in enumerate(sorted(histories, key=lambda h: h.account), 1):
        timelines.append(reconstruct(history, plan, price_at, step_price))
        if progress:
            progress(Progress("reconstruct", history.account, done, len(histories)))
    return write_timelines(out, timelines, progress, target)


def write_timelines(
    out: TextIO,
    timelines: Sequence[Timeline],
    progress: ProgressCallback | None = None,
    target: Labels = (),
) -> Summary:
    """Write timelines family by family, account by account, series by series; close with `# EOF`."""
    clash = sorted({name for name, _ in target} & {label for f in FAMILIES for label in f.labels})
    if clash:
        raise ValueError(f"target label {clash[0]!r} is already a label of the exported series")
    writer = OpenMetricsWriter(out)
    ordered = sorted(timelines, key=lambda t: t.account)
    for done, family in enumerate(FAMILIES, 1):
        writer.family(family.name, family.kind, family.help)
        for timeline in ordered:
            for values, points in sorted(series_of(family, timeline), key=lambda s: s[0]):
                writer.series((*zip(family.labels, values, strict=True), *target), points)
        if progress:
            progress(Progress("write", family.name, done, len(FAMILIES), writer.samples))
    written = writer.close()
    return Summary(
        accounts=len(timelines),
        families=written.families,
        series=written.series,
        samples=written.samples,
        first_ms=written.first_ms,
        last_ms=written.last_ms,
        notices=tuple(n for t in ordered for n in t.notices),
    )


def series_of(family: Family, t: Timeline) -> Iterator[Series]:
    """One account's series of one family, each with its points generated lazily."""
    account, steps = t.account, t.steps
    if family is BALANCE:
        for asset, first in t.balance_from.items():
            yield (account, asset), _tail(steps, t.holdings[asset], first)
    elif family is BALANCE_VALUE:
        for asset in t.balance_from:
            for currency in t.currencies:
                yield (account, asset, currency), _values(t, asset, currency)
    elif family is PORTFOLIO_VALUE or family is UNPRICED_ASSETS:
        for currency in t.currencies:
            yield (account, currency), _portfolio(t, currency, family is UNPRICED_ASSETS)
    elif family is ASSET_COST_BASIS or family is ASSET_UNREALIZED_PROFIT:
        for asset in t.balance_from:
            for currency in t.currencies:
                yield (account, asset, currency), _costs(t, asset, currency, family is ASSET_COST_BASIS)
    elif family is ASSET_REALIZED_PROFIT:
        for (asset, currency), positions in t.positions.items():
            yield (
                (account, asset, currency),
                ((steps[i], p[2]) for i, p in enumerate(positions) if p is not None),
            )
    elif family is NET_DEPOSITS:
        for currency, values in t.net_deposits.items():
            yield (account, currency), zip(steps, values, strict=True)
    elif family is PORTFOLIO_PROFIT:
        for currency, net in t.net_deposits.items():
            if currency in t.currencies:
                yield (account, currency), _profit(t, currency, net)
    elif family is PORTFOLIO_UNIT_VALUE:
        for currency, units in t.units.items():
            yield (account, currency), _unit_values(t, currency, units)
    else:
        counted = _COUNTED[family.name]
        for key, counts in t.counters.get(counted, {}).items():
            yield (account, *key), zip(steps, counts, strict=True)


def _tail(steps: range, values: Sequence[Decimal], first: int) -> Iterator[tuple[int, Decimal]]:
    for i in range(first, len(steps)):
        yield steps[i], values[i]


def _values(t: Timeline, asset: str, currency: str) -> Iterator[tuple[int, Decimal]]:
    held = t.holdings[asset]
    for i in range(t.balance_from[asset], len(t.steps)):
        price = t.price(asset, currency, i)
        if price is not None:
            yield t.steps[i], EXACT.multiply(held[i], price)


def _portfolio(t: Timeline, currency: str, count_unpriced: bool) -> Iterator[tuple[int, Number]]:
    """Sum of the priced assets (as live), or how many held assets had no price, at each step."""
    assets = list(t.balance_from.items())
    for i in range(t.portfolio_from, len(t.steps)):
        total, unpriced = Decimal(0), 0
        for asset, first in assets:
            held = t.holdings[asset][i]
            if i < first or held == 0:
                continue
            price = t.price(asset, currency, i)
            if price is None:
                unpriced += 1
            else:
                total = EXACT.add(total, EXACT.multiply(held, price))
        yield t.steps[i], unpriced if count_unpriced else total


def _profit(t: Timeline, currency: str, net: Sequence[Decimal]) -> Iterator[tuple[int, Decimal]]:
    """Portfolio value minus net deposits, at the steps that have both (as the rule's vector match)."""
    first = t.portfolio_from
    for (when, value), deposited in zip(_portfolio(t, currency, False), net[first:], strict=True):
        yield when, EXACT.subtract(Decimal(value), deposited)


def _costs(t: Timeline, asset: str, currency: str, cost: bool) -> Iterator[tuple[int, Decimal]]:
    """Cost basis, or unrealized profit, where the ledger accounts for the whole holding."""
    for i in range(t.balance_from[asset], len(t.steps)):
        position = t.cost_known(asset, currency, i)
        if position is None:
            continue
        if cost:
            yield t.steps[i], position[1]
            continue
        price = t.price(asset, currency, i)
        if price is not None:
            yield t.steps[i], EXACT.subtract(EXACT.multiply(position[0], price), position[1])


def _unit_values(
    t: Timeline, currency: str, units: Sequence[Decimal | None]
) -> Iterator[tuple[int, Decimal]]:
    """The portfolio value over the units outstanding, at the steps where every holding is priced
    and the units are known (as live: absent otherwise)."""
    first = t.portfolio_from
    values = zip(_portfolio(t, currency, False), _portfolio(t, currency, True), strict=True)
    for ((when, value), (_, unpriced)), held_units in zip(values, units[first:], strict=True):
        found = unit_value(Decimal(value), held_units) if unpriced == 0 else None
        if found is not None:
            yield when, found
