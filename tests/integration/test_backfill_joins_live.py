"""The README's backfill recipe against a live exporter scraped by a real Prometheus: one series, not two.

A real exporter polls the simulator and a real Prometheus scrapes it under the bundled job name (the
`joined` fixture, tests/conftest.py, shared with test_backfill_dashboards_live.py). The
backfill command then reads the live series' `job` and `instance`, and where their samples begin, from
that Prometheus (`--prometheus.url`); promtool turns its file into blocks; Prometheus restarts on the same
data directory. A range query over past and present then returns, per asset, one series whose labels
are the live ones, with the backfilled samples before the first live one and none after it.
"""

from __future__ import annotations

import math

from support import BACKFILL_JOB as JOB
from support import Joined, wait_for

HOUR = 3600


def test_the_backfill_reads_job_and_instance_from_prometheus(joined: Joined) -> None:
    assert f"job={JOB}, instance={joined.instance}" in joined.stderr
    assert "(where Prometheus's live series begin)" in joined.stderr


def test_past_and_live_are_one_series_per_asset_with_the_live_labels(joined: Joined) -> None:
    prometheus = joined.prometheus
    end = float(prometheus.query("/api/v1/query", query="time()")[0])

    def ranged() -> list[dict] | None:
        # As a dashboard asks: a range query over the last 3 days, at a 1h step.
        result = prometheus.query(
            "/api/v1/query_range",
            query='last_over_time(btcturk_balance{account="main"}[1h])',
            start=str(end - 3 * 24 * HOUR),
            end=str(end),
            step="3600",
        )
        live = [s for s in result if float(s["values"][-1][0]) > joined.first_live_s]
        return result if live else None

    series = wait_for(ranged, 60, interval=0.5, what="the live samples after the restart")
    assert series, "no btcturk_balance series over the range"
    by_asset: dict[str, list[dict]] = {}
    for s in series:
        by_asset.setdefault(s["metric"]["asset"], []).append(s)
    for asset, found in by_asset.items():
        assert len(found) == 1, f"{asset}: {len(found)} series where the past and live should be one"
        labels = found[0]["metric"]
        assert labels["job"] == JOB and labels["instance"] == joined.instance, labels
    # The past is there: points from the backfill before the first live sample, on the same series.
    assert any(float(s["values"][0][0]) < joined.first_live_s - 24 * HOUR for s in series)


def test_no_backfilled_sample_lies_at_or_after_the_first_live_one(joined: Joined) -> None:
    prometheus = joined.prometheus
    # Raw samples of every balance series over the two hours up to just after the first live scrape:
    # those before it are the backfill's hourly steps, and none of those is at or after it.
    result = prometheus.query(
        "/api/v1/query",
        query='btcturk_balance{account="main"}[2h]',
        time=str(joined.first_live_s + 5),
    )
    assert result
    for s in result:
        times = [float(t) for t, _ in s["values"]]
        before = [t for t in times if t < joined.first_live_s]
        assert before, "no backfilled sample before the first live one"
        assert all(t % HOUR == 0 for t in before), (s["metric"], before)
        assert max(before) < joined.first_live_s


def test_the_profit_recording_rule_is_filled_over_the_past(joined: Joined) -> None:
    prometheus = joined.prometheus
    at = str((int(joined.first_live_s) // HOUR - 30) * HOUR)  # a backfilled step, 30 hours before live
    rule = "account_currency:btcturk_portfolio_profit:value_minus_net_deposits"
    recorded = prometheus.query("/api/v1/query", query=f'{rule}{{account="main"}}', time=at)
    computed = prometheus.query(
        "/api/v1/query", query='btcturk_portfolio_value{account="main"} - btcturk_net_deposits', time=at
    )
    assert computed, "no profit to compare with at that step"
    assert recorded, f"{rule} has no value at a backfilled step"
    written = {r["metric"]["currency"]: float(r["value"][1]) for r in recorded}
    evaluated = {c["metric"]["currency"]: float(c["value"][1]) for c in computed}
    assert written.keys() == evaluated.keys()
    for currency, value in written.items():
        # The file holds the exact decimal; the rule subtracts two floats.
        assert math.isclose(value, evaluated[currency], rel_tol=1e-12), (currency, value, evaluated[currency])
