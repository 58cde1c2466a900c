"""The activity families' exposition text: ledger counters, cost basis and profit, sync health, market.

Pure: an ActivityView and the fresh balance snapshots in, Prometheus text (0.0.4) out. Names, types,
labels and HELP come from activity_families. Unrealized profit is the ledger's holding valued live (the
prices and routes btcturk_balance_value uses) minus its cost basis, so it is absent while either side
is unknown rather than made up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal

from exporter.activity.endpoints import WINDOW_IGNORED
from exporter.activity.reconcile import STATES
from exporter.activity.state import ActivitySnapshot
from exporter.activity.store import ActivityView
from exporter.api.errors import REASONS
from exporter.api.parsing import Balance
from exporter.api.records import ENDPOINTS
from exporter.ledger.costbasis import CostBasis
from exporter.ledger.returns import unit_value
from exporter.metrics import activity_families as m
from exporter.metrics.activity_families import Family
from exporter.metrics.exposition import format_float, format_value, header, labels
from exporter.poll.snapshot import AccountSnapshot
from exporter.pricing.valuation import Market, value_balances

# Failure reasons every account's endpoints start at zero with, so rate() and increase() see the first.
SYNC_REASONS = (*REASONS, "truncated", "ledger", WINDOW_IGNORED)
_ZERO = Decimal(0)

Row = tuple[tuple[str, ...], str]  # one sample of a known family: label values in its order, value text


def _family(family: Family, rows: Iterable[Row]) -> str:
    lines = [
        f"{family.sample_name}{labels(zip(family.labels, values, strict=True))} {value}\n"
        for values, value in rows
    ]
    if not lines:
        return ""
    return header(family.sample_name, family.kind, family.help) + "".join(lines)


def _live_values(basis: CostBasis, index: Market | None, currency: str, price: str) -> Mapping[str, Decimal]:
    """The ledger's holdings valued like the balances (same prices and routes), per asset."""
    if index is None:
        return {}
    # The ledger's quantities, not the polled balances: a trade the sync has not read yet would
    # otherwise show as profit (its asset in the value, its cost missing) until the next sync.
    held = [
        Balance(p.asset, p.asset, p.quantity, p.quantity, _ZERO, _ZERO, _ZERO)
        for p in basis.positions.values()
        if p.quantity > 0
    ]
    valuation = value_balances(held, index, (currency,), price)
    return {v.asset: v.balance for v in valuation.values}


def _profit(
    view: ActivityView,
    balances: Mapping[str, AccountSnapshot],
    index: Market | None,
    currencies: Sequence[str],
    price: str,
) -> Iterator[tuple[Family, Row]]:
    for account in view.accounts:
        snapshot = view.snapshots.get(account)
        if snapshot is not None and all(snapshot.backfill_complete.values()):
            yield m.LEDGER_FIGURES_STALE, ((account,), "1" if snapshot.stale else "0")
        if snapshot is None or not snapshot.cost_basis:
            continue
        # No live prices (the ticker is stale or failing): no unrealized profit rather than a guess.
        priced = index if account in balances else None
        for currency, basis in snapshot.cost_basis.items():
            live = _live_values(basis, priced, currency, price)
            for asset, position in sorted(basis.positions.items()):
                key = (account, asset, currency)
                yield m.ASSET_COST_BASIS, (key, format_value(position.cost))
                yield m.ASSET_REALIZED_PROFIT, (key, format_value(position.realised))
                yield m.ASSET_SHORTFALL, (key, format_value(position.shortfall_quantity))
                yield m.ASSET_UNMATCHED_PROCEEDS, (key, format_value(position.unmatched_proceeds))
                if (value := live.get(asset)) is not None:
                    yield m.ASSET_UNREALIZED_PROFIT, (key, format_value(value - position.cost))
            yield m.NET_DEPOSITS, ((account, currency), format_value(basis.net_deposits))
            yield m.LEDGER_UNPRICED_RECORDS, ((account, currency), str(basis.unpriced))
        if snapshot.last_trade_ms is not None:
            yield m.LAST_TRADE, ((account,), format_float(snapshot.last_trade_ms / 1000))


