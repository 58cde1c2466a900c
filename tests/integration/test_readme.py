"""The README is part of the product: its metric list and PromQL examples must stay true."""

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families
from support import require_binary, wait_for

from exporter.activity.state import ActivitySnapshot
from exporter.activity.store import ActivityStore
from exporter.api.errors import REASONS
from exporter.api.market import MarketStatus
from exporter.api.parsing import Balance, Ticker
from exporter.api.records import Trade, Transfer
from exporter.ledger.costbasis import compute
from exporter.ledger.counters import count
from exporter.metrics.renderer import Renderer
from exporter.metrics.series import Settings
from exporter.poll.snapshot import SHARED, AccountSnapshot, PriceSnapshot, Store
from exporter.service import ReloadStatus, live_registry
from exporter.simulator import Simulator, demo_assets, generate_keypair

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
    # The activity part with a backfilled account and a market status: every activity family.
    activity = ActivityStore(["main"], True, lambda _: count([trade(), *transfers()]))
    activity.publish_snapshot(backfilled())
    activity.publish_market(market())
    # The live part too: it holds the reload gauges.
    renderer = Renderer(settings, store.view, live=live_registry(ReloadStatus()), activity=activity.view)
    text = renderer.scrape().decode()
    families = text_string_to_metric_families(text)
    return {
        f.name + ("_total" if f.type == "counter" else "") for f in families if f.name.startswith("btcturk_")
    }


def trade() -> Trade:
    return Trade(1, 1, 1_000, "BTC", "TRY", "buy", Decimal(5), Decimal(1), Decimal(-1), Decimal(-1))


def transfers() -> list[Transfer]:
    return [
        Transfer("crypto", 2, 2_000, "deposit", "BTC", Decimal(1)),
        Transfer("crypto", 3, 3_000, "withdrawal", "BTC", Decimal(-1)),
    ]


def backfilled() -> ActivitySnapshot:
    done = MappingProxyType({"trade": True, "crypto": True, "fiat": True})
    basis = compute([trade()], transfers(), "TRY", lambda *_: Decimal(5))
    return ActivitySnapshot(
        "main",
        True,
        True,
        4.0,
        MappingProxyType({}),
        MappingProxyType({"trade": 1, "crypto": 2, "fiat": 0}),
        done,
        MappingProxyType({"TRY": basis}),
        1_000,
        MappingProxyType({"trade": 1.0, "crypto": 1.0, "fiat": 1.0}),
        MappingProxyType({"BTC": "match"}),
        units=MappingProxyType({"TRY": Decimal(4)}),
    )


def market() -> MarketStatus:
    return MarketStatus(
        1.0,
        MappingProxyType({"BTCTRY": ("BTC", "TRY")}),
        MappingProxyType({"BTCTRY": True}),
        MappingProxyType({"BTC": True}),
        MappingProxyType({"BTC": True}),
    )


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


# --- every command the README shows --------------------------------------------------------------
#
# The ```sh blocks hold commands (other fences, ```text, ```yaml, ```console, hold output or files and
# are not run). Each command, split at `&&`, is run for real in a copy of the repository unless a
# rule below skips it with its reason: a command no rule skips runs, so a new README command is
# tested by default. Commands that start a server (the exporter, the simulator) are started, must
# serve, and are stopped; the exporter is moved to a free loopback port so the test can run beside
# another one. `--config.file=config.yml` reads a config.yml the test writes for a simulator.

RUN, SERVE = "run", "serve"
SKIPPED: list[tuple[str, str]] = [
    (r"^docker\b", "no Docker engine here; tests/deploy/test_deploy_compose.py checks the compose file"),
    (
        r"^kubectl (apply|create)\b",
        "needs a Kubernetes cluster; tests/deploy/test_deploy_render.py renders",
    ),
    (r"^pip install\b", "the suite runs in the installed package; .ci/run installs it so on a clean clone"),
    (r"\bpython -m pytest\b", "the test suite itself, which .ci/run runs"),
    (r"^export BTCTURK_", "sets a real account's API keys"),
    (r"^btcturk-exporter$", "polls a real BTCTurk account with the keys exported before it"),
    (r"--web\.config\.file", "needs your certificate and bcrypt hash; tests/web/test_webconfig.py covers it"),
    (r"^python benchmarks/run\.py\b", "takes minutes; its figures are in benchmarks/RESULTS.md"),
    (r"^(ruff|mypy)\b", "tests/test_style.py runs exactly these (ruff, mypy and lint-imports)"),
]


