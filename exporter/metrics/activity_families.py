"""Names, types, labels and HELP texts of the metrics derived from the ledger: part of the contract.

Dashboards, alert rules and files already backfilled into Prometheus depend on these names; the live
exporter and `btcturk-exporter backfill` both take them from here, so they cannot drift apart. Change
one only as a breaking change.

A counter family is named without `_total` and its samples with it (OpenMetrics: family
`btcturk_trades`, samples `btcturk_trades_total`). The Prometheus text format (0.0.4) names the family
by its sample name, so code writing that format uses `Family.sample_name` for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from exporter.ledger.counters import Counted
from exporter.metrics.exposition import MetricType


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: its name (without `_total`), type, HELP text and label names, in order."""

    name: str
    kind: MetricType
    help: str
    labels: tuple[str, ...]

    @property
    def sample_name(self) -> str:
        """The name its samples carry: `btcturk_trades_total` for the counter family `btcturk_trades`."""
        return self.name + "_total" if self.kind == "counter" else self.name


ASSET_COST_BASIS = Family(
    "btcturk_asset_cost_basis",
    "gauge",
    "Cost of the asset held, in the valuation currency, by the configured cost-basis method "
    "(average or FIFO) over the ledger's trades and transfers.",
    ("account", "asset", "currency"),
)
ASSET_UNREALIZED_PROFIT = Family(
    "btcturk_asset_unrealized_profit",
    "gauge",
    "Value of the asset held minus its cost basis, in the valuation currency.",
    ("account", "asset", "currency"),
)
ASSET_REALIZED_PROFIT = Family(
    "btcturk_asset_realized_profit",
    "gauge",
    "Profit realized by selling or spending the asset since the ledger's first record, "
    "in the valuation currency (negative for a loss).",
    ("account", "asset", "currency"),
)
NET_DEPOSITS = Family(
    "btcturk_net_deposits",
    "gauge",
    "Deposits minus withdrawals since the ledger's first record, each valued at its time, "
    "in the valuation currency; an account older than activity.since counts what it held then "
    "(its opening positions) as deposits at since.",
    ("account", "currency"),
)
TRADES = Family(
    "btcturk_trades",  # samples: btcturk_trades_total
    "counter",
    "Trades (order fills) in the ledger, by pair and side.",
    ("account", "pair", "side"),
)
TRADE_FEES = Family(
    "btcturk_trade_fees",  # samples: btcturk_trade_fees_total
    "counter",
    "Trade fees paid, in units of the asset they were paid in (the pair's quote, or the asset a buy"
    " received where the pair takes commission from the numerator).",
    ("account", "asset"),
)
TRADE_TAXES = Family(
    "btcturk_trade_taxes",  # samples: btcturk_trade_taxes_total
    "counter",
    "Taxes paid on trades, in units of the asset they were paid in (the pair's quote, or the asset a buy"
    " received where the pair takes commission from the numerator).",
    ("account", "asset"),
)
DEPOSITS = Family(
    "btcturk_deposits",  # samples: btcturk_deposits_total
    "counter",
    "Quantity of the asset deposited into the account, in units of the asset.",
    ("account", "asset"),
)
WITHDRAWALS = Family(
    "btcturk_withdrawals",  # samples: btcturk_withdrawals_total
    "counter",
    "Quantity of the asset withdrawn from the account, in units of the asset.",
    ("account", "asset"),
)

PROFIT_FAMILIES: tuple[Family, ...] = (
    ASSET_COST_BASIS,
    ASSET_UNREALIZED_PROFIT,
    ASSET_REALIZED_PROFIT,
    NET_DEPOSITS,
)
# The family each of the ledger's counters is exported as, in exposition order.
COUNTER_FAMILY: Mapping[Counted, Family] = {
    "trades": TRADES,
    "trade_fees": TRADE_FEES,
    "trade_taxes": TRADE_TAXES,
    "deposits": DEPOSITS,
    "withdrawals": WITHDRAWALS,
}
COUNTER_FAMILIES: tuple[Family, ...] = tuple(COUNTER_FAMILY.values())
ACTIVITY_FAMILIES: tuple[Family, ...] = PROFIT_FAMILIES + COUNTER_FAMILIES

# --- only the live exporter serves these: the sync's health and the exchange's market status ---------

