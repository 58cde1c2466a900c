"""The monitoring bundle end to end: a real Prometheus scrapes the exporter running its demo.

The exporter is started as a user would (`btcturk-exporter --demo`, through `python -m exporter`)
on a free loopback port; a real `prometheus` server on another loopback port scrapes it every
second and evaluates the project's rules.yml and alerts.yml every second. Then:

* every query of every dashboard panel must run without error AND return data for the 1h, 24h and
  7d pickers, while Prometheus holds only the minutes of samples this fresh stack has: an empty
  panel is a broken panel. The exception is a panel that says, in place of "No data", that the
  history is shorter than it needs (a return over 7 days has no start on a fresh install): it
  must run without error, and be empty rather than show a number over a shorter time
  (test_returns_dashboard_live.py checks them over a backfilled past). Annotation queries are sent
  as Grafana sends them too, and must run without error. Each query is sent as
  Grafana's Prometheus data source sends it (see
  `grafana_request`): its variables expanded, $__interval/$__rate_interval/$__range* computed from
  the range, the panel's maxDataPoints and the data source's scrape interval, range queries with
  Grafana's step and with start and end rounded down to it, instant queries at now;
* every dashboard variable's label_values() query must offer at least one value;
* every recording rule's expression and its recorded series must return data;
* every rule must be evaluated by Prometheus with health "ok" and no error.

Alert expressions are legitimately empty while all is well, so running them proves nothing about a
misspelt metric or a vector match that never pairs anything. Each alert is therefore probed with
`promql_ast.healthy_probes` (tests/promql_ast.py, on promql-parser's AST): `absent(x)` is probed
as `x`, and every top-level comparison gets the `bool` modifier, which makes `a > b` return a 0/1
sample for every pair of series that match instead of filtering them out. Each probe, and each
selector of the expression on its own, must return data; and no critical alert may be pending or
firing in the healthy demo.

Waiting is always polling a condition against a deadline, never a fixed sleep.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_ast
import pytest
import requests
import yaml
from support import (
    ExporterProcess,
    dashboard_panels,
    dashboard_variables,
    require_binary,
    start_exporter,
    wait_for,
)

from tools.grafana_query import GrafanaRequest, annotation_request, grafana_request

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.needs_prometheus

RULE_FILES = (ROOT / "prometheus" / "rules.yml", ROOT / "prometheus" / "alerts.yml")
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
SCRAPE_INTERVAL = "1s"
SCRAPE_SECONDS = 1.0
DATA_DEADLINE = 90.0
# The pickers checked: the longest is the one that breaks first on a fresh install.
PICKER_RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
# A range query's first point needs a whole step of data before its (rounded down) end: 1m at 7d.
DASHBOARD_DEADLINE = 420.0

Json = dict[str, Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Prometheus:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def api(self, path: str, **params: str) -> Any:
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise QueryError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[Json]:
        """The instant query's samples (a scalar counts as one)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"value": data["result"]}]
        return list(data["result"])

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


class QueryError(AssertionError):
    """Prometheus refused the query: no amount of waiting fixes that."""


@dataclass
class Stack:
    exporter: ExporterProcess
    prometheus: Prometheus


def exporter_args() -> list[str]:
    """--demo, plus a short poll interval when this exporter has the flag (30s otherwise).

    2s rather than 1s: the demo's three accounts must stay within the balances endpoint's rate
    limit (120 calls a minute), which the exporter enforces for the demo too.
    """
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--help"], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert result.returncode == 0, f"`btcturk-exporter --help` fails:\n{result.stdout}{result.stderr}"
    args = ["--demo"]
    if "--demo.poll-interval" in result.stdout:
        args += ["--demo.poll-interval", "2s"]
    return args


