"""The README is part of the product: its metric list and PromQL examples must stay true."""

import re
import subprocess
from decimal import Decimal
from pathlib import Path

from conftest import require_binary
from prometheus_client.parser import text_string_to_metric_families

from exporter.client import REASONS
from exporter.metrics import Renderer, Settings
from exporter.parsing import Balance, Ticker
from exporter.snapshot import SHARED, AccountSnapshot, PriceSnapshot, Store

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def exported_names() -> set[str]:
    """Every btcturk_ family a fully populated exporter renders."""
    store = Store(["main"], REASONS, [(SHARED, "ticker")])
    btc = Balance("BTC", "Bitcoin", Decimal(1), Decimal(1), Decimal(0), Decimal(0), Decimal(0))
    store.publish_balances(AccountSnapshot("main", (btc,), 1.0), 0.1)
    store.publish_prices(PriceSnapshot((Ticker("BTCTRY", "BTC", "TRY", *[Decimal(5)] * 4),), 1.0))
    store.count_request("main", "/api/v1/users/balances", "200")
    store.set_clock_offset(0.1)
    settings = Settings(30.0, 300.0, ("TRY",), "last", False)
    text = Renderer(settings, store.view).exposition().decode()
    return {f.name + ("_total" if f.type == "counter" else "") for f in text_string_to_metric_families(text)}


def test_every_metric_is_listed_in_the_readme() -> None:
    listed = set(re.findall(r"^\| `(btcturk_[a-z_]+)` \|", README, flags=re.MULTILINE))
    assert exported_names() - listed == set(), "metrics missing from the README's table"
    assert listed - exported_names() == set(), "the README lists metrics the exporter does not export"


def test_first_screen_has_the_two_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:15])
    assert "btcturk-exporter --demo" in first_screen
    assert "python -m pytest" in first_screen


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest" in ci


def test_promql_valuation_rules_are_valid(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    block = re.search(r"### Doing it in PromQL instead.*?```yaml\n(.*?)```", README, flags=re.DOTALL)
    assert block, "the recording-rule alternative is documented"
    rules = tmp_path / "rules.yml"
    rules.write_text(block.group(1), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
