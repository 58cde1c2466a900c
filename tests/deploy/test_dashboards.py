"""Grafana dashboards: generated output is current, and the bundle's lint rules hold, as tests.

The lint functions return a list of problems, so each rule is also tested against a dashboard that
breaks it: a linter that cannot fail proves nothing.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import promql_ast
import pytest
import yaml

from exporter.metrics.activity_families import ACTIVITY_STATES, LIVE_FAMILIES
from tools import gen_dashboards, grafana_query
from tools.dashboards.panels import BACKFILL_STEP

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"

Json = dict[str, Any]
DATASOURCE_REFS = {"$datasource", "${datasource}"}
RANGE_FUNCTIONS = {"rate", "irate", "increase"}
GRAFANA_VARIABLES = {"__rate_interval", "__range", "__interval", "__range_s", "__interval_ms", "__range_ms"}


def load_dashboards() -> dict[str, Json]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARD_DIR.glob("*.json"))
    }


DASHBOARDS = load_dashboards()
NAMES = list(DASHBOARDS)


def panels(board: Json) -> Iterator[Json]:
    """Every panel, including those nested in collapsed rows; rows themselves excluded."""
    for item in board.get("panels", []):
        if item.get("type") == "row":
            yield from item.get("panels", [])
        else:
            yield item


def annotations(board: Json) -> list[Json]:
    """The dashboard's Prometheus annotation queries (Grafana's built-in one left out)."""
    return [a for a in board.get("annotations", {}).get("list", []) if "expr" in a]


def targets(board: Json) -> Iterator[tuple[Json, Json]]:
    """Every query: the panels' targets, and each annotation query as a target of its own."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield panel, target
    for annotation in annotations(board):
        yield (
            {"title": f"annotation {annotation['name']}", "annotation": annotation},
            {"expr": annotation["expr"], "refId": "Anno", "datasource": annotation["datasource"]},
        )


def variables(board: Json) -> list[Json]:
    return board.get("templating", {}).get("list", [])


def variable(board: Json, name: str) -> Json | None:
    return next((v for v in variables(board) if v.get("name") == name), None)


def is_datasource_ref(ref: object) -> bool:
    if isinstance(ref, str):
        return ref in DATASOURCE_REFS
    return isinstance(ref, dict) and ref.get("uid") in DATASOURCE_REFS


# --- lint rules ----------------------------------------------------------------------------------


def lint_datasource_variable(board: Json) -> list[str]:
    found = [v for v in variables(board) if v.get("type") == "datasource"]
    if len(found) != 1:
        return [f"{len(found)} datasource variables, want exactly 1"]
    ds = found[0]
    problems = []
    if ds.get("name") != "datasource":
        problems.append(f"datasource variable is named {ds.get('name')!r}")
    if ds.get("query") != "prometheus":
        problems.append(f"datasource variable has type {ds.get('query')!r}, want prometheus")
    return problems


def lint_datasource_refs(board: Json) -> list[str]:
    problems = []
    for panel in panels(board):
        if not is_datasource_ref(panel.get("datasource")):
            problems.append(f"panel {panel.get('title')!r}: datasource {panel.get('datasource')!r}")
    for panel, target in targets(board):
        if not is_datasource_ref(target.get("datasource")):
            problems.append(f"panel {panel.get('title')!r} target {target.get('refId')}: datasource")
    for var in variables(board):
        if var.get("type") == "query" and not is_datasource_ref(var.get("datasource")):
            problems.append(f"variable {var.get('name')!r}: datasource {var.get('datasource')!r}")
    return problems


def lint_syntax(board: Json) -> list[str]:
    """Every query is PromQL by promql-parser, once Grafana's variables are expanded."""
    problems = []
    for panel, target in targets(board):
        try:
            promql_ast.parse(target.get("expr", ""))
        except ValueError as error:
            problems.append(f"panel {panel.get('title')!r} target {target.get('refId')}: {error}")
    return problems


def lint_selectors(board: Json) -> list[str]:
    problems = []
    for panel, target in targets(board):
        expr = target.get("expr", "")
        found = promql_ast.selectors(expr)
        if not found:
            problems.append(f"panel {panel.get('title')!r}: no selector in {expr!r}")
        for selector in found:
            for label in ("job", "instance"):
                if not selector.has(label, "=~", f"${label}"):
                    problems.append(
                        f'panel {panel.get("title")!r}: {selector.text} lacks {label}=~"${label}"'
                    )
    return problems