def strip_comment(line: str) -> str:
    """The line without its trailing `# comment` (a # inside quotes or a word is kept)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def readme_commands() -> list[str]:
    """Every command of every ```sh block as written, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            code = strip_comment(line).strip()
            commands.extend(" ".join(part.split()) for part in code.split(" && ") if part.strip())
    return commands


def action(command: str) -> tuple[str, str]:
    """(what to do, the reason when skipped)."""
    for pattern, reason in SKIPPED:
        if re.search(pattern, command):
            return "skip", reason
    if re.match(r"btcturk-exporter (backfill|ledger)\b", command):
        return RUN, ""  # subcommands that run to the end
    if re.match(r"btcturk-exporter\b", command) and "--check-config" not in command:
        return SERVE, ""
    if command.startswith("python -m exporter.simulator"):
        return SERVE, ""
    return RUN, ""


COMMANDS = readme_commands()


def test_the_readme_has_commands_and_runs_most() -> None:
    actions = [action(c)[0] for c in COMMANDS]
    assert len(COMMANDS) >= 15
    assert actions.count(RUN) + actions.count(SERVE) >= 8, list(zip(COMMANDS, actions, strict=True))


def test_commands_that_start_the_exporter_without_keys_say_demo() -> None:
    """The exporter refuses to start without keys unless told --demo."""
    for command in COMMANDS:
        subcommand = re.match(r"btcturk-exporter (backfill|ledger)\b", command)  # read keys, start nothing
        if re.match(r"btcturk-exporter\b", command) and action(command)[0] != "skip" and not subcommand:
            assert "--demo" in command or "--config.file" in command, command


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the repository, where commands may write, with a config.yml for a simulator."""
    copy = tmp_path_factory.mktemp("readme") / "repo"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(".git", ".venv", ".ci", "*cache*", ".hypothesis", "*.egg-info"),
    )
    simulator = Simulator("127.0.0.1", 0, seed=7)
    simulator.start()
    public_key, private_key = generate_keypair(7)
    # With history, so that `backfill` and `ledger export` have records to work on.
    simulator.add_account(public_key, private_key, demo_assets(7), history_days=20)
    config = {
        # Both hosts, as the README's simulator recipe says: past prices from the simulator too, so
        # the commands run as typed and no test reaches graph-api.btcturk.com.
        "api_url": simulator.url,
        "graph_api_url": simulator.url,
        "poll_interval": "5s",
        "accounts": [{"name": "main", "public_key": public_key, "private_key": private_key}],
    }
    (copy / "config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (copy / "config.yml").chmod(0o600)
    try:
        yield copy
    finally:
        simulator.stop()


def command_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTCTURK_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command(command: str, workdir: Path) -> None:
    what, reason = action(command)
    if what == "skip":
        pytest.skip(reason)
    for binary in ("promtool", "kubectl"):
        if command.startswith(binary):
            require_binary(binary)
    if what == RUN:
        result = subprocess.run(
            ["bash", "-c", command], cwd=workdir, env=command_env(), capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
        return
    port = free_port()
    # The README's placeholders for the reader's own key pair, filled with a valid throwaway pair.
    command = command.replace("PUBLIC:PRIVATE", ":".join(generate_keypair(11)))
    if command.startswith("btcturk-exporter"):
        argv = [*shlex.split(command), f"--web.listen-address=127.0.0.1:{port}"]
    else:
        argv = [*shlex.split(command), "--port", str(port)]
    log = workdir / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=workdir, env=command_env(), stdout=out, stderr=subprocess.STDOUT)
    try:

        def serving() -> bool:
            assert proc.poll() is None, f"{command} exited {proc.returncode}:\n{log.read_text()}"
            if argv[0] == "btcturk-exporter":
                response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                return response.status_code == 200 and "btcturk_up{" in response.text
            return requests.get(f"http://127.0.0.1:{port}/api/v2/server/time", timeout=2).ok

        wait_for(serving, 30, interval=0.2, what=f"{command} to serve")
    finally:
        proc.terminate()
        returncode = proc.wait(15)
    assert returncode == 0, f"{command} did not stop cleanly:\n{log.read_text()}"


def test_skip_rules_are_needed() -> None:
    """Every skip rule still matches a README command: stale rules hide nothing."""
    for pattern, _reason in SKIPPED:
        assert any(re.search(pattern, command) for command in COMMANDS), pattern
