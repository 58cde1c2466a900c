"""An account's past holdings, prices, cost basis and ledger counters at regular steps: pure, no I/O.

Holdings at a past time come from walking the ledger backwards from the balances taken at
`balances_ms`: each trade and transfer after that time is undone. This is exact wherever the ledger is
complete between the step and the balances, and it is wrong before the time from which the ledger is
complete (a record the ledger never saw is not undone), so no step earlier than `complete_since_ms` is
produced. Where the walk gives a negative holding, a record is missing after that point (or a transfer's
amount leaves out a fee that was also taken): that asset's series begin after the last such moment and
a Notice says so.

Cost basis, realized profit and net deposits are those `costbasis.compute` gives over the records up to
each step, each record priced by `price_at` and each step's holdings by `step_price` (both routing as
pricing.routes says, over one price history), so they join the live exporter's figures without a jump
when it prices the records the same way. The cost basis
and unrealized profit of an asset are only given at steps where the ledger accounts for the whole
holding (its replayed quantity equals the walked one): a cost for part of what is held would be a
wrong number shown as real.

Trade amounts move holdings exactly as in costbasis (both use Trade.moves()): a buy receives the
quantity and pays the gross plus fee and tax in the quote asset, a sale the reverse; on a pair that
takes commission from the numerator a buy's fee and tax come off the quantity received instead; a
transfer moves its `amount`, its fee not taken again (the API does not say whether `amount` includes it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, localcontext

from exporter.api.records import Trade, Transfer
from exporter.config.activity_settings import COST_METHODS, CostMethod
from exporter.ledger.costbasis import CONTEXT, PriceAt, Replay, order
from exporter.ledger.counters import Counted, LedgerCounters
from exporter.ledger.returns import UnitTrack

MAX_STEPS = 100_000  # a year at 5.3 minutes; kept bounded because every series keeps one value per step
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # sums and products never round
_ZERO = Decimal(0)

Record = Trade | Transfer
Position = tuple[Decimal, Decimal, Decimal]
"""(quantity, cost, realized) of one asset in one valuation currency, as the replay has it at a step."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What to reconstruct: steps on the `step_ms` grid in [since_ms, until_ms), valued in `currencies`."""

    since_ms: int
    until_ms: int
    step_ms: int
    currencies: tuple[str, ...]
    method: CostMethod = "average"

    def __post_init__(self) -> None:
        if self.step_ms <= 0:
            raise ValueError(f"step: must be positive, got {self.step_ms} ms")
        if self.since_ms >= self.until_ms:
            raise ValueError(f"since ({iso(self.since_ms)}) must be before until ({iso(self.until_ms)})")
        if not self.currencies:
            raise ValueError("currencies: at least one valuation currency is needed")
        if self.method not in COST_METHODS:
            raise ValueError(f"method: {self.method!r} is not one of {', '.join(COST_METHODS)}")
        count = len(self.steps())
        if count > MAX_STEPS:
            raise ValueError(f"step: {count} steps between since and until, more than {MAX_STEPS}; widen it")

    def steps(self, since_ms: int | None = None, until_ms: int | None = None) -> range:
        """Step times in ms: multiples of step_ms (whole hours for 1h, UTC midnights for 1d) in range."""
        since = self.since_ms if since_ms is None else max(since_ms, self.since_ms)
        until = self.until_ms if until_ms is None else min(until_ms, self.until_ms)
        first = -(-since // self.step_ms) * self.step_ms
        return range(first, max(first, until), self.step_ms)


@dataclass(frozen=True)
class AccountHistory:
    """One account's inputs: balances now, and the ledger's records (all of them, oldest or not).

    `complete_since_ms` is the time from which the ledger holds every record of every endpoint (the
    latest of the three sync cursors' backfilled_to_ms, or activity.since); None means the whole history.
    """

    account: str
    balances: Mapping[str, Decimal]
    balances_ms: int
    trades: Sequence[Trade]
    transfers: Sequence[Transfer]
    complete_since_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the caller should tell the user: a gap or a cut in what was reconstructed."""

    account: str
    code: str  # incomplete_history, after_balances, negative_holding, partial_cost_basis, unpriced, ...
    message: str
    asset: str | None = None

    def __str__(self) -> str:
        return f"account {self.account}: {self.message}"


@dataclass
class Timeline:
    """Everything one account's series need, one value per step (list index = step index)."""

    account: str
    steps: range
    currencies: tuple[str, ...]
    holdings: dict[str, list[Decimal]] = field(default_factory=dict)
    consistent_from: dict[str, int] = field(default_factory=dict)  # asset -> first consistent step
    balance_from: dict[str, int] = field(default_factory=dict)  # asset -> first step of its series
    prices: dict[tuple[str, str], list[Decimal | None]] = field(default_factory=dict)  # from balance_from
    positions: dict[tuple[str, str], list[Position | None]] = field(default_factory=dict)
    net_deposits: dict[str, list[Decimal]] = field(default_factory=dict)
    counters: dict[Counted, dict[tuple[str, ...], list[Decimal | int]]] = field(default_factory=dict)
    # unit value (issue 17): per currency, the units outstanding at each step; None where unknown or
    # where the ledger's quantities do not add up to the walked holdings (value with no units behind it).
    units: dict[str, list[Decimal | None]] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)

    @property
    def portfolio_from(self) -> int:
        """First step at which every asset's holding is known, so the portfolio can be summed."""
        return max(self.consistent_from.values(), default=0)

    def price(self, asset: str, currency: str, index: int) -> Decimal | None:
        """The unit price kept for a step of the asset's balance series, None when unpriced."""
        return self.prices[asset, currency][index - self.balance_from[asset]]

    def cost_known(self, asset: str, currency: str, index: int) -> Position | None:
        """The replayed position when it accounts for the whole holding at that step, else None."""
        positions = self.positions.get((asset, currency))
        position = None if positions is None else positions[index]
        if position is None or position[0] != self.holdings[asset][index]:
            return None
        return position if index >= self.consistent_from[asset] else None


