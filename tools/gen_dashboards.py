#!/usr/bin/env python3
"""Generate the Grafana dashboards in grafana/dashboards/ from the panel definitions below.

    python -m tools.gen_dashboards          # rewrite the JSON files
    python -m tools.gen_dashboards --check  # exit 1 if a committed file is out of date

Edit this file, not the JSON: tests/deploy/test_dashboards.py fails when the committed JSON differs from
what this script produces, and lints the result (datasource variable, job/instance matchers on
every selector, $__rate_interval, units, uids, tags, links).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "grafana" / "dashboards"

OVERVIEW_UID = "btcturk-overview"
HEALTH_UID = "btcturk-exporter-health"
ACTIVITY_UID = "btcturk-activity"
OVERVIEW_TITLE = "BTCTurk / Portfolio overview"
HEALTH_TITLE = "BTCTurk / Exporter health"
ACTIVITY_TITLE = "BTCTurk / Activity and profit"
TAGS = ["btcturk", "btcturk-exporter", "prometheus-exporter"]
SCHEMA_VERSION = 39

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Every selector carries these, so the dashboards work with any job name and several exporters.
SEL = 'job=~"$job", instance=~"$instance"'
ACC = SEL + ', account=~"$account"'
# Shared API calls (ticker, server time) have account="": keep them whatever accounts are selected.
ACC_OR_SHARED = SEL + ', account=~"$account|"'
CUR = ACC + ', currency=~"$currency"'

# Every panel asks for this many points, rather than Grafana's default of one per pixel: it keeps the
# step of a 7-day range at 1m (Grafana rounds 604800s / 10000 to 1m), and Grafana rounds the end of
# a range query DOWN to a multiple of the step, so a coarser step would hide the newest minutes and
# leave every graph empty on a fresh install for up to one step (10m at 7d with ~1000 pixels).
MAX_DATA_POINTS = 10000

Json = dict[str, Any]


# --- variables -----------------------------------------------------------------------------------


def datasource_variable() -> Json:
    return {
        "current": {},
        "hide": 0,
        "includeAll": False,
        "label": "Data source",
        "multi": False,
        "name": "datasource",
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
        "type": "datasource",
    }


def query_variable(
    name: str, label: str, query: str, *, multi: bool = False, include_all: bool = False
) -> Json:
    variable: Json = {
        "current": {},
        "datasource": DATASOURCE,
        "definition": query,
        "hide": 0,
        "includeAll": include_all,
        "label": label,
        "multi": multi,
        "name": name,
        "options": [],
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }
    if include_all:
        # ".*" rather than a list of every value: also matches series whose label is empty.
        variable["allValue"] = ".*"
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return variable


def common_variables() -> list[Json]:
    return [
        datasource_variable(),
        query_variable("job", "Job", "label_values(btcturk_exporter_build_info, job)"),
        query_variable(
            "instance",
            "Instance",
            'label_values(btcturk_exporter_build_info{job=~"$job"}, instance)',
            multi=True,
            include_all=True,
        ),
        query_variable(
            "account",
            "Account",
            'label_values(btcturk_up{job=~"$job", instance=~"$instance"}, account)',
            multi=True,
            include_all=True,
        ),
    ]


# --- panels --------------------------------------------------------------------------------------


def target(
    expr: str, legend: str = "", *, ref: str = "A", instant: bool = False, table: bool = False
) -> Json:
    out: Json = {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "refId": ref,
    }
    if table:
        out["format"] = "table"
    return out


def targets(*specs: tuple[str, str], instant: bool = False, table: bool = False) -> list[Json]:
    return [
        target(expr, legend, ref=chr(ord("A") + i), instant=instant, table=table)
        for i, (expr, legend) in enumerate(specs)
    ]


def thresholds(*steps: tuple[float | None, str]) -> Json:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


GREEN = thresholds((None, "green"))


def panel(
    kind: str,
    title: str,
    description: str,
    queries: list[Json],
    unit: str,
    size: tuple[int, int],
    *,
    options: Json | None = None,
    custom: Json | None = None,
    defaults: Json | None = None,
    overrides: list[Json] | None = None,
    transformations: list[Json] | None = None,
) -> Json:
    field_defaults: Json = {"unit": unit, "thresholds": GREEN, "color": {"mode": "palette-classic"}}
    if custom is not None:
        field_defaults["custom"] = custom
    field_defaults.update(defaults or {})
    out: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"w": size[0], "h": size[1]},
        "maxDataPoints": MAX_DATA_POINTS,
        "fieldConfig": {"defaults": field_defaults, "overrides": overrides or []},
        "options": options or {},
        "targets": queries,
    }
    if transformations:
        out["transformations"] = transformations
    return out


def timeseries(
    title: str,
    description: str,
    queries: list[Json],
    unit: str,
    size: tuple[int, int] = (12, 8),
    *,
    stack: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    overrides: list[Json] | None = None,
) -> Json:
    custom: Json = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 60 if stack else 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "axisSoftMin": 0,
    }
    defaults: Json = {}
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    return panel(
        "timeseries",
        title,
        description,
        queries,
        unit,
        size,
        custom=custom,
        defaults=defaults,
        overrides=overrides,
        options={
            "legend": {
                "displayMode": "table",
                "placement": "right" if stack else "bottom",
                "calcs": ["lastNotNull", "max"],
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def stat(
    title: str,
    description: str,
    queries: list[Json],
    unit: str,
    size: tuple[int, int] = (6, 4),
    *,
    steps: Json = GREEN,
    decimals: int | None = None,
    color_mode: str = "value",
    reduce: str | None = None,
    extra_defaults: Json | None = None,
) -> Json:
    """A single value: the query's value now (instant), or `reduce` over the range (range query)."""
    defaults: Json = {"thresholds": steps, **(extra_defaults or {})}
    if decimals is not None:
        defaults["decimals"] = decimals
    for query in queries:
        query["instant"], query["range"] = reduce is None, reduce is not None
    return panel(
        "stat",
        title,
        description,
        queries,
        unit,
        size,
        defaults=defaults,
        options={
            "reduceOptions": {"calcs": [reduce or "lastNotNull"], "fields": "", "values": False},
            "colorMode": color_mode,
            "graphMode": "none",
            "textMode": "auto",
            "justifyMode": "auto",
            "orientation": "auto",
        },
    )