def lint_ranges(board: Json) -> list[str]:
    problems = []
    for panel, target in targets(board):
        for function, window in promql_ast.range_arguments(target.get("expr", "")):
            if function in RANGE_FUNCTIONS and window != "$__rate_interval":
                problems.append(
                    f"panel {panel.get('title')!r}: {function}(...[{window}]), want $__rate_interval"
                )
            elif function == "last_over_time" and window == BACKFILL_STEP:
                continue  # a backfilled gauge's newest sample at a moment: one lies in every window
            elif not window.startswith("$"):
                problems.append(f"panel {panel.get('title')!r}: fixed range [{window}]")
    return problems


def states_short_history(panel: Json) -> bool:
    """The panel says, in place of "No data", that its history is too short."""
    return "history shorter than" in str(panel.get("fieldConfig", {}).get("defaults", {}).get("noValue"))


def lint_history_lookback(board: Json) -> list[str]:
    """No query may need more history than a fresh install has, unless its panel says so when empty.

    `x offset $__range` is empty until Prometheus holds a whole range (7 days for "Last 7 days");
    the change panels use Grafana's diff reducer over a range query instead. A return over a fixed
    time is the exception: with less history it has no start, and any other start would show the
    return over a shorter time as this one, so its panel is empty and says why. An annotation may
    compare each step with the one before (`offset $__interval`), which the previous step holds.
    """
    problems = []
    for panel, target in targets(board):
        found = promql_ast.offsets(target.get("expr", ""))
        if "annotation" in panel:
            found = [o for o in found if o != "$__interval"]
        if found and not states_short_history(panel):
            problems.append(
                f"panel {panel.get('title')!r}: `offset` needs history a fresh install lacks, and the "
                f"panel does not say so when empty: {target['expr']!r}"
            )
    return problems


def lint_step_at_seven_days(board: Json) -> list[str]:
    """Grafana rounds a range query's end DOWN to the step: a 10m step hides the newest 10 minutes.

    With the compose stack's 30s scrape interval a 7-day range must get a 1m step, or every graph is
    empty for the first minutes of a fresh install.
    """
    problems = []
    for panel in panels(board):
        if not any(t.get("range") for t in panel.get("targets", [])):
            continue
        points = panel.get("maxDataPoints")
        if not isinstance(points, int):
            problems.append(f"panel {panel.get('title')!r}: no maxDataPoints (Grafana uses its width)")
        elif grafana_query.step(7 * 86400, points, 30)[1] > 60:
            problems.append(f"panel {panel.get('title')!r}: maxDataPoints {points} gives a 7d step over 1m")
    return problems


def lint_demo_marker(board: Json) -> list[str]:
    """The first panel is the DEMO DATA banner, driven by btcturk_exporter_demo."""
    first = next(iter(board.get("panels", [])), {})
    exprs = " ".join(t.get("expr", "") for t in first.get("targets", []))
    texts = json.dumps(first.get("fieldConfig", {}).get("defaults", {}).get("mappings", []))
    if "btcturk_exporter_demo" not in exprs or "DEMO DATA" not in texts or first.get("gridPos", {}).get("y"):
        return ["the first panel, at the top, must be the DEMO DATA marker on btcturk_exporter_demo"]
    return []


def lint_units(board: Json) -> list[str]:
    return [
        f"panel {panel.get('title')!r} has no unit"
        for panel in panels(board)
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    ]


def lint_variables_defined(board: Json) -> list[str]:
    defined = {v["name"] for v in variables(board)} | GRAFANA_VARIABLES
    problems = []
    for panel, target in targets(board):
        missing = grafana_query.variables(target.get("expr", "")) - defined
        if missing:
            problems.append(f"panel {panel.get('title')!r}: undefined variables {sorted(missing)}")
    return problems


def lint_variable_ids(board: Json) -> list[str]:
    """Grafana keys its variables by id (by name when there is none): two with one id leave one."""
    ids = [v.get("id", v.get("name")) for v in variables(board)]
    return [f"variable id {i!r} is used {ids.count(i)} times" for i in sorted(set(ids)) if ids.count(i) > 1]


