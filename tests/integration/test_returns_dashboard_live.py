"""The activity dashboard's returns and deposit/withdrawal marks over a backfilled past, as Grafana asks.

The `joined` stack (tests/conftest.py): 40 days of simulated history, every holding priced, backfilled
ahead of a live exporter's scrapes. Each return panel's query is sent as Grafana sends it
(tools/grafana_query.py) and checked against the unit values the backfill wrote (its OpenMetrics file,
not Prometheus's reading of it) and the live one: the return since a time is the unit value now over
the one written at the newest step at or before that time, minus 1; a period longer than the history
has no value at all. Each annotation query is sent as Grafana sends it for a picker, and the steps it
marks (a value above 0) must be exactly the steps in which the simulator recorded a deposit or a
withdrawal of that asset.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ROOT, Joined, dashboard_panels, dashboard_variables, wait_for

from exporter.simulator.ledger import History
from tools.grafana_query import annotation_request, grafana_request

pytestmark = pytest.mark.needs_prometheus

BOARD = json.loads((ROOT / "grafana" / "dashboards" / "btcturk-activity.json").read_text(encoding="utf-8"))
PANELS = {panel["title"]: panel for panel in dashboard_panels(BOARD)}
DAY = 86400
PICKERS = {"24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "1y": 365 * DAY}
PERIODS = {"7 days": 7 * DAY, "30 days": 30 * DAY, "90 days": 90 * DAY, "1 year": 365 * DAY}
UNIT_VALUE = "btcturk_portfolio_unit_value"
COUNTERS = {"Deposits": "deposit", "Withdrawals": "withdrawal"}
SAMPLES = {"Deposits": "btcturk_deposits_total", "Withdrawals": "btcturk_withdrawals_total"}


def written(path: Path, metric: str, *keys: str) -> dict[tuple[str, ...], list[tuple[float, float]]]:
    """(time, value) of each sample of `metric` in the backfill's OpenMetrics file, by those labels."""
    found: dict[tuple[str, ...], list[tuple[float, float]]] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(metric + "{"):
                labels, value, stamp = line.rsplit(" ", 2)
                pairs = dict(p.split("=", 1) for p in labels[len(metric) + 1 : -1].split(","))
                key = tuple(pairs[k].strip('"') for k in keys)
                found.setdefault(key, []).append((float(stamp), float(value)))
    return found


def written_unit_values(path: Path) -> dict[tuple[str, ...], list[tuple[float, float]]]:
    """(time, unit value) per (account, currency), as the backfill wrote them."""
    return written(path, UNIT_VALUE, "account", "currency")


def written_at(series: list[tuple[float, float]], at: float) -> float | None:
    """The unit value of the newest step at or before `at`, within the backfill's step (1h)."""
    before = [(t, v) for t, v in series if at - 3600 < t <= at]
    return before[-1][1] if before else None


def answer(joined: Joined, request_path: str, params: dict[str, str]) -> list[dict]:
    return list(joined.prometheus.api(request_path, **params)["result"])


def by_account(result: list[dict]) -> dict[str, float]:
    return {s["metric"]["account"]: float(s["value"][1]) for s in result}


@pytest.fixture(scope="module")
def live_unit_value(joined: Joined) -> Joined:
    """The live exporter serves the unit value (after two reconciled reads of the history)."""
    wait_for(
        lambda: joined.prometheus.query("/api/v1/query", query=UNIT_VALUE),
        120,
        interval=0.5,
        what="the live unit value scraped",
    )
    return joined


def return_answers(joined: Joined, title: str, range_s: float) -> tuple[float, dict[str, float], dict]:
    """(now, return per account, the unit values now) for a return panel at one picker."""
    values = dashboard_variables(joined.prometheus.api, BOARD, 60)
    panel = PANELS[title]
    now = float(joined.prometheus.api("query", query="time()")["result"][0])
    request = grafana_request(panel, panel["targets"][0], values, range_s, now, joined.scrape_s)
    assert request.path == "query" and request.params["time"] == f"{now:.3f}"
    returns = by_account(answer(joined, request.path, request.params))
    selector = f'{UNIT_VALUE}{{currency="{values["currency"]}"}}'
    current = by_account(answer(joined, "query", {"query": selector, "time": f"{now:.3f}"}))
    return now, returns, {"currency": values["currency"], "current": current}


