"""Names and HELP texts of the balance, value and ticker gauges: part of the contract.

Dashboards, alert rules and backfilled files depend on these names; the live renderer and the backfill
writer both take them from here. Change one only as a breaking change.
"""

from __future__ import annotations

# (name, help) in exposition order; all are gauges.
BALANCE_FAMILIES = (
    ("btcturk_balance", "Total balance of the asset (free + locked), in units of the asset."),
    ("btcturk_balance_free", "Balance of the asset available for trading or withdrawal."),
    ("btcturk_balance_locked", "Balance of the asset locked in open orders or pending operations."),
    ("btcturk_balance_order_fund", "Balance of the asset held by open orders."),
    ("btcturk_balance_request_fund", "Balance of the asset held by pending withdrawal requests."),
)
VALUE_FAMILIES = (
    ("btcturk_balance_value", "Value of the asset's total balance in the valuation currency."),
    ("btcturk_balance_free_value", "Value of the asset's free balance in the valuation currency."),
    ("btcturk_balance_locked_value", "Value of the asset's locked balance in the valuation currency."),
    (
        "btcturk_portfolio_value",
        "Value of every priced asset of the account, summed, in the valuation currency.",
    ),
    (
        "btcturk_unpriced_assets",
        "Non-zero assets of the account with no price route to the valuation currency.",
    ),
)
TICKER_FAMILIES = (
    ("btcturk_ticker_last", "Last trade price of the pair, in units of the quote asset."),
    ("btcturk_ticker_bid", "Best bid price of the pair, in units of the quote asset."),
    ("btcturk_ticker_ask", "Best ask price of the pair, in units of the quote asset."),
    (
        "btcturk_ticker_volume",
        "Traded volume of the pair over the last 24 hours, in units of the base asset.",
    ),
)