def lint_account_variable(board: Json) -> list[str]:
    account = variable(board, "account")
    if account is None:
        return ["no account variable"]
    return [f"account variable: {key} is not set" for key in ("multi", "includeAll") if not account.get(key)]


def lint_required_variables(board: Json) -> list[str]:
    names = [v.get("name") for v in variables(board)]
    return [
        f"no {name} variable" for name in ("datasource", "job", "instance", "account") if name not in names
    ]


def lint_metadata(board: Json) -> list[str]:
    problems = []
    uid = board.get("uid")
    if not isinstance(uid, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", uid):
        problems.append(f"uid {uid!r} is not a fixed slug of at most 40 characters")
    if not board.get("tags") or "btcturk" not in board["tags"]:
        problems.append("tags must include btcturk")
    if board.get("id") is not None:
        problems.append("id must be null in a provisioned dashboard")
    if "__inputs" in board:
        problems.append("__inputs: export for sharing externally is off for provisioned files")
    ids = [p.get("id") for p in board.get("panels", [])]
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")
    return problems


def lint_links(board: Json, others: list[str]) -> list[str]:
    urls = [link.get("url", "") for link in board.get("links", [])]
    return [f"no link to dashboard {uid}" for uid in others if not any(f"/d/{uid}" in url for url in urls)]


LINTS: list[Callable[[Json], list[str]]] = [
    lint_datasource_variable,
    lint_datasource_refs,
    lint_syntax,
    lint_selectors,
    lint_ranges,
    lint_history_lookback,
    lint_step_at_seven_days,
    lint_demo_marker,
    lint_units,
    lint_variables_defined,
    lint_variable_ids,
    lint_account_variable,
    lint_required_variables,
    lint_metadata,
]


# --- the committed dashboards --------------------------------------------------------------------


def test_the_three_dashboards_exist() -> None:
    assert set(NAMES) == {"btcturk-overview.json", "btcturk-exporter-health.json", "btcturk-activity.json"}


def test_generated_json_is_current() -> None:
    """The JSON is generated from tools/dashboards/ by tools/gen_dashboards.py; edit those and rerun it."""
    for path, text in gen_dashboards.generate().items():
        assert path.exists(), f"{path.name} missing: run python -m tools.gen_dashboards"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} is stale: run python -m tools.gen_dashboards"
        )


@pytest.mark.parametrize("lint", LINTS, ids=[f.__name__ for f in LINTS])
@pytest.mark.parametrize("name", NAMES)
def test_lint(name: str, lint: Callable[[Json], list[str]]) -> None:
    assert lint(DASHBOARDS[name]) == []


@pytest.mark.parametrize("name", NAMES)
def test_links_to_the_other_dashboards(name: str) -> None:
    others = [b["uid"] for n, b in DASHBOARDS.items() if n != name]
    assert lint_links(DASHBOARDS[name], others) == []


def test_uids_are_unique_and_match_file_names() -> None:
    uids = [board["uid"] for board in DASHBOARDS.values()]
    assert len(uids) == len(set(uids))
    for name, board in DASHBOARDS.items():
        assert name == f"{board['uid']}.json"


