"""The `activity:` mapping and graph_api_url: defaults, every key, one line per problem, the summary."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config.activity_settings import ActivitySettings
from exporter.config.loader import ConfigError, load_config, summarize

PRIVATE = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz"


def write(tmp_path: Path, extra: dict[str, Any]) -> str:
    doc = {"accounts": [{"name": "main", "public_key": "pub", "private_key": PRIVATE}], **extra}
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return str(path)


def problems(tmp_path: Path, extra: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, extra), env or {})
    return info.value.problems


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {}), {})
    assert config.activity == ActivitySettings(
        enabled=True, since="730d", interval=300.0, cost_basis="average", currencies=("TRY", "USDT")
    )
    assert config.activity.graph_api_url == "https://graph-api.btcturk.com"


def test_every_key_and_the_shared_settings(tmp_path: Path) -> None:
    extra = {
        "value_currencies": ["USDT"],
        "rate_limit_share": 0.5,
        "graph_api_url": "http://127.0.0.1:8080/",
        "activity": {
            "enabled": False,
            "since": "2024-01-31",
            "interval": "1h",
            "cost_basis": "fifo",
            "request_deadline": "1m30s",
        },
    }
    activity = load_config(write(tmp_path, extra), {}).activity
    assert (activity.enabled, activity.since, activity.interval, activity.cost_basis) == (
        False,
        "2024-01-31",
        3600.0,
        "fifo",
    )
    assert activity.request_deadline == 90.0
    assert activity.currencies == ("USDT",)
    assert activity.rate_limit_share == 0.5
    assert activity.graph_api_url == "http://127.0.0.1:8080"


def test_the_environment_overrides_graph_api_url(tmp_path: Path) -> None:
    env = {"BTCTURK_GRAPH_API_URL": "http://127.0.0.1:9"}
    config = load_config(write(tmp_path, {"graph_api_url": "http://127.0.0.1:8"}), env)
    assert config.activity.graph_api_url == "http://127.0.0.1:9"
    assert problems(tmp_path, {}, {"BTCTURK_GRAPH_API_URL": "ftp://x"}) == [
        "BTCTURK_GRAPH_API_URL: must be an http:// or https:// URL, got 'ftp://x'"
    ]


def test_every_problem_one_line_with_its_key_path(tmp_path: Path) -> None:
    extra = {
        "activity": {
            "enabled": "yes",
            "since": "last year",
            "interval": "5 minutes",
            "cost_basis": "lofi",
            "sincee": "1d",
        }
    }
    found = problems(tmp_path, extra)
    assert len(found) == 5, found
    assert all("\n" not in p for p in found)
    by_key = {p.split(":")[0]: p for p in found}
    assert set(by_key) == {
        "activity.sincee",
        "activity.enabled",
        "activity.since",
        "activity.interval",
        "activity.cost_basis",
    }
    assert "got 'lofi'" in by_key["activity.cost_basis"]
    assert "'last year'" in by_key["activity.since"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], "activity: expected a mapping of settings, got list"),
        ({"since": True}, "activity.since: must be a UTC date like 2025-01-31 or a duration before now"),
        ({"since": "2024-02-30"}, "activity.since: not a date on the calendar (YYYY-MM-DD)"),
        ({"interval": 1.5}, "activity.interval: expected a duration such as 5m, got 1.5"),
        ({"interval": "2d"}, "activity.interval: "),
        ({"request_deadline": 1.5}, "activity.request_deadline: expected a duration such as 2m, got 1.5"),
        ({"request_deadline": "2d"}, "activity.request_deadline: must be at most 1d, got '2d'"),
        ({"request_deadline": "0s"}, "activity.request_deadline: must be a positive duration like 30s"),
        ({"request_deadline": "2 minutes"}, "activity.request_deadline: must be a duration like 30s"),
        ({"page_cap": 1}, "activity.page_cap: expected a whole number from 2 to 10000, got 1"),
        ({"page_cap": "30"}, "activity.page_cap: expected a whole number from 2 to 10000, got string"),
        ({"page_cap": True}, "activity.page_cap: expected a whole number from 2 to 10000, got "),
    ],
)
def test_bad_values(tmp_path: Path, raw: object, expected: str) -> None:
    (problem,) = problems(tmp_path, {"activity": raw})
    assert problem.startswith(expected), problem


ACCOUNT_YAML = """accounts:
  - name: main
    public_key: pub
    private_key: dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz
