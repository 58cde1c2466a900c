"""Prometheus rules, alerts and example configuration: promtool checks plus the bundle's conventions."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_ast
import pytest
import yaml
from support import require_binary

from exporter.metrics.activity_families import LIVE_FAMILIES

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "prometheus"

RULES = PROM / "rules.yml"
ALERTS = PROM / "alerts.yml"
RULE_TESTS = (PROM / "rules_test.yml", PROM / "rules_test_no_thresholds.yml")
RUNBOOK = "https://github.com/btcturk-exporter/btcturk-exporter/blob/main/README.md#"
SEVERITIES = {"critical", "warning", "info"}
THRESHOLD_PREFIX = "btcturk:alert_threshold:"
# Series that come from Prometheus itself or from client_python rather than the exporter's code.
BUILTIN_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules_of(path: Path) -> list[dict[str, Any]]:
    return [rule for group in load(path)["groups"] for rule in group["rules"]]


ALERT_RULES = [rule for rule in rules_of(ALERTS) if "alert" in rule]
RECORDING_RULES = [rule for path in (RULES, ALERTS) for rule in rules_of(path) if "record" in rule]
ALERT_NAMES = [rule["alert"] for rule in ALERT_RULES]


def exporter_metric_names() -> set[str]:
    """btcturk_* names that appear in the exporter's source: a misspelt name in a rule is not among them."""
    names: set[str] = set()
    for source in (ROOT / "exporter").rglob("*.py"):
        names.update(re.findall(r"\bbtcturk_[a-z_]+[a-z]\b", source.read_text(encoding="utf-8")))
    # Counter families are named without `_total` in activity_metrics; their samples carry it.
    return names | {family.sample_name for family in LIVE_FAMILIES}


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, cwd=cwd, timeout=120)


