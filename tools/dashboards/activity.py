"""The "BTCTurk / Activity and profit" dashboard: the ledger's trades, transfers, cost basis and profit.

Counters over a day read the recording rules `*:rise_1d` (the ledger total now minus its lowest value
in the 24 hours before): exact, with data from the first sample on. Not `increase(x[1d])`, which
extrapolates a series holding minutes of samples into made-up fractions of a trade, and not 1-day
bars (a `1d` min interval): Grafana rounds a range query's end down to its step, so the newest bar
would be yesterday's, and on a fresh install there would be none at all.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models

from tools.dashboards.board import ACTIVITY_UID, Annotation, common_variables, currency_variable, dashboard
from tools.dashboards.panels import (
    ACC,
    BACKFILL_STEP,
    CUR,
    RED_GREEN,
    Item,
    colors,
    demo_marker,
    property_values,
    row,
    stat_panel,
    status_timeline,
    table_panel,
    thresholds,
    timeseries_panel,
    value_texts,
)

PROFIT = "account_currency:btcturk_portfolio_profit:value_minus_net_deposits"
UNIT_VALUE = f"btcturk_portfolio_unit_value{{{CUR}}}"
# The fixed periods of the returns row: (title, PromQL duration).
PERIODS = (("7 days", "7d"), ("30 days", "30d"), ("90 days", "90d"), ("1 year", "1y"))


def summed_when_complete(metric: str) -> str:
    """The sum over the selected accounts, or nothing when an account lacks the series.

    A total that silently leaves out an account whose activity is not synced yet would be a wrong
    number shown as real.
    """
    return (
        f"sum({metric}{{{CUR}}})\n"
        f"and on () count({metric}{{{CUR}}}) == count(btcturk_portfolio_value{{{CUR}}})"
    )


# btcturk_activity_state's states as the table shows them: (state, colour, text).
STATE_TEXTS = (
    ("on", "green", "on"),
    ("syncing_history", "blue", "reading its history: counters, cost basis and profit appear when done"),
    ("no_permission", "red", "off: the API key may not read transactions (add the permission)"),
    ("off", "orange", "off: activity.enabled is false, or the exporter runs without a ledger"),
)


def state_table() -> Item:
    """Why a panel below is empty for an account: its activity state, in words."""
    return table_panel(
        "Activity per account",
        "Whether each account's trades and transfers are read (btcturk_activity_state): a panel "
        "below is empty for an account that is off, refused by BTCTurk, or still reading its history.",
        [(f"btcturk_activity_state{{{ACC}}} == 1", "")],
        "none",
        (24, 4),
        hidden=("Time", "Value", "__name__", "job", "instance"),
        renamed={"account": "Account", "state": "Activity"},
    ).override_by_name(
        "Activity",
        property_values(
            mappings=value_texts(*STATE_TEXTS),
            custom_cellOptions=common_models.TableColorTextCellOptions(),
        ),
    )


def profit_stats() -> list[Item]:
    return [
        stat_panel(
            "Profit",
            "Portfolio value minus net deposits (deposits minus withdrawals, each valued when it "
            "happened), over the selected accounts. Assets with no price count as 0 (see Unpriced "
            "assets). Empty while a selected account has no activity data yet, rather than a total "
            "that leaves it out.",
            [(summed_when_complete(PROFIT), "")],
            "short",
            (4, 4),
            steps=RED_GREEN,
            decimals=2,
        ),
        stat_panel(
            "Net deposits",
            "Deposits minus withdrawals since activity.since, each valued in the selected currency "
            "when it happened.",
            [(summed_when_complete("btcturk_net_deposits"), "")],
            "short",
            (4, 4),
            decimals=2,
        ),
        stat_panel(
            "Unrealized profit",
            "Value of the current holdings minus their cost basis, summed over assets and accounts.",
            [(f"sum(btcturk_asset_unrealized_profit{{{CUR}}})", "")],
            "short",
            (4, 4),
            steps=RED_GREEN,
            decimals=2,
        ),
        stat_panel(
            "Realized profit",
            "Profit taken by sales since activity.since, summed over assets and accounts.",
            [(f"sum(btcturk_asset_realized_profit{{{CUR}}})", "")],
            "short",
            (4, 4),
            steps=RED_GREEN,
            decimals=2,
        ),
        stat_panel(
            "Unpriced assets",
            "Assets held with no price route to the currency: they count as 0 in the value, so the "
            "profit leaves them out too.",
            [(f"sum(btcturk_unpriced_assets{{{CUR}}})", "")],
            "none",
            (4, 4),
            steps=((None, "green"), (1, "orange")),
        ),
        stat_panel(
            "Last trade",
            "Time of the newest trade in the ledger of the selected accounts.",
            [(f"max(btcturk_last_trade_timestamp_seconds{{{ACC}}}) * 1000", "")],
            "dateTimeFromNow",
            (4, 4),
        ),
    ]


def return_since(ago: str) -> str:
    """The time-weighted return since `ago`: the unit value now over the unit value then, minus 1.

    Empty, not made up, where there is no unit value then (a history shorter than `ago`): any other
    start would be the return over a shorter time shown as this one.
    """
    return f"{UNIT_VALUE}\n/ last_over_time({UNIT_VALUE}[{BACKFILL_STEP}] offset {ago})\n- 1"


def return_description(since: str) -> str:
    return (
        f"Time-weighted return of each account {since}: its unit value (btcturk_portfolio_unit_value) "
        "now over its unit value then, minus 1. Deposits and withdrawals buy and redeem units at the "
        "unit value of their moment, so they do not move it: the return is what the holdings earned, "
        "however much money was added or taken out and when. Empty where there is no unit value then "
        "(Prometheus holds a shorter history: run the backfill) or now: the unit value is absent while "
        "a holding has no price, or does not reconcile with the ledger (bought before activity.since)."
    )


def return_stats() -> list[Item]:
    """The return over the selected range, over fixed periods, and since the first deposit."""

    def stat(title: str, description: str, expr: str, no_value: str) -> Item:
        return stat_panel(
            title,
            description,
            [(expr, "{{account}}")],
            "percentunit",
            (4, 4),
            steps=RED_GREEN,
            decimals=2,
            no_value=no_value,
        )

    return [
        stat(
            "Return over the selected range",
            return_description("over the time range picked for the dashboard"),
            return_since("$__range"),
            "history shorter than the range, or no unit value",
        ),
        *(
            stat(
                title,
                return_description(f"over the last {title}"),
                return_since(ago),
                f"history shorter than {ago}, or no unit value",
            )
            for title, ago in PERIODS
        ),
        stat(
            "Since the start",
            "Time-weighted return of each account since its first deposit in the ledger (since "
            "activity.since at most): the unit value minus 1, the unit value being 1 at the first "
            "deposit. Empty while the unit value is absent: a holding has no price, or does not "
            "reconcile with the ledger (bought before activity.since).",
            f"{UNIT_VALUE} - 1",
            "no unit value",
        ),
    ]


def unit_value_panel() -> Item:
    return timeseries_panel(
        "Unit value per account ($currency)",
        "The value of one unit of each account's portfolio, as a fund reports it: 1 at the first "
        "deposit; deposits and withdrawals buy and redeem units at the unit value of their moment, so "
        "only what the holdings earn moves it. Its ratio between two moments, minus 1, is the "
        "time-weighted return between them. Absent while a holding has no price or does not reconcile "
        "with the ledger.",
        [(UNIT_VALUE, "{{account}}")],
        "none",
        (24, 8),
    ).decimals(4)


def transfer_marks(name: str, counter: str, colour: str, panel: int) -> Annotation:
    """A mark on `panel` at each step in which the account's `counter` of an asset rose.

    Each step against the one before (`offset $__interval`, the step itself): exactly the steps in
    which a transfer was recorded, at every step Grafana picks. At least the backfill's step, where
    every step meets a backfilled sample; a step with no sample before it (the first) has no mark.
    """
    selector = f"{counter}{{{ACC}}}"
    return Annotation(
        name=name,
        expr=f"{selector}\n- {selector} offset $__interval\n> 0",
        colour=colour,
        title=f"{name[:-1]}: {{{{asset}}}}",
        text="{{account}}",
        tags="account,asset",
        step=BACKFILL_STEP,
        panels=(panel,),
    )


def profit_colours() -> list[models.DynamicConfigValue]:
    """Red below 0, green from 0, as the cell's text colour."""
    return property_values(
        color=colors(models.FieldColorModeId.THRESHOLDS).build(),
        thresholds=thresholds(*RED_GREEN).build(),
        custom_cellOptions=common_models.TableColorTextCellOptions(),
    )


