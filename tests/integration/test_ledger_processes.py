"""The ledger against the processes a user runs on it: kill -9, two exporters, readers while it syncs.

Each test ends with the ledger equal to the simulator's own record (no record lost, none doubled) and
the balances served throughout.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import ExporterProcess, activity_config, sample, samples, start_exporter, wait_for

from exporter.ledger.store import Ledger
from exporter.simulator import Fault, Simulator, generate_keypair

MAIN = generate_keypair(seed=83)
TRADES = "/api/v1/users/transactions/trade"


def config(sim: Simulator) -> dict[str, Any]:
    return activity_config(sim, {"main": MAIN}, since="40d")


def ledger_ids(storage: Path) -> tuple[list[int], list[int]]:
    """Every trade id and transfer id in the ledger, repeats kept (so a doubled row shows)."""
    with Ledger(storage / "ledger.db") as ledger:
        return [t.id for t in ledger.trades("main")], [t.id for t in ledger.transfers("main")]


def record_ids(sim: Simulator) -> tuple[list[int], list[int]]:
    history = sim.history(MAIN[0])
    return sorted(t.id for t in history.trades), sorted(t.id for t in history.transfers)


def counted(exporter: ExporterProcess, sim: Simulator) -> dict:
    """Metrics once the backfill is complete and the trade counter holds every trade of the record."""
    total = len(sim.history(MAIN[0]).trades)
    return exporter.wait_metrics(
        lambda m: sum(samples(m, "btcturk_trades_total").values()) == total, 90, what="every trade counted"
    )


def test_kill_9_at_random_moments_of_a_first_backfill_loses_and_doubles_nothing(tmp_path: Path) -> None:
    rng = random.Random(5)
    with Simulator() as sim:
        sim.add_account(*MAIN, history_days=40, seed=4)
        storage = tmp_path / "storage"
        kills = 0
        for _ in range(6):
            exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
            before = sim.count(TRADES)
            # Somewhere inside the backfill: after a random number of trade pages read.
            pages = rng.randint(1, 4)
            wait_for(lambda b=before, n=pages: sim.count(TRADES) >= b + n, 60, what="reads")
            exporter.proc.send_signal(signal.SIGKILL)
            exporter.proc.wait(10)
            kills += 1
        exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
        try:
            counted(exporter, sim)
        finally:
            assert exporter.terminate(15) == 0
        trades, transfers = ledger_ids(storage)
        assert (sorted(trades), sorted(transfers)) == record_ids(sim)
        assert kills == 6


def test_two_exporters_on_one_storage_path_both_serve_and_the_ledger_stays_whole(tmp_path: Path) -> None:
    with Simulator() as sim:
        sim.add_account(*MAIN, history_days=20, seed=6)
        storage = tmp_path / "storage"
        first = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
        second = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
        try:
            for exporter in (first, second):
                exporter.wait_metrics(
                    lambda m: sample(m, "btcturk_up", account="main") == 1, 30, what="balances served"
                )
                counted(exporter, sim)
        finally:
            assert first.terminate(15) == 0
            assert second.terminate(15) == 0
        trades, transfers = ledger_ids(storage)
        assert (sorted(trades), sorted(transfers)) == record_ids(sim)
        for exporter in (first, second):
            assert "Traceback" not in exporter.log_text()


def test_ledger_export_while_the_exporter_syncs(tmp_path: Path) -> None:
    with Simulator() as sim:
        sim.add_account(*MAIN, history_days=40, seed=7)
        storage = tmp_path / "storage"
        exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
        try:
            wait_for(lambda: (storage / "ledger.db").exists(), 30, what="the ledger file")
            env = {k: v for k, v in os.environ.items() if not k.startswith("BTCTURK_")}
            exports = []
            for _ in range(3):  # during the backfill, as its writes go on
                result = subprocess.run(
                    [sys.executable, "-m", "exporter", "ledger", "export", f"--storage.path={storage}",
                     "--format=json"],
                    capture_output=True, text=True, timeout=120, env=env, check=False,
                )  # fmt: skip
                assert result.returncode == 0, result.stderr
                rows = json.loads(result.stdout)
                ids = [(r["kind"], r["id"]) for r in rows]
                assert len(ids) == len(set(ids)), "a record exported twice"
                exports.append(len(rows))
            assert exports == sorted(exports), "an export saw fewer records than the one before"
            counted(exporter, sim)
            assert "database is locked" not in exporter.log_text()
            assert sample(exporter.metrics(), "btcturk_up", account="main") == 1
        finally:
            assert exporter.terminate(15) == 0
        trades, transfers = ledger_ids(storage)
        assert (sorted(trades), sorted(transfers)) == record_ids(sim)


def test_backfill_on_the_storage_path_of_an_exporter_in_its_first_sync(tmp_path: Path) -> None:
    with Simulator() as sim:
        sim.add_account(*MAIN, history_days=40, seed=9)
        # Slow trade pages keep the exporter's first sync under way while the backfill runs beside it.
        sim.inject(Fault("latency", seconds=0.3), endpoint=TRADES, times=20)
        storage = tmp_path / "storage"
        exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
        try:
            wait_for(lambda: (storage / "ledger.db").exists(), 30, what="the ledger file")
            assert not samples(exporter.metrics(), "btcturk_trades_total"), "the first sync is under way"
            env = {k: v for k, v in os.environ.items() if not k.startswith("BTCTURK_")}
            result = subprocess.run(
                [sys.executable, "-m", "exporter", "backfill", f"--config.file={tmp_path / 'config.yml'}",
                 f"--storage.path={storage}", "--label.instance=localhost:9788",
                 f"--out={tmp_path / 'backfill.om'}"],
                capture_output=True, text=True, timeout=300, env=env, check=False,
            )  # fmt: skip
            if result.returncode == 0:
                assert (tmp_path / "backfill.om").read_text().rstrip().endswith("# EOF")
            else:
                # A refusal is one line that says why, never a traceback or SQLite's own words.
                lines = [line for line in result.stderr.splitlines() if line.strip()]
                assert len(lines) == 1, result.stderr
            for text in (result.stderr, exporter.log_text()):
                assert "Traceback" not in text and "database is locked" not in text, text
            counted(exporter, sim)
            assert sample(exporter.metrics(), "btcturk_up", account="main") == 1
        finally:
            assert exporter.terminate(15) == 0
        trades, transfers = ledger_ids(storage)
        assert (sorted(trades), sorted(transfers)) == record_ids(sim)


def test_a_read_only_storage_directory_keeps_balances_and_says_so_in_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root writes through directory permissions: a read-only bind needs a mount of its own.
        storage = tmp_path / "ro"
        storage.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(storage)], check=False
        )
        if mounted.returncode != 0:
            pytest.skip("cannot mount a read-only tmpfs here")
    else:
        storage = tmp_path / "ro"
        storage.mkdir()
        storage.chmod(0o555)
    try:
        with Simulator() as sim:
            sim.add_account(*MAIN, history_days=5, seed=8)
            exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
            try:
                metrics = exporter.wait_metrics(
                    lambda m: sample(m, "btcturk_up", account="main") == 1, 30, what="balances served"
                )
                assert sample(metrics, "btcturk_activity_up", account="main") in (0, None)
                # Let the activity sync try the ledger again on later turns: still one line, not one a turn.
                reads = sim.count("/api/v1/users/balances")
                wait_for(lambda: sim.count("/api/v1/users/balances") >= reads + 3, 30, what="more polls")
                lines = [r for r in exporter.log_records() if str(storage) in str(r.get("msg", ""))]
                assert len(lines) == 1, exporter.log_text()
                assert "Traceback" not in exporter.log_text()
            finally:
                assert exporter.terminate(15) == 0
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(storage)], check=False)