"""


def since_as_written(tmp_path: Path, text: str) -> Path:
    """A config file with `since:` exactly as a user types it (unquoted), not as yaml.dump quotes it."""
    path = tmp_path / "config.yml"
    path.write_text(f"{ACCOUNT_YAML}activity:\n  since: {text}\n", encoding="utf-8")
    return path


# Every form the README and config.example.yaml show, and Prometheus durations they promise.
@pytest.mark.parametrize("text", ["2025-01-31", "2024-01-31", "730d", "1y", "1d12h", "12h", "1w", "86400"])
def test_since_loads_every_documented_form_as_written(tmp_path: Path, text: str) -> None:
    assert load_config(str(since_as_written(tmp_path, text)), {}).activity.since == text


def in_days(days: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%d")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # YAML alone would read this as a date and fail with a 46-line traceback.
        ("2025-13-01", "activity.since: not a date on the calendar (YYYY-MM-DD), got '2025-13-01'"),
        ("1.5d", "activity.since: fractions are not allowed (write 1s500ms, not 1.5s), got '1.5d'"),
        ("1h1d", "activity.since: must be a UTC date like 2025-01-31 or a duration before now like 730d"),
        # Bounds: a future start reads an empty window forever; before the exchange opened, a window
        # reaching before 1970 is answered 400 forever.
        (in_days(2), f"activity.since: '{in_days(2)}' is in the future (today is {in_days(0)})"),
        ("2013-06-30", "activity.since: '2013-06-30' is before BTCTurk's first day (2013-07-01)"),
        ("30000d", "activity.since: '30000d' before now reaches back to "),
        ("20y", "activity.since: '20y' before now reaches back to "),
    ],
)
def test_since_refused_in_one_line_with_its_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(since_as_written(tmp_path, text)), {})
    (problem,) = info.value.problems
    assert problem.startswith(expected), problem
    assert "\n" not in problem


def test_since_bounds_are_the_exchange_first_day_and_today(tmp_path: Path) -> None:
    for text in ("2013-07-01", in_days(0)):
        assert load_config(str(since_as_written(tmp_path, text)), {}).activity.since == text


def test_summary_shows_the_settings_and_the_planned_use(tmp_path: Path) -> None:
    text = summarize(load_config(write(tmp_path, {"activity": {"interval": "1m", "page_cap": 30}}), {}))
    assert "activity: enabled" in text and "  page_cap: 30 (" in text
    assert "  since: 730d" in text and "  cost_basis: average" in text and "  interval: 1m" in text
    assert "  request_deadline: 2m (" in text
    assert "transactions/trade: 1 account every 1m = 1 calls/min of 120" in text
    assert "transactions/crypto: 1 account every 1m = 1 calls/min of 90" in text
    assert "exchangeinfo: 1 call every 5m" in text
    off = summarize(load_config(write(tmp_path, {"activity": {"enabled": False}}), {}))
    assert "activity: disabled" in off and "transactions/trade" not in off


@pytest.mark.parametrize("method", ["average", "fifo", "lifo", "hifo"])
def test_every_cost_basis_method_is_accepted(tmp_path: Path, method: str) -> None:
    config = load_config(write(tmp_path, {"activity": {"cost_basis": method}}), {})
    assert config.activity.cost_basis == method


def test_a_wrong_cost_basis_names_the_methods(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"activity\.cost_basis: must be one of average, fifo, lifo, hifo"):
        load_config(write(tmp_path, {"activity": {"cost_basis": "FIFO"}}), {})


def test_report_timezone_defaults_to_istanbul_and_takes_any_iana_zone(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, {}), {}).report.timezone == "Europe/Istanbul"
    config = load_config(write(tmp_path, {"report": {"timezone": "UTC"}}), {})
    assert config.report.timezone == "UTC"
    assert "report: timezone UTC" in summarize(config)


@pytest.mark.parametrize(
    ("report", "problem"),
    [
        ({"timezone": "Mars/Olympus"}, "report.timezone: unknown time zone 'Mars/Olympus'"),
        ({"timezone": 3}, "report.timezone: expected an IANA time zone name, got integer"),
        ({"tz": "UTC"}, "report.tz: unknown key"),
        ("UTC", "report: expected a mapping of settings"),
    ],
)
def test_a_bad_report_setting_is_one_line_naming_the_key(
    tmp_path: Path, report: object, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, {"report": report}), {})
    assert len(raised.value.problems) == 1
    assert raised.value.problems[0].startswith(problem), raised.value.problems
