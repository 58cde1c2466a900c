"""The "BTCTurk / Portfolio overview" dashboard: balances and portfolio value."""

from __future__ import annotations

from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import dashboard as models

from tools.dashboards.board import OVERVIEW_UID, common_variables, currency_variable, dashboard
from tools.dashboards.panels import (
    ACC,
    CUR,
    RED_GREEN,
    Item,
    change_bars,
    demo_marker,
    piechart_panel,
    property_values,
    row,
    stat_panel,
    table_panel,
    timeseries_panel,
)

VALUE = f"btcturk_portfolio_value{{{CUR}}}"
NONZERO = f"and on (asset) (sum by (asset) (btcturk_balance{{{ACC}}}) > 0)"
ASSET_VALUE = f"sum by (asset) (btcturk_balance_value{{{CUR}}})"


def portfolio_in(currency: str, unit: str) -> timeseries.Panel:
    selector = f'btcturk_portfolio_value{{{ACC}, currency="{currency}"}}'
    return timeseries_panel(
        f"Portfolio value in {currency}",
        f"Value of the selected accounts' priced assets in {currency}: the total and each account.",
        [(f"sum({selector})", "Total"), (f"sum by (account) ({selector})", "{{account}}")],
        unit,
    )


def portfolio_stats() -> list[Item]:
    return [
        stat_panel(
            "Portfolio value",
            "Value of every priced asset of the selected accounts, in the selected currency.",
            [(f"sum({VALUE})", "")],
            "short",
            (5, 4),
            decimals=2,
        ),
        # Not `x - x offset $__range`: that is empty until Prometheus holds a whole range of history
        # (7 days for "Last 7 days"). Grafana's diff of the range query is last minus first sample
        # shown, which is the start of the range once there is that much history.
        stat_panel(
            "Change over the selected range",
            "Portfolio value now minus its value at the start of the selected time range "
            "(or at the first sample, when Prometheus holds less history than the range).",
            [(f"sum({VALUE})", "")],
            "short",
            (5, 4),
            steps=RED_GREEN,
            decimals=2,
            calc="diff",
        ),
        # Not Grafana's diffperc, whose scale (ratio or x100) has changed between Grafana releases.
        # The series -last/v(t) ends at -1, so its diff (last minus first point) is last/first - 1:
        # the relative change, exactly, in every Grafana version.
        stat_panel(
            "Change over the selected range (%)",
            "Relative change of the portfolio value since the start of the selected time range "
            "(or since the first sample, when Prometheus holds less history than the range).",
            [(f"-(scalar(sum({VALUE} @ end())) / sum({VALUE}))", "")],
            "percentunit",
            (5, 4),
            steps=RED_GREEN,
            decimals=2,
            calc="diff",
        ),
        stat_panel(
            "Share of value locked",
            "Share of the portfolio value locked in open orders or pending withdrawals.",
            [
                (
                    f"sum(account_currency:btcturk_balance_locked_value:sum{{{CUR}}})\n"
                    f"/\nsum(account_currency:btcturk_balance_value:sum{{{CUR}}})",
                    "",
                )
            ],
            "percentunit",
            (5, 4),
            decimals=1,
        ),
        stat_panel(
            "Unpriced assets",
            "Assets held with no price route to the currency: they are left out of every value.",
            [(f"sum(btcturk_unpriced_assets{{{CUR}}})", "")],
            "none",
            (4, 4),
            steps=((None, "green"), (1, "orange")),
        ),
    ]


def value_panels() -> list[Item]:
    return [
        portfolio_in("TRY", "currencyTRY"),
        portfolio_in("USDT", "suffix: USDT"),
        timeseries_panel(
            "Value per asset in $currency",
            "Value of each asset held across the selected accounts, stacked: the top is the portfolio.",
            [(ASSET_VALUE, "{{asset}}")],
            "short",
            (16, 9),
            stack=True,
        ),
        piechart_panel(
            "Allocation in $currency",
            "Share of the portfolio value held in each asset.",
            [(ASSET_VALUE, "{{asset}}")],
            "short",
            (8, 9),
        ),
        timeseries_panel(
            "Share of value locked per account",
            "Share of each account's value locked in open orders or pending withdrawals.",
            [(f"account_currency:btcturk_balance_locked_value:ratio{{{CUR}}}", "{{account}}")],
            "percentunit",
            minimum=0,
            maximum=1,
            past=False,
        ),
        change_bars(
            "Change per asset over the selected range ($currency)",
            "Value of each asset now minus its value at the start of the selected time range (or at "
            "its first sample, when Prometheus holds less history): price moves, trades, deposits "
            "and withdrawals.",
            [(ASSET_VALUE, "{{asset}}")],
            "short",
            (12, 8),
        ),
    ]


def asset_table() -> Item:
    return (
        table_panel(
            "Assets ($currency)",
            "Every asset with a non-zero balance in the selected accounts: amounts in units of the asset, "
            "value and share in the selected currency.",
            [
                (f"sum by (asset) (btcturk_balance{{{ACC}}}) {NONZERO}", ""),
                (f"sum by (asset) (btcturk_balance_free{{{ACC}}}) {NONZERO}", ""),
                (f"sum by (asset) (btcturk_balance_locked{{{ACC}}}) {NONZERO}", ""),
                (f"{ASSET_VALUE} {NONZERO}", ""),
                (f"{ASSET_VALUE}\n/ scalar(sum(btcturk_balance_value{{{CUR}}}))\n{NONZERO}", ""),
            ],
            "none",
            (24, 10),
            columns=["Asset", "Balance", "Free", "Locked", "Value", "Share of value"],
            decimals=8,
            filterable=True,
            sort_by="Value",
        )
        .override_by_name("Value", property_values(unit="short", decimals=2))
        .override_by_name("Share of value", property_values(unit="percentunit", decimals=1))
    )


def overview() -> models.Dashboard:
    return dashboard(
        OVERVIEW_UID,
        "Balances and portfolio value of BTCTurk accounts, from btcturk-exporter.",
        [
            demo_marker(),
            row("Portfolio ($currency)"),
            *portfolio_stats(),
            row("Value over time"),
            *value_panels(),
            row("Assets"),
            asset_table(),
        ],
        [*common_variables(), currency_variable()],
    )