def start_prometheus(binary: str, workdir: Path, target: str) -> Prometheus:
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": [{"job_name": "btcturk", "static_configs": [{"targets": [target]}]}],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    last_log = ""
    for _attempt in range(3):  # the free port may be taken between probing and binding
        port = free_port()
        log_path = workdir / f"prometheus-{port}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={workdir / f'data-{port}'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = Prometheus(proc, f"http://127.0.0.1:{port}", log_path)

        def ready(server: Prometheus = server) -> bool:
            if server.proc.poll() is not None:
                return True  # exited: stop waiting, checked below
            return requests.get(f"{server.url}/-/ready", timeout=2).status_code == 200

        wait_for(ready, 30, what="prometheus /-/ready")
        if proc.poll() is None:
            return server
        last_log = server.log_text()
    raise AssertionError(f"prometheus did not start:\n{last_log}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("stack")
    exporter = start_exporter(workdir, None, *exporter_args())
    prometheus: Prometheus | None = None
    try:
        prometheus = start_prometheus(binary, workdir, f"127.0.0.1:{exporter.port}")
        yield Stack(exporter, prometheus)
    finally:
        if prometheus is not None and prometheus.proc.poll() is None:
            prometheus.proc.terminate()
            try:
                prometheus.proc.wait(15)
            except subprocess.TimeoutExpired:
                prometheus.proc.kill()
                prometheus.proc.wait(5)
        exporter.terminate()


def until_all_return_data(prometheus: Prometheus, queries: dict[str, str], deadline: float) -> dict[str, str]:
    """Poll every query until each returns data; the problems left at the deadline, by name."""
    pending = dict(queries)
    problems: dict[str, str] = {}
    end = time.monotonic() + deadline
    while pending:
        for name, expr in list(pending.items()):
            try:
                if prometheus.query(expr):
                    del pending[name]
            except QueryError as exc:
                problems[name] = f"error: {exc}"
                del pending[name]
        if not pending or time.monotonic() > end:
            break
        time.sleep(0.5)  # poll interval between rounds, not synchronisation
    problems.update({name: f"no data: {expr}" for name, expr in pending.items()})
    return problems


# --- dashboards ----------------------------------------------------------------------------------


def panels(board: Json) -> Iterator[Json]:
    return dashboard_panels(board)


def variable_values(prometheus: Prometheus, board: Json) -> dict[str, str]:
    return dashboard_variables(prometheus.api, board, DATA_DEADLINE)


def needs_more_history(panel: Json) -> bool:
    """The panel is empty until Prometheus holds more history than a fresh install, and says so."""
    return "history shorter than" in str(panel.get("fieldConfig", {}).get("defaults", {}).get("noValue"))


def returns_data(prometheus: Prometheus, request: GrafanaRequest) -> bool:
    data = prometheus.api(request.path, **request.params)
    if data["resultType"] in ("scalar", "string"):
        return True
    return any(series.get("values") or series.get("value") for series in data["result"])


@pytest.mark.parametrize("picker", PICKER_RANGES)
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_query_returns_data(stack: Stack, path: Path, picker: str) -> None:
    """Every panel shows data for this picker while Prometheus holds only minutes of samples."""
    board = json.loads(path.read_text(encoding="utf-8"))
    values = variable_values(stack.prometheus, board)
    # The precondition that makes this test worth something: a fresh install's short history.
    assert stack.prometheus.query('up{job="btcturk"} offset 15m') == [], "Prometheus has old data"
    pending = {
        f"{panel['title'] or panel['type']} [{target['refId']}]": (panel, target)
        for panel in panels(board)
        for target in panel.get("targets", [])
    }
    assert pending
    problems: dict[str, str] = {}
    for name, (panel, target) in list(pending.items()):
        if needs_more_history(panel):
            del pending[name]
            request = grafana_request(panel, target, values, PICKER_RANGES[picker], time.time(), 1)
            try:
                if returns_data(stack.prometheus, request):
                    problems[name] = f"a value from minutes of history: {request.params}"
            except QueryError as exc:
                problems[name] = f"error: {exc}"
    for annotation in board["annotations"]["list"]:
        if "expr" in annotation:
            request = annotation_request(annotation, values, PICKER_RANGES[picker], time.time(), 1)
            try:
                stack.prometheus.api(request.path, **request.params)
            except QueryError as exc:
                problems[f"annotation {annotation['name']}"] = f"error: {exc}"
    end = time.monotonic() + DASHBOARD_DEADLINE
    while pending:
        now = time.time()
        for name, (panel, target) in list(pending.items()):
            request = grafana_request(panel, target, values, PICKER_RANGES[picker], now, SCRAPE_SECONDS)
            try:
                if returns_data(stack.prometheus, request):
                    del pending[name]
            except QueryError as exc:
                problems[name] = f"error: {exc}"
                del pending[name]
        if not pending or time.monotonic() > end:
            break
        time.sleep(1.0)  # poll interval between rounds, not synchronisation
    for name, (panel, target) in pending.items():
        request = grafana_request(panel, target, values, PICKER_RANGES[picker], time.time(), 1)
        problems[name] = f"no data: {request.path} {request.params}"
    assert problems == {}, "\n".join(f"{name}: {why}" for name, why in problems.items())


def grafana_diff(series: list[Json]) -> float:
    """Grafana's diff reducer on a one-series range result: last minus first non-NaN value."""
    (only,) = series
    values = [float(v) for _, v in only["values"] if v.lower() != "nan"]
    return values[-1] - values[0]


def test_change_panels_agree_with_the_portfolio_value(stack: Stack) -> None:
    """Change (%) is exactly Change / the first value shown, computed from the same range query."""
    board = json.loads((ROOT / "grafana" / "dashboards" / "btcturk-overview.json").read_text("utf-8"))
    values = variable_values(stack.prometheus, board)
    by_title = {panel["title"]: panel for panel in panels(board)}
    absolute, relative = (
        by_title["Change over the selected range"],
        by_title["Change over the selected range (%)"],
    )

    def ranges() -> tuple[list[Json], list[Json]] | None:
        now = time.time()
        results = []
        for panel in (absolute, relative):
            request = grafana_request(panel, panel["targets"][0], values, 3600, now, SCRAPE_SECONDS)
            results.append(stack.prometheus.api(request.path, **request.params)["result"])
        # At least a few points, so that first and last differ in time.
        if all(len(r) == 1 and len(r[0]["values"]) >= 5 for r in results):
            return results[0], results[1]
        return None

    total, ratio = wait_for(ranges, DATA_DEADLINE, interval=1, what="a few points of portfolio value")
    first = float(total[0]["values"][0][1])
    assert first > 0
    assert grafana_diff(ratio) == pytest.approx(grafana_diff(total) / first, rel=1e-9, abs=1e-12)


# --- rules ---------------------------------------------------------------------------------------


def rules(kind: str) -> list[Json]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            found.extend(rule for rule in group["rules"] if kind in rule)
    return found


def evaluated_rules(prometheus: Prometheus) -> dict[str, Json]:
    out = {}
    for group in prometheus.api("rules")["groups"]:
        for rule in group["rules"]:
            out[rule["name"]] = rule
    return out


def test_every_rule_is_evaluated_healthy(stack: Stack) -> None:
    expected = {rule.get("alert") or rule["record"] for rule in rules("expr")}

    def all_evaluated() -> dict[str, Json] | None:
        state = evaluated_rules(stack.prometheus)
        done = all(
            name in state and not state[name].get("lastEvaluation", "").startswith("0001")
            for name in expected
        )
        return state if done else None

    state = wait_for(all_evaluated, DATA_DEADLINE, interval=0.5, what="every rule evaluated once")
    unhealthy = {
        name: (state[name]["health"], state[name].get("lastError"))
        for name in expected
        if state[name]["health"] != "ok" or state[name].get("lastError")
    }
    assert unhealthy == {}


def test_recording_rules_return_data(stack: Stack) -> None:
    queries = {}
    for rule in rules("record"):
        queries[f"{rule['record']} (expression)"] = rule["expr"]
        queries[f"{rule['record']} (recorded series)"] = rule["record"]
    problems = until_all_return_data(stack.prometheus, queries, DATA_DEADLINE)
    assert problems == {}, "\n".join(f"{name}: {why}" for name, why in problems.items())


def test_alert_expressions_read_series_that_exist(stack: Stack) -> None:
    queries = {}
    for rule in rules("alert"):
        for number, probe in enumerate(promql_ast.healthy_probes(rule["expr"])):
            queries[f"{rule['alert']} probe {number}"] = probe
        for selector in promql_ast.selectors(rule["expr"]):
            queries[f"{rule['alert']} selector {selector.text}"] = selector.text
    problems = until_all_return_data(stack.prometheus, queries, DATA_DEADLINE)
    assert problems == {}, "\n".join(f"{name}: {why}" for name, why in problems.items())


def test_no_critical_alert_in_a_healthy_demo(stack: Stack) -> None:
    wait_for(lambda: stack.prometheus.query('up{job="btcturk"} == 1'), DATA_DEADLINE, what="a scrape")
    critical = {rule["alert"] for rule in rules("alert") if rule["labels"]["severity"] == "critical"}
    active = [
        alert
        for alert in stack.prometheus.api("alerts")["alerts"]
        if alert["labels"]["alertname"] in critical
    ]
    assert active == []


def test_probes_do_catch_a_broken_alert(stack: Stack) -> None:
    """The probing is only worth something if it fails for the mistakes it is meant to catch."""
    misspelt = promql_ast.healthy_probes("btcturk_upp == 0")
    mismatched = promql_ast.healthy_probes(
        "time() - btcturk_last_success_timestamp_seconds"
        " > on (account) group_left () btcturk_poll_interval_seconds"
    )
    wait_for(lambda: stack.prometheus.query("btcturk_up"), DATA_DEADLINE, what="btcturk_up")
    assert stack.prometheus.query(misspelt[0]) == []
    assert stack.prometheus.query(mismatched[0]) == []