def _unit_values(
    view: ActivityView,
    balances: Mapping[str, AccountSnapshot],
    index: Market | None,
    currencies: Sequence[str],
    price: str,
) -> Iterator[tuple[Family, Row]]:
    """The live portfolio value (btcturk_portfolio_value's) over the ledger's units outstanding;
    absent while the units are unknown, any holding is unpriced (so the value itself is) or does not
    reconcile with the ledger."""
    if index is None:
        return
    for account in view.accounts:
        snapshot = view.snapshots.get(account)
        polled = balances.get(account)
        # Stale units (a flow's price missing) over the live value would be a made-up return.
        if snapshot is None or polled is None or not snapshot.units or snapshot.stale:
            continue
        # Units count only what the ledger saw: a holding it does not add up to (history before
        # activity.since, a missing record) would be value without units, a made-up return.
        if any(b.balance != 0 and snapshot.reconciled.get(b.asset) != "match" for b in polled.balances):
            continue
        valuation = value_balances(polled.balances, index, currencies, price)
        unpriced = dict(valuation.unpriced)
        for currency, total in valuation.totals:
            if unpriced.get(currency, 0) == 0:
                uv = unit_value(total, snapshot.units.get(currency))
                if uv is not None:
                    yield m.PORTFOLIO_UNIT_VALUE, ((account, currency), format_value(uv))


def _counters(view: ActivityView) -> Iterator[tuple[Family, Row]]:
    for counted, family in m.COUNTER_FAMILY.items():
        for account in view.accounts:
            totals = view.counters.get(account)
            if totals is None:
                continue
            for key, total in sorted(totals.get(counted, {}).items()):
                yield family, ((account, *key), format_value(total))


def _state(view: ActivityView, snapshot: ActivitySnapshot | None) -> str:
    """Which of ACTIVITY_STATES the account is in: why its activity panels may be empty."""
    if not view.enabled:
        return "off"
    if snapshot is not None and not snapshot.permitted:
        return "no_permission"
    if snapshot is None or not all(snapshot.backfill_complete.values()):
        return "syncing_history"
    return "on"


def _states(view: ActivityView) -> Iterator[tuple[Family, Row]]:
    for account in view.accounts:
        state = _state(view, view.snapshots.get(account))
        for each in m.ACTIVITY_STATES:
            yield m.ACTIVITY_STATE, ((account, each), "1" if each == state else "0")


def _health(view: ActivityView) -> Iterator[tuple[Family, Row]]:
    for account in view.accounts:
        snapshot = view.snapshots.get(account)
        yield m.ACTIVITY_UP, ((account,), "1" if snapshot is not None and snapshot.up else "0")
        if snapshot is None:
            continue
        if snapshot.last_sync_s is not None:
            yield m.ACTIVITY_LAST_SYNC, ((account,), format_float(snapshot.last_sync_s))
        for kind, share in sorted(snapshot.backfill_progress.items()):
            yield m.ACTIVITY_BACKFILL_PROGRESS, ((account, ENDPOINTS[kind]), format_float(share))
        for asset, state in sorted(snapshot.reconciled.items()):
            for each in STATES:
                yield m.LEDGER_RECONCILED, ((account, asset, each), "1" if each == state else "0")
        failures = {(e, r): 0 for e in ENDPOINTS.values() for r in SYNC_REASONS}
        failures.update(snapshot.failures)
        for (endpoint, reason), n in sorted(failures.items()):
            yield m.ACTIVITY_SYNC_FAILURES, ((account, endpoint, reason), str(n))
        for kind, n in snapshot.records.items():
            yield m.LEDGER_RECORDS, ((account, kind), str(n))


def _market(view: ActivityView) -> Iterator[tuple[Family, Row]]:
    market = view.market
    if market is None:
        return
    for family, switches in (
        (m.ASSET_WITHDRAWALS_ENABLED, market.withdrawals),
        (m.ASSET_DEPOSITS_ENABLED, market.deposits),
    ):
        for asset, enabled in sorted(switches.items()):
            if enabled is not None:  # unknown is absent: never shown as enabled
                yield family, ((asset,), "1" if enabled else "0")
    for pair, trading in sorted(market.trading.items()):
        yield m.MARKET_TRADING, ((pair,), "1" if trading else "0")


def render_activity(
    view: ActivityView,
    balances: Mapping[str, AccountSnapshot],
    index: Market | None,
    currencies: Sequence[str],
    price: str,
) -> str:
    """Every activity family's text; when activity is disabled, only btcturk_activity_state saying so."""
    if not view.enabled:
        return _family(m.ACTIVITY_STATE, (sample for _, sample in _states(view)))
    grouped: dict[str, list[Row]] = {f.name: [] for f in m.LIVE_FAMILIES}
    sources = (
        _profit(view, balances, index, currencies, price),
        _counters(view),
        _health(view),
        _states(view),
        _unit_values(view, balances, index, currencies, price),
    )
    for source in sources:
        for family, sample in source:
            grouped[family.name].append(sample)
    for family, sample in _market(view):
        grouped[family.name].append(sample)
    return "".join(_family(f, grouped[f.name]) for f in m.LIVE_FAMILIES)