def iso(ms: int) -> str:
    """A Unix time in ms as ISO 8601 UTC, for messages."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def deltas(record: Record) -> tuple[tuple[str, Decimal], ...]:
    """How a record changes holdings, per asset (computed in the caller's decimal context)."""
    if isinstance(record, Transfer):
        return () if record.currency is None else ((record.currency, record.amount),)
    base, quote = record.moves()
    return ((record.base, base), (record.quote, quote))


def reconstruct(
    history: AccountHistory, plan: Plan, price_at: PriceAt, step_price: PriceAt | None = None
) -> Timeline:
    """Rebuild one account's holdings, prices, positions and counters at each step of the plan.

    `price_at` values the records (cost basis, net deposits, the unit value's flows), `step_price`
    (default `price_at`) the holdings at each step.
    """
    account = history.account
    currencies = tuple(dict.fromkeys(c.upper() for c in plan.currencies))
    steps = plan.steps(history.complete_since_ms, history.balances_ms + 1)
    timeline = Timeline(account, steps, currencies)
    notices = timeline.notices
    if history.complete_since_ms is not None and history.complete_since_ms > plan.since_ms:
        notices.append(
            Notice(
                account,
                "incomplete_history",
                f"the ledger is complete only from {iso(history.complete_since_ms)};"
                " nothing earlier is written",
            )
        )
    if history.balances_ms + 1 < plan.until_ms:
        notices.append(
            Notice(
                account,
                "after_balances",
                f"the balances were taken at {iso(history.balances_ms)}; nothing later is written",
            )
        )
    records: list[Record] = order([*history.trades, *history.transfers])
    newer = sum(1 for r in records if r.timestamp_ms > history.balances_ms)
    if newer:
        notices.append(
            Notice(
                account,
                "after_balances",
                f"{newer} ledger records newer than the balances ({iso(history.balances_ms)}) were left out",
            )
        )
        records = [r for r in records if r.timestamp_ms <= history.balances_ms]
    unattributed = sum(1 for r in records if isinstance(r, Transfer) and r.currency is None)
    if unattributed:
        notices.append(
            Notice(account, "unattributed", f"{unattributed} transfers name no currency and were left out")
        )
    if not steps:
        notices.append(Notice(account, "empty", "no step falls inside the range; nothing is written"))
        return timeline
    _walk(timeline, history.balances, records)
    # One price history behind records and steps, routed alike (pricing.routes), so a cost and the
    # value it is set against never come from two different price sources. Two functions all the same:
    # a record stamped on a step (an opening at a `since` on the hour) is valued as the live exporter
    # values a record, not as the step's price.
    _replay(timeline, records, price_at, plan.method)
    _price(timeline, price_at if step_price is None else step_price)
    _check_costs(timeline)
    return timeline


def _walk(timeline: Timeline, balances: Mapping[str, Decimal], records: Sequence[Record]) -> None:
    """Fill holdings by undoing records newest first; note where a holding would be negative."""
    steps = timeline.steps
    assets = sorted({*balances, *(asset for r in records for asset, _ in deltas(r))})
    held = {asset: balances.get(asset, _ZERO) for asset in assets}
    holdings = {asset: [_ZERO] * len(steps) for asset in assets}
    negative: dict[str, tuple[int, Decimal]] = {a: (steps[-1] + 1, q) for a, q in held.items() if q < 0}
    position = len(records)
    with localcontext(EXACT):
        for index in range(len(steps) - 1, -1, -1):
            time = steps[index]
            while position and records[position - 1].timestamp_ms > time:
                position -= 1
                record = records[position]
                for asset, delta in deltas(record):
                    left = held[asset] = held[asset] - delta
                    if left < 0 and asset not in negative:
                        negative[asset] = (record.timestamp_ms, left)
            for asset in assets:
                holdings[asset][index] = held[asset]
    timeline.holdings = holdings
    for asset in assets:
        since, amount = negative.get(asset, (steps[0], _ZERO))
        first = _first_step_at(steps, since)
        timeline.consistent_from[asset] = first
        if first > 0:
            where = f"from {iso(steps[first])}" if first < len(steps) else "nowhere in the range"
            timeline.notices.append(
                Notice(
                    timeline.account,
                    "negative_holding",
                    f"{asset}: walking the ledger back from the balances gives {amount} before "
                    f"{iso(min(since, steps[-1]))}: a record is missing after that time (or a transfer "
                    f"amount leaves out its fee); its series and the portfolio value begin {where}",
                    asset,
                )
            )
        nonzero = next((i for i in range(first, len(steps)) if holdings[asset][i] != 0), None)
        if nonzero is not None:  # as live: an asset reports once it has been held
            timeline.balance_from[asset] = nonzero


def _first_step_at(steps: range, ms: int) -> int:
    """Index of the first step at or after `ms` (len(steps) when none)."""
    if ms <= steps[0]:
        return 0
    return min(len(steps), -(-(ms - steps[0]) // steps.step))


def _replay(timeline: Timeline, records: Sequence[Record], price_at: PriceAt, method: CostMethod) -> None:
    """Replay the ledger forwards, keeping positions, net deposits and counters at each step."""
    steps = timeline.steps
    last = steps[-1]
    records = [r for r in records if r.timestamp_ms <= last]
    replays = {c: Replay(c, price_at, method) for c in timeline.currencies}
    assets = sorted({asset for r in records for asset, _ in deltas(r)})
    positions: dict[tuple[str, str], list[Position | None]] = {
        (a, c): [] for a in assets for c in timeline.currencies
    }
    net: dict[str, list[Decimal]] = {c: [] for c in timeline.currencies}
    counters = LedgerCounters()
    counters.start_at_zero(records)  # every key that will count starts at zero, so rate() sees each rise
    series: dict[Counted, dict[tuple[str, ...], list[Decimal | int]]] = {
        counted: {key: [] for key in keys} for counted, keys in counters.totals.items()
    }
    previous: dict[tuple[str, str], Position | None] = dict.fromkeys(positions)
    tracks = [UnitTrack(c, price_at) for c in timeline.currencies]
    units: dict[str, list[Decimal | None]] = {c: [] for c in timeline.currencies}
    position = 0
    # The counters sum under the replay's context too.
    with localcontext(CONTEXT):
        for time in steps:
            while position < len(records) and records[position].timestamp_ms <= time:
                record = records[position]
                position += 1
                for replay in replays.values():
                    replay.apply(record)
                counters.add(record)
                for track in tracks:
                    track.apply(record)
            agree = (
                _agrees(timeline, tracks[0].quantities.held, len(units[tracks[0].currency]))
                if tracks
                else False
            )
            for track in tracks:
                units[track.currency].append(track.units if agree else None)
            for currency, replay in replays.items():
                net[currency].append(replay.net_deposits)
                for asset in assets:
                    key = (asset, currency)
                    now = replay.position(asset)
                    before = previous[key]
                    if now is not None and before == now:
                        now = before  # unchanged: share the tuple, so a quiet step costs one reference
                    previous[key] = now
                    positions[key].append(now)
            for counted, totals in counters.totals.items():
                for labels, value in totals.items():
                    series[counted][labels].append(value)
    timeline.positions = positions
    timeline.net_deposits = net
    timeline.counters = series
    timeline.units = units


def _agrees(timeline: Timeline, held: Mapping[str, Decimal], index: int) -> bool:
    """Whether the ledger's quantities are the walked holdings at a step (the units count them all)."""
    return all(
        index >= timeline.consistent_from[asset] and held.get(asset, _ZERO) == values[index]
        for asset, values in timeline.holdings.items()
    )


def _price(timeline: Timeline, price_at: PriceAt) -> None:
    """Price every asset at each step of its balance series; count the steps left unpriced."""
    steps = timeline.steps
    for asset, first in sorted(timeline.balance_from.items()):
        for currency in timeline.currencies:
            prices = [price_at(asset, currency, steps[i]) for i in range(first, len(steps))]
            timeline.prices[asset, currency] = prices
            missing = sum(1 for i, p in enumerate(prices, first) if p is None and timeline.holdings[asset][i])
            if missing:
                timeline.notices.append(
                    Notice(
                        timeline.account,
                        "unpriced",
                        f"{asset}: no price in {currency} at {missing} of {len(steps) - first} steps; "
                        "its value is left out there and counted in btcturk_unpriced_assets",
                        asset,
                    )
                )


def _check_costs(timeline: Timeline) -> None:
    """Say where the ledger does not account for the whole holding (its cost basis is left out there)."""
    steps = timeline.steps
    for asset, first in sorted(timeline.balance_from.items()):
        for currency in timeline.currencies:
            gaps = [i for i in range(first, len(steps)) if timeline.cost_known(asset, currency, i) is None]
            if not gaps:
                continue
            positions = timeline.positions.get((asset, currency))
            position = None if positions is None else positions[gaps[0]]
            accounted = _ZERO if position is None else position[0]
            held = timeline.holdings[asset][gaps[0]]
            timeline.notices.append(
                Notice(
                    timeline.account,
                    "partial_cost_basis",
                    f"{asset}: the ledger accounts for {accounted} of the {held} "
                    f"held at {iso(steps[gaps[0]])}; cost basis and unrealized profit in {currency} are "
                    f"left out at {len(gaps)} of {len(steps) - first} steps",
                    asset,
                )
            )
