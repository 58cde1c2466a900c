"""The subcommands as processes: a reader that stops an export early is no error; a cut backfill is."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import yaml

from exporter.api.records import Transfer
from exporter.ledger.store import Ledger
from exporter.simulator import Simulator, generate_keypair

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
VOLUME = re.findall(r"^VOLUME (\S+)$", DOCKERFILE, flags=re.MULTILINE)[-1]


def test_ledger_export_into_a_pipe_closed_early_exits_0_quietly(tmp_path: Path) -> None:
    deposits = [
        Transfer("fiat", n, 1_764_547_200_000 + n * 1000, "deposit", "TRY", Decimal(n))
        for n in range(1, 5001)
    ]
    with Ledger.open(tmp_path) as ledger:
        ledger.upsert_transfers("main", deposits)
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "ledger", "export", "--storage.path", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"account,time,")
    proc.stdout.close()  # like `| head -1`: far more than a pipe's buffer is still to come
    err = proc.stderr.read()
    assert proc.wait(30) == 0, err
    assert err == b""


def test_backfill_into_a_pipe_closed_early_fails_in_one_line(tmp_path: Path) -> None:
    keys = generate_keypair(seed=29)
    with Simulator("127.0.0.1", 0, seed=3) as sim:
        sim.add_account(*keys, history_days=10, seed=8)
        config = tmp_path / "config.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "api_url": sim.url,
                    "accounts": [{"name": "main", "public_key": keys[0], "private_key": keys[1]}],
                }
            ),
            encoding="utf-8",
        )
        config.chmod(0o600)
        proc = subprocess.Popen(
            [sys.executable, "-m", "exporter", "backfill", f"--config.file={config}",
             f"--graph-api.url={sim.url}", f"--storage.path={tmp_path / 'data'}",
             "--label.instance=localhost:9788"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith(b"# HELP ")
        proc.stdout.close()  # like `| head -1`: far more than a pipe's buffer is still to come
        err = proc.stderr.read().decode()
        assert proc.wait(120) == 1, err
    last = err.splitlines()[-1]
    assert last.startswith(
        "btcturk-exporter: backfill: standard output was closed before the file was complete"
    )
    assert "Traceback" not in err


def test_ledger_report_and_holdings_as_processes_from_the_ledger_alone(tmp_path: Path) -> None:
    """No configuration and no network: a TRY ledger needs no price for TRY."""
    with Ledger.open(tmp_path) as ledger:
        ledger.upsert_transfers(
            "main",
            [
                Transfer(
                    "fiat", 1, 1_764_547_200_000, "deposit", "TRY", Decimal(100)
                ),  # 1 Dec 2025, 03:00 TRT
                Transfer(
                    "fiat", 2, 1_767_214_800_000, "withdrawal", "TRY", Decimal(-40)
                ),  # 1 Jan 2026, 00:00 TRT
            ],
        )
    base = [sys.executable, "-m", "exporter", "ledger"]
    storage = f"--storage.path={tmp_path}"
    report = subprocess.run(
        [*base, "report", storage, "--period=month", "--until=2026-02-01", "--format=json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (report.returncode, report.stderr) == (0, "")
    rows = {(r["period"], r["currency"]): r for r in json.loads(report.stdout)}
    assert rows["2025-12", "TRY"]["deposits"] == "100" and rows["2025-12", "TRY"]["value_end"] == "100"
    assert rows["2026-01", "TRY"]["withdrawals"] == "40" and rows["2026-01", "TRY"]["value_end"] == "60"
    assert rows["2026-01", "TRY"]["time_weighted_return"] == "0"
    assert rows["2025-12", "USDT"]["value_end"] is None, "TRY in USDT has no cached price: absent"
    holdings = subprocess.run(
        [*base, "holdings", storage, "--at=2026-01-01", "--tz=UTC"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (holdings.returncode, holdings.stderr) == (0, "")
    assert holdings.stdout.splitlines()[1].split() == [
        "2026-01-01T00:00:00+00:00",
        "main",
        "TRY",
        "TRY",
        "60",  # the withdrawal at midnight in Istanbul was 21:00 UTC the day before
        "60",
        "60",
    ]


def image_argv(storage: Path) -> list[str]:
    """The argv the image's ENTRYPOINT gives, as the Dockerfile says, its volume path here `storage`."""
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT (\[.*\])$", DOCKERFILE, flags=re.MULTILINE)[-1])
    assert entrypoint[0] == "btcturk-exporter"
    # /var/lib is not writable here: only the volume's path changes, not the shape of the argv.
    return [sys.executable, "-m", "exporter", *(a.replace(VOLUME, str(storage)) for a in entrypoint[1:])]


def readme_container_commands() -> dict[str, list[str]]:
    """The arguments of each README `docker compose ... run ... exporter ARGS > FILE`, by subcommand."""
    found = re.findall(r"^docker compose .*? run --rm -T exporter (.+?) > \S+$", README, flags=re.MULTILINE)
    return {args.split()[0]: shlex.split(args) for args in found}


def test_the_readme_subcommands_run_in_the_container_as_the_image_passes_them(tmp_path: Path) -> None:
    """`docker compose run exporter backfill` arrives as `--storage.path=... backfill`: it must work."""
    commands = readme_container_commands()
    assert set(commands) == {"backfill", "ledger"}, commands
    keys = generate_keypair(seed=62)
    (tmp_path / "public").write_text(keys[0], encoding="utf-8")
    (tmp_path / "private").write_text(keys[1], encoding="utf-8")
    (tmp_path / "volume").mkdir()
    with Simulator("127.0.0.1", 0, seed=9) as sim:
        sim.add_account(*keys, history_days=3, seed=4)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BTCTURK_")}
        # What deploy/compose/live.yml gives the container, and the simulator for both hosts.
        env |= {
            "BTCTURK_PUBLIC_KEY_FILE": str(tmp_path / "public"),
            "BTCTURK_PRIVATE_KEY_FILE": str(tmp_path / "private"),
            "BTCTURK_API_URL": sim.url,
            "BTCTURK_GRAPH_API_URL": sim.url,
        }
        runs = {}
        for name in ("backfill", "ledger"):
            argv = image_argv(tmp_path / "volume") + commands[name]
            runs[name] = subprocess.run(
                argv, capture_output=True, text=True, env=env, timeout=120, check=False
            )
            assert runs[name].returncode == 0, (argv, runs[name].stderr)
    assert runs["backfill"].stdout.endswith("# EOF\n")
    assert "btcturk_balance{" in runs["backfill"].stdout
    # The ledger the backfill filled, in the volume the entrypoint names.
    header, first, *_ = runs["ledger"].stdout.splitlines()
    assert header.startswith("account,time,") and first.startswith("default,")
    # One spelling with the metrics (btcturk_asset_realized_profit), in the columns and the log.
    assert "realized" in header.split(",")
    assert "realised" not in runs["backfill"].stderr + runs["ledger"].stderr + header


def test_a_mistyped_subcommand_flag_is_one_line() -> None:
    for argv, meant in (
        (["backfill", "--conf", "x"], "backfill: unknown flag --conf; did you mean --config.file?"),
        (["ledger", "export", "--acount=x"], "ledger export: unknown flag --acount; did you mean --account?"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "exporter", *argv], capture_output=True, text=True, timeout=60, check=False
        )
        assert (result.returncode, result.stdout, result.stderr) == (2, "", f"btcturk-exporter {meant}\n")