def demo_marker() -> Json:
    """A red "DEMO DATA" banner while the exporter runs --demo (btcturk_exporter_demo == 1).

    Empty (no text, no colour) when the gauge is 0 or absent, so live dashboards carry no banner.
    """
    marker = stat(
        "",
        "Red while the exporter runs --demo: every number on this dashboard is made up by the bundled "
        "simulator, not read from a BTCTurk account.",
        targets((f"max(btcturk_exporter_demo{{{SEL}}})", "")),
        "none",
        (24, 2),
        steps=thresholds((None, "transparent"), (1, "red")),
        color_mode="background",
        extra_defaults={
            "noValue": " ",
            "mappings": [
                {
                    "type": "value",
                    "options": {
                        "0": {"color": "transparent", "index": 0, "text": " "},
                        "1": {"color": "red", "index": 1, "text": "DEMO DATA — made-up accounts"},
                    },
                }
            ],
        },
    )
    marker["transparent"] = True
    return marker


def by_name(name: str, **properties: Any) -> Json:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key.replace("_", "."), "value": value} for key, value in properties.items()],
    }


def row(title: str) -> Json:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def layout(panels: Sequence[Json]) -> list[Json]:
    """Give panels ids and positions: left to right, wrapping at 24 columns, rows on their own line."""
    x = y = line_height = 0
    out = []
    for number, item in enumerate(panels, start=1):
        w, h = item["gridPos"]["w"], item["gridPos"]["h"]
        if x + w > 24 or item["type"] == "row":
            y += line_height
            x = line_height = 0
        item = {"id": number, **item, "gridPos": {"h": h, "w": w, "x": x, "y": y}}
        out.append(item)
        x += w
        line_height = max(line_height, h)
        if item["type"] == "row":
            y += h
            x = line_height = 0
    return out


def link_to(uid: str, title: str) -> Json:
    return {
        "asDropdown": False,
        "icon": "dashboard",
        "includeVars": True,
        "keepTime": True,
        "tags": [],
        "targetBlank": False,
        "title": title,
        "tooltip": f"Open the {title} dashboard",
        "type": "link",
        "url": f"/d/{uid}/{uid}",
    }


def links_to_others(uid: str) -> list[Json]:
    """A link to each of the other dashboards."""
    boards = {OVERVIEW_UID: OVERVIEW_TITLE, HEALTH_UID: HEALTH_TITLE, ACTIVITY_UID: ACTIVITY_TITLE}
    return [link_to(other, title) for other, title in boards.items() if other != uid]


def dashboard(uid: str, title: str, description: str, panels: Sequence[Json], variables: list[Json]) -> Json:
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": links_to_others(uid),
        "liveNow": False,
        "panels": layout(panels),
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": TAGS,
        "templating": {"list": variables},
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