def test_overview_has_the_promised_panels() -> None:
    board = DASHBOARDS["btcturk-overview.json"]
    by_type: dict[str, list[Json]] = {}
    for panel in panels(board):
        by_type.setdefault(panel["type"], []).append(panel)
    exprs = " ".join(t["expr"] for _, t in targets(board))
    titles = [p["title"] for p in panels(board)]
    assert any("TRY" in t for t in titles) and any("USDT" in t for t in titles), "portfolio in TRY and USDT"
    assert any(
        p["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal" for p in by_type["timeseries"]
    )
    assert "piechart" in by_type or "bargauge" in by_type, "allocation"
    table = by_type["table"][0]
    columns = table["transformations"][-1]["options"]["renameByName"].values()
    assert {"Balance", "Free", "Locked", "Value"} <= set(columns)
    assert "btcturk_balance_locked_value" in exprs, "locked share"
    changes = [p for p in panels(board) if "Change" in p["title"]]
    assert len(changes) == 3, "change over the selected range: total, percent, per asset"
    for change in changes:
        # diff (last minus first point): diffperc's scale differs between Grafana releases.
        assert change["options"]["reduceOptions"]["calcs"] == ["diff"], change["title"]
        assert all(t["range"] and not t["instant"] for t in change["targets"]), change["title"]
    assert variable(board, "currency") is not None


def test_health_has_the_promised_panels() -> None:
    exprs = " ".join(t["expr"] for _, t in targets(DASHBOARDS["btcturk-exporter-health.json"]))
    for metric in (
        "btcturk_up",
        "btcturk_last_success_timestamp_seconds",
        "btcturk_poll_duration_seconds",
        "btcturk_api_requests_total",
        "btcturk_poll_failures_total",
        "btcturk_clock_offset_seconds",
        "btcturk_exporter_build_info",
    ):
        assert metric in exprs, metric


def test_activity_has_the_promised_panels() -> None:
    board = DASHBOARDS["btcturk-activity.json"]
    by_title = {p["title"]: p for p in panels(board)}
    exprs = " ".join(t["expr"] for _, t in targets(board))
    table = by_title["Assets: cost and profit ($currency)"]
    columns = set(table["transformations"][-1]["options"]["renameByName"].values())
    assert {"Holding", "Cost basis", "Value", "Unrealized profit", "Realized profit"} <= columns
    value_vs_deposits = " ".join(
        t["expr"] for t in by_title["Portfolio value against net deposits ($currency)"]["targets"]
    )
    assert "btcturk_portfolio_value" in value_vs_deposits and "btcturk_net_deposits" in value_vs_deposits
    fees = " ".join(t["expr"] for t in by_title["Fees and taxes paid per day"]["targets"])
    assert "btcturk_trade_fees" in fees and "btcturk_trade_taxes" in fees
    assert "btcturk_trades" in " ".join(t["expr"] for t in by_title["Trades per day"]["targets"])
    assert "btcturk_deposits_total" in exprs and "btcturk_withdrawals_total" in exprs
    assert "account_currency:btcturk_portfolio_profit:" in exprs
    assert variable(board, "currency") is not None
    # "history: 40% synced" while a first backfill runs: one value per account, never 100% early.
    synced = by_title["History synced"]
    (target,) = synced["targets"]
    assert "btcturk_activity_backfill_progress_ratio" in target["expr"] and "by (account)" in target["expr"]
    assert target["expr"].startswith("floor(") and target["legendFormat"] == "{{account}}"
    assert synced["fieldConfig"]["defaults"]["unit"] == "percentunit"


def test_the_activity_dashboard_says_why_an_account_has_no_activity() -> None:
    """Every state btcturk_activity_state can be in has words on the dashboard, not "No data"."""
    board = DASHBOARDS["btcturk-activity.json"]
    (state,) = [p for p in panels(board) if p["title"] == "Activity per account"]
    assert "btcturk_activity_state{" in state["targets"][0]["expr"]
    (override,) = [o for o in state["fieldConfig"]["overrides"] if o["matcher"]["options"] == "Activity"]
    (mappings,) = [p["value"] for p in override["properties"] if p["id"] == "mappings"]
    texts = {value: shown["text"] for m in mappings for value, shown in m["options"].items()}
    assert set(texts) == set(ACTIVITY_STATES)
    assert texts["off"].startswith("off:") and texts["no_permission"].startswith("off:")


RETURN_PERIODS = {"7 days": "7d", "30 days": "30d", "90 days": "90d", "1 year": "1y"}
UNIT_VALUE = "btcturk_portfolio_unit_value"


def test_the_activity_dashboard_shows_time_weighted_returns() -> None:
    """The selected range, 7d / 30d / 90d / 1y and since the start, each per account, in percent,
    saying what it is and why it can be empty; a fixed period's start is the unit value that long
    ago, so a shorter history gives no value, never the return over a shorter time."""
    board = DASHBOARDS["btcturk-activity.json"]
    by_title = {p["title"]: p for p in panels(board)}
    row = [p["title"] for p in panels(board) if p["gridPos"]["y"] == by_title["7 days"]["gridPos"]["y"]]
    assert row == ["Return over the selected range", *RETURN_PERIODS, "Since the start"]
    for title in row:
        panel = by_title[title]
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"] == "percentunit", title
        assert defaults["noValue"] and "No data" not in defaults["noValue"], title
        assert "unit value" in defaults["noValue"], title
        description = panel["description"]
        assert "Time-weighted return" in description, title
        assert "price" in description and "reconcile" in description, title
        (target,) = panel["targets"]
        assert target["instant"] and target["legendFormat"] == "{{account}}", title
        assert promql_ast.selectors(target["expr"])[0].name == UNIT_VALUE, title
    for title, ago in {"Return over the selected range": "$__range", **RETURN_PERIODS}.items():
        expr = by_title[title]["targets"][0]["expr"]
        assert promql_ast.offsets(expr) == promql_ast.offsets(f"x offset {ago}"), title
        assert ("last_over_time", BACKFILL_STEP) in promql_ast.range_arguments(expr), title
        short = "the range" if ago.startswith("$") else ago
        no_value = by_title[title]["fieldConfig"]["defaults"]["noValue"]
        assert no_value.startswith(f"history shorter than {short}"), title
    since = by_title["Since the start"]["targets"][0]["expr"]
    assert since.endswith(" - 1") and promql_ast.offsets(since) == []


def test_deposits_and_withdrawals_are_marked_on_the_value_graph() -> None:
    board = DASHBOARDS["btcturk-activity.json"]
    by_id = {p["id"]: p for p in panels(board)}
    marks = {a["name"]: a for a in annotations(board)}
    assert set(marks) == {"Deposits", "Withdrawals"}
    counters = {"Deposits": "btcturk_deposits_total", "Withdrawals": "btcturk_withdrawals_total"}
    for name, counter in counters.items():
        mark = marks[name]
        assert mark["enable"] and not mark["hide"], name
        assert {s.name for s in promql_ast.selectors(mark["expr"])} == {counter}, name
        assert promql_ast.offsets(mark["expr"]) == ["$__interval"], name
        assert promql_ast.compared_numbers(mark["expr"]) == [0], name  # Grafana marks values above 0
        # At least the backfill's step: each step then meets a backfilled sample and the one before.
        assert mark["step"] == BACKFILL_STEP and not mark["useValueForTime"], name
        (marked,) = mark["filter"]["ids"]
        assert not mark["filter"]["exclude"]
        assert by_id[marked]["title"] == "Portfolio value against net deposits ($currency)", name
        assert "{{asset}}" in mark["titleFormat"] and "{{account}}" in mark["textFormat"], name


def test_the_history_lint_lets_a_panel_look_back_only_if_it_says_so() -> None:
    board = copy.deepcopy(DASHBOARDS["btcturk-activity.json"])
    year = next(p for p in panels(board) if p["title"] == "1 year")
    assert lint_history_lookback(board) == []
    del year["fieldConfig"]["defaults"]["noValue"]
    assert lint_history_lookback(board) != []
    board = copy.deepcopy(DASHBOARDS["btcturk-activity.json"])
    annotations(board)[0]["expr"] = annotations(board)[0]["expr"].replace("$__interval", "1d")
    assert lint_history_lookback(board) != []


def recorded_rules() -> dict[str, str]:
    return {
        r["record"]: r["expr"]
        for g in yaml.safe_load((ROOT / "prometheus" / "rules.yml").read_text())["groups"]
        for r in g["rules"]
    }


def lint_daily_counters(board: Json) -> list[str]:
    """Per-day panels read the exact rise over the day (recorded), never increase()'s extrapolation.

    increase(x[1d]) turns minutes of samples into fractions of a trade, and 1-day steps (a 1d min
    interval, which grafana_query's model of the request does not know) end at the last midnight:
    yesterday's bar at best, nothing on a fresh install.
    """
    problems = []
    recorded = recorded_rules()
    for panel, target in targets(board):
        if panel.get("interval"):
            problems.append(f"panel {panel['title']!r}: a min interval coarsens the step")
        for function, _window in promql_ast.range_arguments(target["expr"]):
            if function in RANGE_FUNCTIONS:
                problems.append(f"panel {panel['title']!r}: {function}() on a ledger counter")
        if "per day" in panel["title"]:
            for selector in promql_ast.selectors(target["expr"]):
                expr = recorded.get(selector.name or "", "")
                if not (selector.name or "").endswith(":rise_1d") or "min_over_time(" not in expr:
                    problems.append(f"panel {panel['title']!r}: {selector.text} is not an exact daily rise")
    return problems


def test_counters_over_a_day_are_exact_and_need_no_history() -> None:
    board = DASHBOARDS["btcturk-activity.json"]
    assert len([p for p in panels(board) if "per day" in p["title"]]) == 2
    assert lint_daily_counters(board) == []


@pytest.mark.parametrize(
    "expr",
    [
        'sum(increase(btcturk_trades_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))',
        'sum(btcturk_trades_total{job=~"$job", instance=~"$instance"})',
    ],
)
def test_daily_counter_lint_catches(expr: str) -> None:
    board = copy.deepcopy(DASHBOARDS["btcturk-activity.json"])
    daily = next(p for p in panels(board) if p["title"] == "Trades per day")
    daily["targets"][0]["expr"] = expr
    assert lint_daily_counters(board) != []


def test_daily_counter_lint_catches_one_day_steps() -> None:
    board = copy.deepcopy(DASHBOARDS["btcturk-activity.json"])
    next(p for p in panels(board) if p["title"] == "Trades per day")["interval"] = "1d"
    assert lint_daily_counters(board) != []


def test_panels_read_only_existing_series() -> None:
    """A misspelt metric makes an empty panel: every name must be exported or recorded."""
    known = {
        m
        for path in (ROOT / "exporter").rglob("*.py")
        for m in re.findall(r"\bbtcturk_[a-z_]+[a-z]\b", path.read_text())
    }
    known |= {
        r["record"]
        for g in yaml.safe_load((ROOT / "prometheus" / "rules.yml").read_text())["groups"]
        for r in g["rules"]
    }
    # Counter families are named without `_total` in activity_metrics; their samples carry it.
    known |= {family.sample_name for family in LIVE_FAMILIES}
    known |= {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    }
    for board in DASHBOARDS.values():
        for panel, target in targets(board):
            for selector in promql_ast.selectors(target["expr"]):
                assert selector.name in known, f"{panel['title']}: {selector.name}"


def test_layout_has_no_overlapping_panels() -> None:
    for name, board in DASHBOARDS.items():
        cells: dict[tuple[int, int], str] = {}
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, f"{name}: {panel['title']} is wider than the grid"
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, f"{name}: {panel['title']} overlaps {cells[x, y]}"
                    cells[x, y] = panel["title"]


# --- each lint rule catches what it is for -------------------------------------------------------


def broken(mutate: Callable[[Json], None]) -> Json:
    board = copy.deepcopy(DASHBOARDS["btcturk-overview.json"])
    mutate(board)
    return board


def first_target(board: Json) -> Json:
    return next(targets(board))[1]


def first_panel(board: Json) -> Json:
    return next(panels(board))


def _second_datasource_variable(board: Json) -> None:
    board["templating"]["list"].append(copy.deepcopy(variable(board, "datasource")))


def _hard_coded_datasource(board: Json) -> None:
    first_panel(board)["datasource"] = {"type": "prometheus", "uid": "prometheus"}


def _unbalanced_parenthesis(board: Json) -> None:
    first_target(board)["expr"] = 'sum(btcturk_portfolio_value{job=~"$job", instance=~"$instance"}'


def _range_in_a_binary_operation(board: Json) -> None:
    first_target(board)["expr"] = 'btcturk_up{job=~"$job", instance=~"$instance"}[$__rate_interval] > 0'


def _missing_instance(board: Json) -> None:
    first_target(board)["expr"] = 'sum(btcturk_portfolio_value{job=~"$job"})'


def _unfiltered_second_selector(board: Json) -> None:
    first_target(board)["expr"] = (
        'btcturk_up{job=~"$job", instance=~"$instance"} * on() group_left() btcturk_up'
    )


def _fixed_rate_window(board: Json) -> None:
    first_target(board)["expr"] = 'rate(btcturk_api_requests_total{job=~"$job", instance=~"$instance"}[5m])'


def _change_by_offset(board: Json) -> None:
    first_target(board)["expr"] = (
        'sum(btcturk_portfolio_value{job=~"$job", instance=~"$instance"})'
        ' - sum(btcturk_portfolio_value{job=~"$job", instance=~"$instance"} offset $__range)'
    )


def _pixel_resolution(board: Json) -> None:
    for panel in panels(board):
        panel.pop("maxDataPoints", None)


def _coarse_resolution(board: Json) -> None:
    for panel in panels(board):
        panel["maxDataPoints"] = 1000


def _no_demo_marker(board: Json) -> None:
    board["panels"].pop(0)


def _no_unit(board: Json) -> None:
    del first_panel(board)["fieldConfig"]["defaults"]["unit"]


def _undefined_variable(board: Json) -> None:
    first_target(board)["expr"] = 'btcturk_up{job=~"$job", instance=~"$instance", account=~"$acount"}'


def _one_id_for_every_variable(board: Json) -> None:
    for var in variables(board):
        var["id"] = "00000000-0000-0000-0000-000000000000"  # the 10.1 SDK's default for every one


def _single_account(board: Json) -> None:
    account = variable(board, "account")
    assert account is not None
    account["multi"] = False


def _random_uid(board: Json) -> None:
    board["uid"] = None


@pytest.mark.parametrize(
    ("lint", "mutate"),
    [
        (lint_datasource_variable, _second_datasource_variable),
        (lint_datasource_refs, _hard_coded_datasource),
        (lint_syntax, _unbalanced_parenthesis),
        (lint_syntax, _range_in_a_binary_operation),
        (lint_selectors, _missing_instance),
        (lint_selectors, _unfiltered_second_selector),
        (lint_ranges, _fixed_rate_window),
        (lint_history_lookback, _change_by_offset),
        (lint_step_at_seven_days, _pixel_resolution),
        (lint_step_at_seven_days, _coarse_resolution),
        (lint_demo_marker, _no_demo_marker),
        (lint_units, _no_unit),
        (lint_variables_defined, _undefined_variable),
        (lint_variable_ids, _one_id_for_every_variable),
        (lint_account_variable, _single_account),
        (lint_metadata, _random_uid),
    ],
    ids=lambda x: x.__name__,
)
def test_lint_catches(lint: Callable[[Json], list[str]], mutate: Callable[[Json], None]) -> None:
    assert lint(broken(mutate)) != []


def test_link_lint_catches_a_missing_link() -> None:
    board = broken(lambda b: b.update(links=[]))
    assert lint_links(board, ["btcturk-exporter-health"]) != []


# --- provisioning --------------------------------------------------------------------------------


def test_provisioning_files() -> None:
    prov = ROOT / "grafana" / "provisioning"
    datasources = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())
    assert datasources["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((prov / "dashboards" / "btcturk.yml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards")


# --- the Grafana request model the end-to-end test uses ------------------------------------------


def test_grafana_request_matches_grafana_for_a_7d_picker() -> None:
    """The figures Grafana's own code gives for "Last 7 days" with 10000 points and a 30s scrape."""
    panel = {"maxDataPoints": 10000}
    target = {"expr": "rate(x[$__rate_interval]) + y[$__interval] + z[$__range]", "range": True}
    now = 1_700_000_123.0
    request = grafana_query.grafana_request(panel, target, {}, 7 * 86400, now, 30)
    assert request.path == "query_range"
    assert request.params["query"] == "rate(x[2m0s]) + y[1m] + z[604800s]"  # max(1m + 30s, 4 x 30s)
    assert request.params["step"] == "60"
    assert float(request.params["end"]) == 1_700_000_100.0  # rounded down to the minute
    # Without maxDataPoints Grafana asks for one point per pixel: 10m steps on a ~1000 px wide panel,
    # which hide the newest 10 minutes.
    coarse = grafana_query.grafana_request({"maxDataPoints": 1000}, target, {}, 7 * 86400, now, 30)
    assert coarse.params["step"] == "600" and float(coarse.params["end"]) == 1_699_999_800.0
    instant = grafana_query.grafana_request(panel, {"expr": "x", "instant": True}, {}, 7 * 86400, now, 30)
    assert instant.path == "query" and instant.params["time"] == f"{now:.3f}"


def test_the_readmes_return_example_is_the_dashboards_query() -> None:
    """The README's PromQL for the 30-day return is the "30 days" panel's, for one account."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"^```promql\n(.*?)^```", readme, flags=re.MULTILINE | re.DOTALL)
    board = DASHBOARDS["btcturk-activity.json"]
    (panel,) = [p for p in panels(board) if p["title"] == "30 days"]
    expr = panel["targets"][0]["expr"]
    assert promql_ast.offsets(example) == promql_ast.offsets(expr)
    assert promql_ast.range_arguments(example) == promql_ast.range_arguments(expr)
    assert [s.name for s in promql_ast.selectors(example)] == [s.name for s in promql_ast.selectors(expr)]
    assert " ".join(example.split()).endswith("- 1")
