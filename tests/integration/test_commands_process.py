"""The subcommands as processes: a reader that stops an export early is no error; a cut backfill is."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import yaml

from exporter.api.records import Transfer
from exporter.ledger.store import Ledger
from exporter.simulator import Simulator, generate_keypair


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
