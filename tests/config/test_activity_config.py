"""The `activity:` mapping and graph_api_url: defaults, every key, one line per problem, the summary."""

from __future__ import annotations

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
        "activity": {"enabled": False, "since": "2024-01-31", "interval": "1h", "cost_basis": "fifo"},
    }
    activity = load_config(write(tmp_path, extra), {}).activity
    assert (activity.enabled, activity.since, activity.interval, activity.cost_basis) == (
        False,
        "2024-01-31",
        3600.0,
        "fifo",
    )
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
            "cost_basis": "lifo",
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
    assert "got 'lifo'" in by_key["activity.cost_basis"]
    assert "'last year'" in by_key["activity.since"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], "activity: expected a mapping of settings, got list"),
        ({"since": 730}, "activity.since: expected a date (YYYY-MM-DD) or a duration (730d), got integer"),
        ({"since": "2024-02-30"}, "activity.since: expected a date as YYYY-MM-DD, got '2024-02-30'"),
        ({"interval": 1.5}, "activity.interval: expected a duration such as 5m, got 1.5"),
        ({"interval": "2d"}, "activity.interval: "),
        ({"page_cap": 1}, "activity.page_cap: expected a whole number from 2 to 10000, got 1"),
        ({"page_cap": "30"}, "activity.page_cap: expected a whole number from 2 to 10000, got string"),
        ({"page_cap": True}, "activity.page_cap: expected a whole number from 2 to 10000, got "),
    ],
)
def test_bad_values(tmp_path: Path, raw: object, expected: str) -> None:
    (problem,) = problems(tmp_path, {"activity": raw})
    assert problem.startswith(expected), problem


def test_summary_shows_the_settings_and_the_planned_use(tmp_path: Path) -> None:
    text = summarize(load_config(write(tmp_path, {"activity": {"interval": "1m", "page_cap": 30}}), {}))
    assert "activity: enabled" in text and "  page_cap: 30 (" in text
    assert "  since: 730d" in text and "  cost_basis: average" in text and "  interval: 1m" in text
    assert "transactions/trade: 1 account every 1m = 1 calls/min of 120" in text
    assert "transactions/crypto: 1 account every 1m = 1 calls/min of 90" in text
    assert "exchangeinfo: 1 call every 5m" in text
    off = summarize(load_config(write(tmp_path, {"activity": {"enabled": False}}), {}))
    assert "activity: disabled" in off and "transactions/trade" not in off