ASSET_SHORTFALL = Family(
    "btcturk_asset_shortfall",
    "gauge",
    "Quantity of the asset that sales, spending and withdrawals gave away beyond what the ledger's "
    "records showed held (history missing from before the first record), in units of the asset, "
    "by the valuation currency's replay (a record it cannot price is left out of it); 0 when every "
    "record was covered.",
    ("account", "asset", "currency"),
)
ASSET_UNMATCHED_PROCEEDS = Family(
    "btcturk_asset_unmatched_proceeds",
    "gauge",
    "Proceeds of the asset's sales and spending beyond what the ledger's records showed held (history "
    "missing from before the first record), in the valuation currency: not counted as realized profit, "
    "since their cost is unknown; 0 when every record was covered.",
    ("account", "asset", "currency"),
)
LEDGER_UNPRICED_RECORDS = Family(
    "btcturk_ledger_unpriced_records",
    "gauge",
    "Records the valuation currency's replay could not value (graph-api has no price at their time by "
    "any route): a trade or deposit is left out of cost basis and profit, a withdrawal out of net "
    "deposits; 0 when every record was valued.",
    ("account", "currency"),
)
LEDGER_FIGURES_STALE = Family(
    "btcturk_ledger_figures_stale",
    "gauge",
    "1 while a past price the account's cost basis, profit, net deposits and unit value need could not "
    "be fetched (graph-api failing or answering with gaps): the last figures computed with every price "
    "stay served, or none before the first; the unit value is absent meanwhile. 0 when current.",
    ("account",),
)
LAST_TRADE = Family(
    "btcturk_last_trade_timestamp_seconds",
    "gauge",
    "Unix time of the account's newest trade in the ledger.",
    ("account",),
)
ACTIVITY_UP = Family(
    "btcturk_activity_up",
    "gauge",
    "1 if the key may read the account's transactions and the last read of every transaction endpoint "
    "succeeded, 0 otherwise.",
    ("account",),
)
ACTIVITY_STATE = Family(
    "btcturk_activity_state",
    "gauge",
    "1 for the state the account's activity is in, 0 for the others: off (activity.enabled is false, "
    "or the exporter runs without a ledger), no_permission (the key is refused the transaction "
    "endpoints, 401), syncing_history (its history is not read up to now yet, so its counters, cost "
    "basis and profit are not served), on.",
    ("account", "state"),
)
# The states of btcturk_activity_state, in the order they are decided: the first that holds.
ACTIVITY_STATES = ("off", "no_permission", "syncing_history", "on")
ACTIVITY_LAST_SYNC = Family(
    "btcturk_activity_last_sync_timestamp_seconds",
    "gauge",
    "Unix time by which every transaction endpoint of the account was last read successfully.",
    ("account",),
)
ACTIVITY_BACKFILL_PROGRESS = Family(
    "btcturk_activity_backfill_progress_ratio",
    "gauge",
    "How much of the account's history the endpoint has read, 0 to 1: the share of the time from "
    "activity.since to now read by the first backfill (or of older history after since moved "
    "earlier); 1 once it has reached the present.",
    ("account", "endpoint"),
)
LEDGER_RECONCILED = Family(
    "btcturk_ledger_reconciled",
    "gauge",
    "1 for the state of the asset's ledger holding against its polled balance, 0 for the others: "
    "match (the records, with the opening positions at activity.since, add up to the balance), "
    "mismatch (records missing or wrong; the history is read again) or incomplete (less than held: "
    "possibly held since before activity.since).",
    ("account", "asset", "state"),
)
ACTIVITY_SYNC_FAILURES = Family(
    "btcturk_activity_sync_failures",  # samples: btcturk_activity_sync_failures_total
    "counter",
    "Failed reads of the activity sync (after retries), by account, endpoint and reason "
    "(truncated: an answer cut at the page cap in a window too short to split; window_ignored: an "
    "answer holding records outside the window asked, or one record twice).",
    ("account", "endpoint", "reason"),
)
LEDGER_RECORDS = Family(
    "btcturk_ledger_records",
    "gauge",
    "Records the ledger holds for the account, by kind (trade, crypto, fiat).",
    ("account", "kind"),
)
ASSET_WITHDRAWALS_ENABLED = Family(
    "btcturk_asset_withdrawals_enabled",
    "gauge",
    "1 if BTCTurk allows withdrawals of the asset, 0 if it has disabled them; absent when not stated.",
    ("asset",),
)
ASSET_DEPOSITS_ENABLED = Family(
    "btcturk_asset_deposits_enabled",
    "gauge",
    "1 if BTCTurk allows deposits of the asset, 0 if it has disabled them; absent when not stated.",
    ("asset",),
)
MARKET_TRADING = Family(
    "btcturk_market_trading",
    "gauge",
    "1 if the pair's market is open for trading (status TRADING), 0 if halted or delisted.",
    ("pair",),
)

HEALTH_FAMILIES: tuple[Family, ...] = (
    ACTIVITY_UP,
    ACTIVITY_STATE,
    ACTIVITY_LAST_SYNC,
    ACTIVITY_BACKFILL_PROGRESS,
    LEDGER_RECONCILED,
    ACTIVITY_SYNC_FAILURES,
    LEDGER_RECORDS,
)
MARKET_FAMILIES: tuple[Family, ...] = (ASSET_WITHDRAWALS_ENABLED, ASSET_DEPOSITS_ENABLED, MARKET_TRADING)
PORTFOLIO_UNIT_VALUE = Family(
    "btcturk_portfolio_unit_value",
    "gauge",
    "The value of one unit of the portfolio, as a fund reports it: 1 at the first deposit, units "
    "issued and redeemed by deposits and withdrawals at the unit value of their moment; "
    "unit_value / unit_value offset 30d - 1 is the time-weighted return.",
    ("account", "currency"),
)
LIVE_FAMILIES: tuple[Family, ...] = (
    *ACTIVITY_FAMILIES,
    ASSET_SHORTFALL,
    ASSET_UNMATCHED_PROCEEDS,
    LEDGER_UNPRICED_RECORDS,
    LEDGER_FIGURES_STALE,
    LAST_TRADE,
    *HEALTH_FAMILIES,
    *MARKET_FAMILIES,
    PORTFOLIO_UNIT_VALUE,
)
