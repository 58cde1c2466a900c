"""The account-activity metric names the issue defines, ahead of the exporter serving them.

TODO(activity-sync): the activity-sync branch adds these to exporter/. The rules and the activity
dashboard are built against these names before that merge; once it is in, the tests find the names
in exporter/ and in the demo's /metrics, and every use of this module can go (grep activity-sync).
"""

from __future__ import annotations

ACTIVITY_METRICS = frozenset(
    {
        "btcturk_trades_total",
        "btcturk_trade_fees_total",
        "btcturk_trade_taxes_total",
        "btcturk_deposits_total",
        "btcturk_withdrawals_total",
        "btcturk_asset_cost_basis",
        "btcturk_asset_unrealized_profit",
        "btcturk_asset_realized_profit",
        "btcturk_net_deposits",
        "btcturk_last_trade_timestamp_seconds",
        "btcturk_activity_up",
        "btcturk_activity_last_sync_timestamp_seconds",
        "btcturk_activity_sync_failures_total",
        "btcturk_ledger_records",
        "btcturk_asset_withdrawals_enabled",
        "btcturk_asset_deposits_enabled",
        "btcturk_market_trading",
    }
)
# The metric whose presence in /metrics turns the activity checks of the end-to-end test on.
ACTIVITY_SWITCH = "btcturk_trades_total"