# --- promtool ------------------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    result = run(promtool, "check", "rules", str(RULES), str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config(tmp_path: Path) -> None:
    """The example config is checked as shipped (its rule_files are relative to it) and from a copy."""
    promtool = require_binary("promtool")
    result = run(promtool, "check", "config", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout
    # A copy elsewhere, as docker-compose mounts it: the rule files must travel with it.
    for name in ("prometheus.yml", "rules.yml", "alerts.yml"):
        shutil.copy(PROM / name, tmp_path / name)
    result = run(promtool, "check", "config", str(tmp_path / "prometheus.yml"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_test_rules(test_file: Path) -> None:
    promtool = require_binary("promtool")
    result = run(promtool, "test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_config_scrapes_the_exporter() -> None:
    config = load(PROM / "prometheus.yml")
    assert config["rule_files"] == ["rules.yml", "alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for sc in jobs["btcturk"]["static_configs"] for t in sc["targets"]]
    assert targets == ["exporter:9788"]


# --- alert conventions ---------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ALERT_RULES, ids=ALERT_NAMES)
def test_alert_conventions(rule: dict[str, Any]) -> None:
    name = rule["alert"]
    assert re.fullmatch(r"BTCTurk(?:[A-Z][a-z0-9]*|[A-Z]+(?=[A-Z][a-z]|$))+", name), (
        f"{name}: CamelCase, BTCTurk*"
    )
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    summary = annotations["summary"]
    assert summary.endswith("."), f"{name}: summary must end with a period"
    assert "{{" not in summary and "$" not in summary, f"{name}: summary must be static"
    assert summary[0].isupper()
    assert "{{" in annotations["description"], f"{name}: description must be templated"
    assert annotations["description"].rstrip().endswith(".")
    assert annotations["runbook_url"] == RUNBOOK + name.lower()


def test_alert_names_are_unique() -> None:
    assert len(ALERT_NAMES) == len(set(ALERT_NAMES))


def test_every_required_alert_exists() -> None:
    """The conditions the issue asks for, found by what the expressions read."""
    exprs = {rule["alert"]: " ".join(rule["expr"].split()) for rule in ALERT_RULES}

    def find(*needles: str) -> list[str]:
        return [name for name, expr in exprs.items() if all(n in expr for n in needles)]

    assert find('up{job="btcturk"} == 0')
    assert find('absent(up{job="btcturk"})')
    assert find("btcturk_up == 0")
    assert find("time() - btcturk_last_success_timestamp_seconds", "btcturk_poll_interval_seconds")
    assert find("increase(btcturk_poll_failures_total", 'reason="auth"')
    assert find("increase(btcturk_poll_failures_total", 'reason="rate_limited"')
    assert find("abs(btcturk_clock_offset_seconds)")
    assert find("drop_ratio_1h", THRESHOLD_PREFIX + "portfolio_drop_ratio")
    assert find("btcturk_balance_request_fund > 0")
    # Account activity.
    assert find("account_asset:btcturk_withdrawals:rise_10m > 0")
    assert find("account_asset:btcturk_withdrawals:rise_10m", THRESHOLD_PREFIX + "withdrawal_value_try")
    assert find("btcturk_asset_withdrawals_enabled == 0", THRESHOLD_PREFIX + "withdrawals_disabled_value_try")
    assert find("btcturk_market_trading == 0", "btcturk_balance > 0", "label_join(")
    assert find("btcturk_activity_up == 0", "increase(btcturk_activity_sync_failures_total")


def test_runbook_anchors_are_listed_in_readme_when_written() -> None:
    """Once the README has its Runbook section, it has one `### Name` heading per alert."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Runbook\n(.*?)(?=^## |\Z)", readme, flags=re.MULTILINE | re.DOTALL)
    if section is None or "###" not in section.group(1):
        pytest.skip("the README has no runbook entries yet")
    headings = set(re.findall(r"^### (\S+)\s*$", section.group(1), flags=re.MULTILINE))
    assert set(ALERT_NAMES) <= headings, f"runbook entries missing: {sorted(set(ALERT_NAMES) - headings)}"


def test_every_alert_has_firing_and_quiet_unit_tests() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert set(ALERT_NAMES) - firing == set(), "alerts never shown firing"
    assert set(ALERT_NAMES) - quiet == set(), "alerts never shown quiet"


# --- recording rules and thresholds --------------------------------------------------------------


@pytest.mark.parametrize("rule", RECORDING_RULES, ids=[r["record"] for r in RECORDING_RULES])
def test_recording_rule_names(rule: dict[str, Any]) -> None:
    """level:metric:operations."""
    assert re.fullmatch(r"[a-z][a-z_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*", rule["record"])


def test_recording_rules_live_in_rules_yml() -> None:
    assert [r for r in rules_of(ALERTS) if "record" in r] == []


def test_thresholds_are_defined_once_and_all_used() -> None:
    defined = [r["record"] for r in rules_of(RULES) if r["record"].startswith(THRESHOLD_PREFIX)]
    assert len(defined) == len(set(defined)) >= 3
    for rule in rules_of(RULES):
        if rule["record"].startswith(THRESHOLD_PREFIX):
            assert promql_ast.constant_vector(rule["expr"]) is not None, "thresholds are constants"
    used = {
        s.name
        for rule in ALERT_RULES
        for s in promql_ast.selectors(rule["expr"])
        if s.name and s.name.startswith(THRESHOLD_PREFIX)
    }
    assert used == set(defined)
    # No alert compares against a bare number other than 0 (a "> 0" count or "== 0" state):
    # tunable numbers belong in the threshold series.
    for rule in ALERT_RULES:
        for number in promql_ast.compared_numbers(rule["expr"]):
            assert number == 0, f"{rule['alert']}: move {number} into rules.yml as a threshold"


@pytest.mark.parametrize(
    ("expr", "probes"),
    [
        ("btcturk_up == 0", ["btcturk_up{} == bool 0"]),
        # Only the top level: the comparison inside count() keeps filtering what it counts.
        ("count(btcturk_up == 0) > 0", ["count(btcturk_up{} == 0) > bool 0"]),
        (
            'up{job="btcturk"} == 0 or absent(up{job="btcturk"})',
            ['up{job="btcturk"} == bool 0', 'up{job="btcturk"}'],
        ),
        ("absent_over_time(btcturk_up[10m])", ["btcturk_up{}"]),
        (
            "a > on (job) group_left () b and c != 1",
            ["a{} > bool on (job) group_left () b{} and c{} != bool 1"],
        ),
    ],
)
def test_healthy_probes(expr: str, probes: list[str]) -> None:
    """What test_stack_e2e runs for an alert: `absent(x)` as `x`, `bool` on top-level comparisons."""
    assert promql_ast.healthy_probes(expr) == probes


def test_rules_read_only_existing_series() -> None:
    """Every series a rule reads is exported, recorded by a rule, or built into Prometheus."""
    known = exporter_metric_names() | BUILTIN_SERIES | {r["record"] for r in RECORDING_RULES}
    for rule in [*RECORDING_RULES, *ALERT_RULES]:
        for selector in promql_ast.selectors(rule["expr"]):
            assert selector.name in known, f"{rule.get('alert') or rule.get('record')}: {selector.name}?"


def dashboard_text() -> str:
    return " ".join(path.read_text(encoding="utf-8") for path in sorted(DASHBOARD_DIR.glob("*.json")))


def test_dashboard_recording_rules_keep_the_dashboard_labels() -> None:
    """Aggregations only drop `asset`, so job/instance/account filters still apply to the results.

    A rule no dashboard reads (a market price for an alert) may drop more, but never job or instance.
    """
    dashboards = dashboard_text()
    for rule in rules_of(RULES):
        if rule["record"].startswith(THRESHOLD_PREFIX):
            continue
        on_dashboard = rule["record"] in dashboards
        for _operator, kind, labels in promql_ast.aggregations(rule["expr"]):
            if on_dashboard:
                assert kind == "without" and labels <= {"asset"}, rule["record"]
            elif kind == "by":
                assert {"job", "instance"} <= labels, rule["record"]
            else:
                assert not labels & {"job", "instance"}, rule["record"]