def asset_table() -> Item:
    held = f"and on (asset) (sum by (asset) (btcturk_balance{{{ACC}}}) > 0)"
    return (
        table_panel(
            "Assets: cost and profit ($currency)",
            "Every asset held, and every asset sold at a profit or loss since activity.since: the holding "
            "in units of the asset; its cost basis, value and profits in the selected currency.",
            [
                (f"sum by (asset) (btcturk_balance{{{ACC}}}) {held}", ""),
                (f"sum by (asset) (btcturk_asset_cost_basis{{{CUR}}}) {held}", ""),
                (f"sum by (asset) (btcturk_balance_value{{{CUR}}}) {held}", ""),
                (f"sum by (asset) (btcturk_asset_unrealized_profit{{{CUR}}}) {held}", ""),
                (f"sum by (asset) (btcturk_asset_realized_profit{{{CUR}}})", ""),
            ],
            "short",
            (24, 10),
            columns=["Asset", "Holding", "Cost basis", "Value", "Unrealized profit", "Realized profit"],
            decimals=2,
            filterable=True,
            sort_by="Value",
        )
        .override_by_name("Holding", property_values(unit="none", decimals=8))
        .override_by_name("Unrealized profit", profit_colours())
        .override_by_name("Realized profit", profit_colours())
    )