# --- the overview dashboard ----------------------------------------------------------------------


def overview() -> Json:
    value = f"btcturk_portfolio_value{{{CUR}}}"
    nonzero = f"and on (asset) (sum by (asset) (btcturk_balance{{{ACC}}}) > 0)"
    asset_value = f"sum by (asset) (btcturk_balance_value{{{CUR}}})"
    red_green = thresholds((None, "red"), (0, "green"))

    def portfolio_in(currency: str, unit: str) -> Json:
        selector = f'btcturk_portfolio_value{{{ACC}, currency="{currency}"}}'
        return timeseries(
            f"Portfolio value in {currency}",
            f"Value of the selected accounts' priced assets in {currency}: the total and each account.",
            targets((f"sum({selector})", "Total"), (f"sum by (account) ({selector})", "{{account}}")),
            unit,
            (12, 8),
        )

    panels = [
        demo_marker(),
        row("Portfolio ($currency)"),
        stat(
            "Portfolio value",
            "Value of every priced asset of the selected accounts, in the selected currency.",
            targets((f"sum({value})", "")),
            "short",
            (5, 4),
            decimals=2,
        ),
        # Not `x - x offset $__range`: that is empty until Prometheus holds a whole range of history
        # (7 days for "Last 7 days"). Grafana's diff of the range query is last minus first sample
        # shown, which is the start of the range once there is that much history.
        stat(
            "Change over the selected range",
            "Portfolio value now minus its value at the start of the selected time range "
            "(or at the first sample, when Prometheus holds less history than the range).",
            targets((f"sum({value})", "")),
            "short",
            (5, 4),
            steps=red_green,
            decimals=2,
            reduce="diff",
        ),
        # Not Grafana's diffperc, whose scale (ratio or x100) has changed between Grafana releases.
        # The series -last/v(t) ends at -1, so its diff (last minus first point) is last/first - 1:
        # the relative change, exactly, in every Grafana version.
        stat(
            "Change over the selected range (%)",
            "Relative change of the portfolio value since the start of the selected time range "
            "(or since the first sample, when Prometheus holds less history than the range).",
            targets((f"-(scalar(sum({value} @ end())) / sum({value}))", "")),
            "percentunit",
            (5, 4),
            steps=red_green,
            decimals=2,
            reduce="diff",
        ),
        stat(
            "Share of value locked",
            "Share of the portfolio value locked in open orders or pending withdrawals.",
            targets(
                (
                    f"sum(account_currency:btcturk_balance_locked_value:sum{{{CUR}}})\n"
                    f"/\nsum(account_currency:btcturk_balance_value:sum{{{CUR}}})",
                    "",
                )
            ),
            "percentunit",
            (5, 4),
            decimals=1,
        ),
        stat(
            "Unpriced assets",
            "Assets held with no price route to the currency: they are left out of every value.",
            targets((f"sum(btcturk_unpriced_assets{{{CUR}}})", "")),
            "none",
            (4, 4),
            steps=thresholds((None, "green"), (1, "orange")),
        ),
        row("Value over time"),
        portfolio_in("TRY", "currencyTRY"),
        portfolio_in("USDT", "suffix: USDT"),
        timeseries(
            "Value per asset in $currency",
            "Value of each asset held across the selected accounts, stacked: the top is the portfolio.",
            targets((asset_value, "{{asset}}")),
            "short",
            (16, 9),
            stack=True,
        ),
        panel(
            "piechart",
            "Allocation in $currency",
            "Share of the portfolio value held in each asset.",
            targets((asset_value, "{{asset}}"), instant=True),
            "short",
            (8, 9),
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "pieType": "donut",
                "legend": {
                    "displayMode": "table",
                    "placement": "right",
                    "showLegend": True,
                    "values": ["percent"],
                },
                "tooltip": {"mode": "single", "sort": "none"},
                "displayLabels": [],
            },
        ),
        timeseries(
            "Share of value locked per account",
            "Share of each account's value locked in open orders or pending withdrawals.",
            targets((f"account_currency:btcturk_balance_locked_value:ratio{{{CUR}}}", "{{account}}")),
            "percentunit",
            (12, 8),
            minimum=0,
            maximum=1,
        ),
        panel(
            "bargauge",
            "Change per asset over the selected range ($currency)",
            "Value of each asset now minus its value at the start of the selected time range (or at "
            "its first sample, when Prometheus holds less history): price moves, trades, deposits "
            "and withdrawals.",
            targets((asset_value, "{{asset}}")),
            "short",
            (12, 8),
            defaults={"thresholds": red_green, "color": {"mode": "thresholds"}, "decimals": 2},
            options={
                "reduceOptions": {"calcs": ["diff"], "fields": "", "values": False},
                "orientation": "horizontal",
                "displayMode": "basic",
                "showUnfilled": True,
                "valueMode": "color",
                "namePlacement": "left",
                "minVizHeight": 16,
                "minVizWidth": 8,
                "sizing": "auto",
            },
        ),
        row("Assets"),
        panel(
            "table",
            "Assets ($currency)",
            "Every asset with a non-zero balance in the selected accounts: amounts in units of the asset, "
            "value and share in the selected currency.",
            targets(
                (f"sum by (asset) (btcturk_balance{{{ACC}}}) {nonzero}", ""),
                (f"sum by (asset) (btcturk_balance_free{{{ACC}}}) {nonzero}", ""),
                (f"sum by (asset) (btcturk_balance_locked{{{ACC}}}) {nonzero}", ""),
                (f"{asset_value} {nonzero}", ""),
                (f"{asset_value}\n/ scalar(sum(btcturk_balance_value{{{CUR}}}))\n{nonzero}", ""),
                instant=True,
                table=True,
            ),
            "none",
            (24, 10),
            defaults={"decimals": 8, "custom": {"align": "auto", "filterable": True}},
            overrides=[
                by_name("Value", unit="short", decimals=2),
                by_name("Share of value", unit="percentunit", decimals=1),
            ],
            options={"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]},
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "indexByName": {
                            "asset": 0,
                            "Value #A": 1,
                            "Value #B": 2,
                            "Value #C": 3,
                            "Value #D": 4,
                            "Value #E": 5,
                        },
                        "renameByName": {
                            "asset": "Asset",
                            "Value #A": "Balance",
                            "Value #B": "Free",
                            "Value #C": "Locked",
                            "Value #D": "Value",
                            "Value #E": "Share of value",
                        },
                    },
                },
            ],
        ),
    ]
    variables = [
        *common_variables(),
        query_variable(
            "currency",
            "Currency",
            'label_values(btcturk_portfolio_value{job=~"$job", instance=~"$instance"}, currency)',
        ),
    ]
    return dashboard(
        OVERVIEW_UID,
        OVERVIEW_TITLE,
        "Balances and portfolio value of BTCTurk accounts, from btcturk-exporter.",
        panels,
        variables,
    )


