"""The per-IP budget plan: the rule, its README table, and what --check-config says about it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from exporter import cli
from exporter.api.budget import (
    BY_NAME,
    BY_PATH,
    DEFAULT_SHARE,
    format_seconds,
    instances_needed,
    plan,
    planned_calls,
    shortest_interval,
)
from exporter.api.client import BALANCES, TICKER

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
PRIVATE = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz"


def test_documented_limits() -> None:
    limits = {name: budget.limit for name, budget in BY_NAME.items()}
    assert limits == {
        "balances": 120,
        "ticker": 600,
        "exchangeinfo": 600,  # not documented: treated like the ticker
        "transactions/trade": 120,
        "transactions/crypto": 90,
        "transactions/fiat": 90,
        "graph-api": 120,
    }
    assert BY_PATH[BALANCES].name == "balances" and BY_PATH[TICKER].name == "ticker"
    assert BY_PATH["/v1/ohlcs"] is BY_PATH["/v1/klines/history"]


def test_planned_calls_are_the_share_rounded_down() -> None:
    assert planned_calls(120, 0.8) == 96
    assert planned_calls(90, 0.8) == 72
    assert planned_calls(120, 1.0) == 120
    assert planned_calls(120, 0.7) == 84  # 120 x 0.7 is 83.99999999999999 in floats
    assert planned_calls(90, 0.01) == 0


@pytest.mark.parametrize("accounts", [1, 2, 3, 5, 7, 10, 20, 50, 99])
@pytest.mark.parametrize("share", [0.8, 1.0, 0.3, 0.77])
def test_the_shortest_interval_is_the_edge_of_the_plan(accounts: int, share: float) -> None:
    shortest = shortest_interval(accounts, 120, share)
    balances = plan(accounts, shortest, share)[0]
    assert balances.fits
    assert not plan(accounts, shortest - 0.001, share)[0].fits


def test_instances_split_the_accounts() -> None:
    assert instances_needed(3, 1.0, 120, 0.8) == 3  # one account a second fits 60 of the 96 calls
    assert instances_needed(50, 30.0, 120, 0.8) == 2  # 48 accounts per instance at 30 s
    assert instances_needed(48, 30.0, 120, 0.8) == 1
    assert instances_needed(1, 0.5, 120, 0.8) is None  # not even one account fits: more instances won't help


def test_readme_table_matches_the_rule() -> None:
    section = README.split("shortest `poll_interval` at the default", 1)[1]
    rows = re.findall(r"^\| (\d+) \| `([0-9a-z]+)` \|", section, flags=re.MULTILINE)
    assert [int(n) for n, _ in rows] == [1, 2, 5, 10, 20, 50]
    for accounts, shown in rows:
        assert shown == format_seconds(shortest_interval(int(accounts), 120, DEFAULT_SHARE)), accounts


def write(tmp_path: Path, accounts: int, interval: str) -> Path:
    doc = {
        "poll_interval": interval,
        "accounts": [
            {"name": f"a{i}", "public_key": f"p{i}", "private_key": PRIVATE} for i in range(accounts)
        ],
    }
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_check_config_shows_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--check-config", "--config.file", str(write(tmp_path, 3, "30s"))]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  balances: 3 accounts every 30s = 6 calls/min of 120 (5%, plan 96)" in out
    assert "  ticker: 1 call every 30s = 2 calls/min of 600 (0.3%, plan 480)" in out


def test_check_config_names_the_instances_needed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--check-config", "--config.file", str(write(tmp_path, 50, "30s"))]) == 1
    err = capsys.readouterr().err
    assert "50 accounts every 30s need 100 balances calls a minute, over the plan of 96" in err
    assert "use a poll_interval of at least 31s250ms, or split the accounts over 2 exporter instances" in err
