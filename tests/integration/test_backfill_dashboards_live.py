"""The bundled dashboards over a backfilled past and a live present, queried as Grafana queries them.

The `joined` fixture (tests/conftest.py) runs the README's backfill recipe against a live exporter
scraped every second by a real Prometheus that evaluates prometheus/rules.yml, with 40 days of
simulated history: the 30-day picker shows backfilled data only, the 1-year one ends in it. For every
time-series panel of every bundled dashboard, at the 24h, 7d, 30d and 1y pickers, each query is sent
as Grafana's Prometheus data source sends it (tools/grafana_query.py: variables resolved to their
defaults from label_values(), Grafana's step, start and end rounded down to it) and the answer is
judged as the panel draws it:

* over the past, where the panel reads only series the backfill writes, every series must be one
  line: Grafana breaks a line where two points are more than a step apart, unless the gap is under
  the panel's `spanNulls` threshold (docs/backfill.md, "On the dashboards");
* over the live range, points must be Grafana's step apart: the fix for the past must not cost the
  present its resolution.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import promql_ast
import pytest
from support import ROOT, Joined, dashboard_panels, dashboard_variables, wait_for

from tools.grafana_query import grafana_request

pytestmark = pytest.mark.needs_prometheus

DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
PICKERS = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "1y": 365 * 86400}
# The finest picker's step is 10s: enough live range for a few of its points.
LIVE_POINTS = 3


def backfilled_names(path: Path) -> set[str]:
    """The metric names the backfill's OpenMetrics file holds (counters by their sample names)."""
    names = set()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split()
                names.add(name + "_total" if kind == "counter" else name)
    return names


def timeseries(board: dict) -> Iterator[dict]:
    return (panel for panel in dashboard_panels(board) if panel["type"] == "timeseries")


def connects(panel: dict, gap_s: float, step_s: float) -> bool:
    """Whether Grafana draws a line between two points `gap_s` apart in this panel.

    Grafana inserts a null where two points are more than the query's step apart, and the
    time-series panel joins over a null only when spanNulls is true, or a number of milliseconds
    greater than the gap.
    """
    span = panel["fieldConfig"]["defaults"].get("custom", {}).get("spanNulls", False)
    if gap_s <= step_s or span is True:
        return True
    return not isinstance(span, bool) and gap_s * 1000 < span


def points(series: dict) -> list[float]:
    return [float(t) for t, value in series["values"] if not math.isnan(float(value))]


def range_answers(
    joined: Joined, board: dict, range_s: float, now: float
) -> Iterator[tuple[str, dict, float, list]]:
    """(name, panel, step, series) for each target of each time-series panel, at one picker."""
    values = dashboard_variables(joined.prometheus.api, board, 60)
    for panel in timeseries(board):
        for target in panel["targets"]:
            request = grafana_request(panel, target, values, range_s, now, joined.scrape_s)
            result = joined.prometheus.api(request.path, **request.params)["result"]
            yield f"{panel['title']} [{target['refId']}]", panel, float(request.params["step"]), result


def reads_backfilled_only(panel: dict, names: set[str]) -> bool:
    read = {s.name for target in panel["targets"] for s in promql_ast.selectors(target["expr"])}
    return bool(read) and read <= names


@pytest.fixture(scope="module")
def live_for_a_while(joined: Joined) -> Joined:
    """The live range since the restart long enough for LIVE_POINTS points of the finest picker."""
    step_24h = float(grafana_request(
        {"maxDataPoints": 10000}, {"expr": "up"}, {}, PICKERS["24h"], joined.restarted_s, joined.scrape_s
    ).params["step"])  # fmt: skip
    wait_for(
        lambda: time.time() - joined.restarted_s > (LIVE_POINTS + 2) * step_24h,
        (LIVE_POINTS + 4) * step_24h,
        interval=0.5,
        what=f"{LIVE_POINTS} steps of live samples",
    )
    return joined


@pytest.mark.parametrize("picker", PICKERS)
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_the_backfilled_past_draws_as_a_line(live_for_a_while: Joined, path: Path, picker: str) -> None:
    joined = live_for_a_while
    board = json.loads(path.read_text(encoding="utf-8"))
    names = backfilled_names(joined.backfill)
    broken, empty, checked = [], [], 0
    for name, panel, step, result in range_answers(joined, board, PICKERS[picker], time.time()):
        if not reads_backfilled_only(panel, names):
            # Health metrics, locked balances, rules the backfill does not write: live only, where a
            # gap is an outage and must show.
            if connects(panel, 2 * step + 1, step):
                broken.append(f"{name}: reads live-only series, yet joins points across a gap")
            continue
        checked += 1
        past = [s for s in result if points(s) and points(s)[0] < joined.first_live_s]
        if not past:
            empty.append(name)
        for series in past:
            times = points(series)
            gaps = [(a, b) for a, b in itertools.pairwise(times) if a < joined.restarted_s]
            cut = [(a, b) for a, b in gaps if not connects(panel, b - a, step)]
            if cut:
                a, b = cut[0]
                broken.append(
                    f"{name} {series['metric']}: {len(cut)} breaks at step {step:g}s, "
                    f"the first {b - a:g}s wide at {time.strftime('%Y-%m-%d %H:%M', time.gmtime(a))}"
                )
    if path.stem != "btcturk-exporter-health":
        assert checked, "no time-series panel reads what the backfill writes"
    assert empty == [], f"no backfilled points at {picker}"
    assert broken == [], "\n".join(broken)


@pytest.mark.parametrize("picker", PICKERS)
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_the_live_range_keeps_grafanas_step(live_for_a_while: Joined, path: Path, picker: str) -> None:
    joined = live_for_a_while
    board = json.loads(path.read_text(encoding="utf-8"))
    coarse, few = [], []
    for name, _panel, step, result in range_answers(joined, board, PICKERS[picker], time.time()):
        for series in result:
            live = [t for t in points(series) if t > joined.restarted_s]
            wider = [b - a for a, b in itertools.pairwise(live) if b - a != step]
            if wider:
                coarse.append(
                    f"{name} {series['metric']}: points {sorted(set(wider))}s apart, step {step:g}s"
                )
            if picker == "24h" and live and len(live) < LIVE_POINTS:
                few.append(f"{name} {series['metric']}: {len(live)} live points")
    assert coarse == [], "\n".join(coarse)
    assert few == [], "\n".join(few)