# --- the exporter health dashboard ---------------------------------------------------------------


def health() -> Json:
    up_mapping = [
        {
            "type": "value",
            "options": {
                "0": {"color": "red", "index": 0, "text": "failing"},
                "1": {"color": "green", "index": 1, "text": "ok"},
            },
        }
    ]
    panels = [
        demo_marker(),
        row("Polling"),
        stat(
            "Scrape target up",
            "Whether Prometheus can scrape the exporter (the lowest of the selected instances).",
            targets((f"min(up{{{SEL}}})", "")),
            "none",
            (6, 4),
            steps=thresholds((None, "red"), (1, "green")),
            color_mode="background",
        ),
        stat(
            "Accounts failing",
            "Accounts whose last balance poll failed.",
            targets((f"count(btcturk_up{{{ACC}}} == 0) or vector(0)", "")),
            "none",
            (6, 4),
            steps=thresholds((None, "green"), (1, "red")),
            color_mode="background",
        ),
        stat(
            "Poll interval",
            "Configured time between two polls of each account.",
            targets((f"max(btcturk_poll_interval_seconds{{{SEL}}})", "")),
            "s",
            (6, 4),
        ),
        stat(
            "Largest clock offset",
            "Largest difference between the BTCTurk API server's clock and the exporter's clock.",
            targets((f"max(abs(btcturk_clock_offset_seconds{{{SEL}}}))", "")),
            "s",
            (6, 4),
            steps=thresholds((None, "green"), (1, "orange"), (2, "red")),
            decimals=2,
        ),
        panel(
            "state-timeline",
            "Account status",
            "btcturk_up per account: ok when the last poll of its balances succeeded.",
            targets((f"btcturk_up{{{ACC}}}", "{{account}}")),
            "none",
            (24, 6),
            defaults={
                "mappings": up_mapping,
                "color": {"mode": "thresholds"},
                "thresholds": thresholds((None, "red"), (1, "green")),
            },
            custom={"fillOpacity": 80, "lineWidth": 0},
            options={
                "showValue": "never",
                "mergeValues": True,
                "alignValue": "left",
                "rowHeight": 0.9,
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "single", "sort": "none"},
            },
        ),
        timeseries(
            "Time since the last successful poll",
            "Seconds since each account's balances, and the shared ticker, were last fetched; "
            "BTCTurkBalancesStale fires after a few poll intervals.",
            targets(
                (f"time() - btcturk_last_success_timestamp_seconds{{{ACC}}}", "{{account}}"),
                (f"time() - btcturk_ticker_last_success_timestamp_seconds{{{SEL}}}", "ticker"),
            ),
            "s",
        ),
        timeseries(
            "Poll duration",
            "Duration of each account's last balance poll, retries included.",
            targets((f"btcturk_poll_duration_seconds{{{ACC}}}", "{{account}}")),
            "s",
        ),
        row("BTCTurk API"),
        timeseries(
            "API requests by status code",
            "Requests to the BTCTurk API per second by HTTP status (timeout/connection: no answer). "
            "Shared calls (ticker, server time) are always included.",
            targets(
                (
                    f"sum by (code) (rate(btcturk_api_requests_total{{{ACC_OR_SHARED}}}[$__rate_interval]))",
                    "{{code}}",
                )
            ),
            "reqps",
            stack=True,
        ),
        timeseries(
            "API requests by endpoint",
            "Requests to the BTCTurk API per second by endpoint.",
            targets(
                (
                    f"sum by (endpoint) (rate(btcturk_api_requests_total{{{ACC_OR_SHARED}}}"
                    "[$__rate_interval]))",
                    "{{endpoint}}",
                )
            ),
            "reqps",
            stack=True,
        ),
        timeseries(
            "Poll failures by reason",
            "Polls that failed after retries, by reason (ticker: the shared price poll).",
            targets(
                (
                    f"sum by (account, reason) (increase(btcturk_poll_failures_total{{{ACC_OR_SHARED}}}"
                    "[$__rate_interval]))",
                    "{{reason}} {{account}}",
                )
            ),
            "short",
            stack=True,
        ),
        timeseries(
            "Clock offset",
            "BTCTurk API server clock minus the exporter's clock, as last measured.",
            targets((f"btcturk_clock_offset_seconds{{{SEL}}}", "{{instance}}")),
            "s",
        ),
        row("Exporter"),
        panel(
            "table",
            "Build info",
            "Version of each exporter and of the Python it runs on.",
            targets((f"btcturk_exporter_build_info{{{SEL}}}", ""), instant=True, table=True),
            "none",
            (8, 6),
            transformations=[
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True, "Value": True, "__name__": True, "job": True},
                        "indexByName": {"instance": 0, "version": 1, "python_version": 2},
                        "renameByName": {
                            "instance": "Instance",
                            "version": "Exporter version",
                            "python_version": "Python",
                        },
                    },
                }
            ],
            options={"showHeader": True},
        ),
        timeseries(
            "Exporter CPU",
            "CPU time used by the exporter process per second.",
            targets((f"rate(process_cpu_seconds_total{{{SEL}}}[$__rate_interval])", "{{instance}}")),
            "percentunit",
            (8, 6),
        ),
        timeseries(
            "Exporter memory",
            "Resident memory of the exporter process.",
            targets((f"process_resident_memory_bytes{{{SEL}}}", "{{instance}}")),
            "bytes",
            (8, 6),
        ),
        timeseries(
            "Scrape duration",
            "Time Prometheus takes to scrape the exporter.",
            targets((f"scrape_duration_seconds{{{SEL}}}", "{{instance}}")),
            "s",
            (12, 6),
        ),
        timeseries(
            "Samples per scrape",
            "Samples in each scrape: grows with accounts, assets and valuation currencies.",
            targets((f"scrape_samples_scraped{{{SEL}}}", "{{instance}}")),
            "short",
            (12, 6),
        ),
    ]
    return dashboard(
        HEALTH_UID,
        HEALTH_TITLE,
        "Polling, BTCTurk API and process health of btcturk-exporter.",
        panels,
        common_variables(),
    )


def render(board: Json) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def generate() -> dict[Path, str]:
    """Every dashboard file and its content."""
    # Imported here: dashboard_activity builds from this module's helpers.
    from tools.dashboard_activity import activity

    boards = (overview(), health(), activity())
    return {OUT_DIR / f"{board['uid']}.json": render(board) for board in boards}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if a committed file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generate().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    for path in stale:
        print(f"{path.relative_to(ROOT)} is out of date: run python -m tools.gen_dashboards", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