def expected_return(joined: Joined, currency: str, current: dict[str, float], at: float) -> dict[str, float]:
    """The unit value now over the one the backfill wrote at `at`, minus 1, where both exist."""
    written = written_unit_values(joined.backfill)
    out = {}
    for account, now_value in current.items():
        then = written_at(written.get((account, currency), []), at)
        if then is not None:
            out[account] = now_value / then - 1
    return out


@pytest.mark.parametrize("title", PERIODS)
def test_a_fixed_period_is_the_unit_value_ratio_or_nothing(live_unit_value: Joined, title: str) -> None:
    joined = live_unit_value
    now, returns, seen = return_answers(joined, title, PICKERS["24h"])  # the picker does not matter
    expected = expected_return(joined, seen["currency"], seen["current"], now - PERIODS[title])
    if PERIODS[title] < 40 * DAY:  # the stack's history
        assert expected, f"{title}: no unit value written that long ago to compare with"
    else:
        # History shorter than the period: no return, not the return over the history shown as this.
        assert expected == {}, "the backfill wrote unit values from before the simulated history"
        assert PANELS[title]["fieldConfig"]["defaults"]["noValue"].startswith("history shorter than")
    assert returns.keys() == expected.keys(), title
    for account, value in returns.items():
        assert math.isclose(value, expected[account], rel_tol=1e-9, abs_tol=1e-12), (title, account)


@pytest.mark.parametrize("picker", PICKERS)
def test_the_selected_range_starts_where_the_picker_does(live_unit_value: Joined, picker: str) -> None:
    joined = live_unit_value
    now, returns, seen = return_answers(joined, "Return over the selected range", PICKERS[picker])
    expected = expected_return(joined, seen["currency"], seen["current"], now - PICKERS[picker])
    assert bool(expected) == (PICKERS[picker] < 40 * DAY), picker
    assert returns.keys() == expected.keys(), picker
    for account, value in returns.items():
        assert math.isclose(value, expected[account], rel_tol=1e-9, abs_tol=1e-12), (picker, account)


def test_since_the_start_is_the_unit_value_minus_one(live_unit_value: Joined) -> None:
    _now, returns, seen = return_answers(live_unit_value, "Since the start", PICKERS["24h"])
    assert returns and returns.keys() == seen["current"].keys()
    for account, value in returns.items():
        assert value == pytest.approx(seen["current"][account] - 1, rel=1e-12)


def transfers_of(history: History, kind: str) -> Iterator[tuple[str, float]]:
    """(asset, time in seconds) of each recorded transfer of that kind."""
    for transfer in history.transfers:
        if transfer.kind == kind:
            yield transfer.currency, transfer.timestamp / 1000


@pytest.mark.parametrize("picker", ["7d", "30d", "1y"])
@pytest.mark.parametrize("name", COUNTERS)
def test_marks_fall_exactly_on_the_steps_with_a_transfer(joined: Joined, name: str, picker: str) -> None:
    """Grafana marks each step where the annotation's series is above 0: for each asset, exactly the
    steps (t - step, t] in which the simulator recorded a transfer of that kind, and no other. A step
    with no sample of the counter a step before (the backfill's series start at 0 at the step before
    the account's first record) cannot be compared, and has no mark: at the 1y picker's 6h steps,
    the first deposit's step may be one."""
    (annotation,) = [a for a in BOARD["annotations"]["list"] if a["name"] == name]
    values = dashboard_variables(joined.prometheus.api, BOARD, 60)
    now = float(joined.prometheus.api("query", query="time()")["result"][0])
    request = annotation_request(annotation, values, PICKERS[picker], now, joined.scrape_s)
    assert request.path == "query_range"
    step = float(request.params["step"])
    start, end = float(request.params["start"]), float(request.params["end"])
    marked: dict[str, set[float]] = {}
    for series in answer(joined, request.path, request.params):
        times = {float(t) for t, v in series["values"] if float(v) > 0}
        if times:
            marked.setdefault(series["metric"]["asset"], set()).update(times)
    first = {key[0]: series[0][0] for key, series in written(joined.backfill, SAMPLES[name], "asset").items()}
    expected: dict[str, set[float]] = {}
    for asset, when in transfers_of(joined.history, COUNTERS[name]):
        at = math.ceil(when / step) * step  # the step whose (t - step, t] holds it
        if start <= at <= end and at - step >= first[asset]:
            expected.setdefault(asset, set()).add(at)
    assert expected, f"no {COUNTERS[name]} in the {picker} range to mark"
    assert marked == expected, f"{name} at {picker}, step {step:g}s"
