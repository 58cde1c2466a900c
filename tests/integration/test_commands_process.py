"""The subcommands as processes: a reader that stops early is not an error."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from exporter.api.records import Transfer
from exporter.ledger.store import Ledger


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