def value_panels() -> list[Item]:
    # Only accounts with activity data: their value against their own net deposits.
    with_activity = f"and on (job, instance, account, currency) btcturk_net_deposits{{{CUR}}}"
    return [
        timeseries_panel(
            "Portfolio value against net deposits ($currency)",
            "Value of the selected accounts that have activity data, and what was put in (deposits "
            "minus withdrawals, valued when they happened): the gap between the two is the profit.",
            [
                (f"sum(btcturk_portfolio_value{{{CUR}}} {with_activity})", "Value"),
                (f"sum(btcturk_net_deposits{{{CUR}}})", "Net deposits"),
            ],
            "short",
        ),
        timeseries_panel(
            "Profit per account ($currency)",
            "Each account's portfolio value minus its net deposits (assets with no price count as 0).",
            [(f"{PROFIT}{{{CUR}}}", "{{account}}")],
            "short",
        ),
    ]


def activity_panels() -> list[Item]:
    daily = (
        "in the 24 hours before each moment (the ledger total minus its lowest value in that day). "
        "Counted when the exporter's sync records it: until Prometheus holds a day of samples, the "
        "rise since its first one; history the sync fetches later (a first backfill, an earlier "
        "activity.since) counts when it arrives."
    )
    # past=False on the per-day panels: the backfill does not write the rise_1d rules (yet), so they
    # hold live samples only, and a gap in them is an outage.
    return [
        timeseries_panel(
            "Fees and taxes paid per day",
            f"Trade fees and taxes, in the asset charged, {daily}",
            [
                (f"sum by (asset) (account_asset:btcturk_trade_fees:rise_1d{{{ACC}}})", "fees {{asset}}"),
                (f"sum by (asset) (account_asset:btcturk_trade_taxes:rise_1d{{{ACC}}})", "taxes {{asset}}"),
            ],
            "short",
            minimum=0,
            past=False,
        ),
        timeseries_panel(
            "Trades per day",
            f"Trades (fills) per pair and side {daily}",
            [
                (
                    f"sum by (pair, side) (account_pair_side:btcturk_trades:rise_1d{{{ACC}}})",
                    "{{pair}} {{side}}",
                )
            ],
            "none",
            minimum=0,
            past=False,
        ),
        timeseries_panel(
            "Deposits over time",
            "Everything deposited since activity.since, per asset, in units of the asset: each step "
            "up is a deposit.",
            [(f"sum by (asset) (btcturk_deposits_total{{{ACC}}})", "{{asset}}")],
            "short",
        ),
        timeseries_panel(
            "Withdrawals over time",
            "Everything withdrawn since activity.since, per asset, in units of the asset: each step "
            "up is a withdrawal.",
            [(f"sum by (asset) (btcturk_withdrawals_total{{{ACC}}})", "{{asset}}")],
            "short",
        ),
    ]


def sync_panels() -> list[Item]:
    return [
        status_timeline(
            "Activity sync status",
            "btcturk_activity_up per account: ok when the last sync of its trades and transfers worked.",
            [(f"btcturk_activity_up{{{ACC}}}", "{{account}}")],
            (12, 6),
        ),
        timeseries_panel(
            "Ledger records",
            "Records the exporter's ledger holds per account and kind.",
            [(f"btcturk_ledger_records{{{ACC}}}", "{{account}} {{kind}}")],
            "short",
            (12, 6),
            past=False,
        ),
        history_synced(),
    ]


def history_synced() -> Item:
    """How much of each account's history is read, so a first backfill shows as "40%", not as empty."""
    # Floored to whole percent: rounding would show 100% while the last endpoint is still reading.
    share = f"min by (account) (btcturk_activity_backfill_progress_ratio{{{ACC}}})"
    return stat_panel(
        "History synced",
        "How much of each account's history since activity.since the exporter has read into its "
        "ledger: the endpoint furthest behind (btcturk_activity_backfill_progress_ratio). 100% once "
        "every endpoint has reached the present; counters, cost basis and profit appear then.",
        [(f"floor(100 * {share}) / 100", "{{account}}")],
        "percentunit",
        (24, 4),
        steps=((None, "blue"), (1, "green")),
        decimals=0,
    )


def activity() -> models.Dashboard:
    value_graph, *others = value_panels()
    items = [
        demo_marker(),
        state_table(),
        row("Profit ($currency)"),
        *profit_stats(),
        row("Time-weighted return ($currency)"),
        *return_stats(),
        unit_value_panel(),
        row("Value against net deposits"),
        value_graph,
        *others,
        row("Assets"),
        asset_table(),
        row("Activity"),
        *activity_panels(),
        row("Activity sync"),
        *sync_panels(),
    ]
    marked = items.index(value_graph) + 1  # dashboard() numbers the items from 1
    return dashboard(
        ACTIVITY_UID,
        "Trades, fees, deposits, withdrawals, cost basis, profit and returns of BTCTurk accounts, "
        "from the ledger btcturk-exporter keeps; deposits and withdrawals marked on the value graph.",
        items,
        [*common_variables(), currency_variable()],
        [
            transfer_marks("Deposits", "btcturk_deposits_total", "green", marked),
            transfer_marks("Withdrawals", "btcturk_withdrawals_total", "orange", marked),
        ],
    )
