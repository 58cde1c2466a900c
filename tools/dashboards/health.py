"""The "BTCTurk / Exporter health" dashboard: polling, the BTCTurk API and the exporter process."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as models

from tools.dashboards.board import HEALTH_UID, common_variables, dashboard
from tools.dashboards.panels import (
    ACC,
    ACC_OR_SHARED,
    SEL,
    UP_STEPS,
    Item,
    demo_marker,
    row,
    stat_panel,
    status_timeline,
    table_panel,
    timeseries_panel,
)


def polling_panels() -> list[Item]:
    return [
        stat_panel(
            "Scrape target up",
            "Whether Prometheus can scrape the exporter (the lowest of the selected instances).",
            [(f"min(up{{{SEL}}})", "")],
            "none",
            steps=UP_STEPS,
            background=True,
        ),
        stat_panel(
            "Accounts failing",
            "Accounts whose last balance poll failed.",
            [(f"count(btcturk_up{{{ACC}}} == 0) or vector(0)", "")],
            "none",
            steps=((None, "green"), (1, "red")),
            background=True,
        ),
        stat_panel(
            "Poll interval",
            "Configured time between two polls of each account.",
            [(f"max(btcturk_poll_interval_seconds{{{SEL}}})", "")],
            "s",
        ),
        stat_panel(
            "Largest clock offset",
            "Largest difference between the BTCTurk API server's clock and the exporter's clock.",
            [(f"max(abs(btcturk_clock_offset_seconds{{{SEL}}}))", "")],
            "s",
            steps=((None, "green"), (1, "orange"), (2, "red")),
            decimals=2,
        ),
        status_timeline(
            "Account status",
            "btcturk_up per account: ok when the last poll of its balances succeeded.",
            [(f"btcturk_up{{{ACC}}}", "{{account}}")],
            (24, 6),
        ),
        timeseries_panel(
            "Time since the last successful poll",
            "Seconds since each account's balances, and the shared ticker, were last fetched; "
            "BTCTurkBalancesStale fires after a few poll intervals.",
            [
                (f"time() - btcturk_last_success_timestamp_seconds{{{ACC}}}", "{{account}}"),
                (f"time() - btcturk_ticker_last_success_timestamp_seconds{{{SEL}}}", "ticker"),
            ],
            "s",
            past=False,
        ),
        timeseries_panel(
            "Poll duration",
            "Duration of each account's last balance poll, retries included.",
            [(f"btcturk_poll_duration_seconds{{{ACC}}}", "{{account}}")],
            "s",
            past=False,
        ),
    ]


def api_panels() -> list[Item]:
    requests = f"btcturk_api_requests_total{{{ACC_OR_SHARED}}}[$__rate_interval]"
    return [
        timeseries_panel(
            "API requests by status code",
            "Requests to the BTCTurk API per second by HTTP status (timeout/connection: no answer). "
            "Shared calls (ticker, server time) are always included.",
            [(f"sum by (code) (rate({requests}))", "{{code}}")],
            "reqps",
            stack=True,
            past=False,
        ),
        timeseries_panel(
            "API requests by endpoint",
            "Requests to the BTCTurk API per second by endpoint.",
            [(f"sum by (endpoint) (rate({requests}))", "{{endpoint}}")],
            "reqps",
            stack=True,
            past=False,
        ),
        timeseries_panel(
            "Poll failures by reason",
            "Polls that failed after retries, by reason (ticker: the shared price poll).",
            [
                (
                    f"sum by (account, reason) (increase(btcturk_poll_failures_total{{{ACC_OR_SHARED}}}"
                    "[$__rate_interval]))",
                    "{{reason}} {{account}}",
                )
            ],
            "short",
            stack=True,
            past=False,
        ),
        timeseries_panel(
            "Clock offset",
            "BTCTurk API server clock minus the exporter's clock, as last measured.",
            [(f"btcturk_clock_offset_seconds{{{SEL}}}", "{{instance}}")],
            "s",
            past=False,
        ),
    ]


def exporter_panels() -> list[Item]:
    return [
        table_panel(
            "Build info",
            "Version of each exporter and of the Python it runs on.",
            [(f"btcturk_exporter_build_info{{{SEL}}}", "")],
            "none",
            (8, 6),
            hidden=("Time", "Value", "__name__", "job"),
            renamed={"instance": "Instance", "version": "Exporter version", "python_version": "Python"},
        ),
        timeseries_panel(
            "Exporter CPU",
            "CPU time used by the exporter process per second.",
            [(f"rate(process_cpu_seconds_total{{{SEL}}}[$__rate_interval])", "{{instance}}")],
            "percentunit",
            (8, 6),
            past=False,
        ),
        timeseries_panel(
            "Exporter memory",
            "Resident memory of the exporter process.",
            [(f"process_resident_memory_bytes{{{SEL}}}", "{{instance}}")],
            "bytes",
            (8, 6),
            past=False,
        ),
        timeseries_panel(
            "Scrape duration",
            "Time Prometheus takes to scrape the exporter.",
            [(f"scrape_duration_seconds{{{SEL}}}", "{{instance}}")],
            "s",
            (12, 6),
            past=False,
        ),
        timeseries_panel(
            "Samples per scrape",
            "Samples in each scrape: grows with accounts, assets and valuation currencies.",
            [(f"scrape_samples_scraped{{{SEL}}}", "{{instance}}")],
            "short",
            (12, 6),
            past=False,
        ),
    ]


def health() -> models.Dashboard:
    return dashboard(
        HEALTH_UID,
        "Polling, BTCTurk API and process health of btcturk-exporter.",
        [
            demo_marker(),
            row("Polling"),
            *polling_panels(),
            row("BTCTurk API"),
            *api_panels(),
            row("Exporter"),
            *exporter_panels(),
        ],
        common_variables(),
    )
