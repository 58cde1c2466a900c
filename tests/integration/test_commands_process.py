"""The subcommands as processes: a reader that stops early is not an error."""

from __future__ import annotations

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
