"""The ledger under hostile answers and a hostile disk: real exporter processes against the simulator.

A figure the ledger cannot vouch for is marked or absent: a transfer answered by two endpoints is one
record, a record id never changes, no `_total` series ever goes down, bad records are skipped by id,
records before the exchange's first day are refused, and a full, damaged or deleted ledger file is
said once, marks activity down and is recovered from (balances are never touched).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import (
    ExporterProcess,
    Scraping,
    activity_config,
    parse_metrics,
    sample,
    samples,
    start_exporter,
    wait_for,
)

from exporter.api.records import EXCHANGE_FIRST_DAY_MS
from exporter.ledger.schema import MIGRATIONS, VERSION
from exporter.ledger.store import Ledger
from exporter.simulator import Fault, Simulator, generate_keypair

MAIN = generate_keypair(seed=71)
TRADES = "/api/v1/users/transactions/trade"
CRYPTO = "/api/v1/users/transactions/crypto"
FIAT = "/api/v1/users/transactions/fiat"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_account(*MAIN, history_days=20, seed=3)
        yield simulator


def config(sim: Simulator) -> dict[str, Any]:
    return activity_config(sim, {"main": MAIN})


def backfilled(exporter: ExporterProcess) -> dict:
    return exporter.wait_metrics(
        lambda m: samples(m, "btcturk_trades_total") and samples(m, "btcturk_asset_cost_basis"),
        timeout=60,
        what="the backfill counted",
    )


def reread(sim: Simulator, *paths: str, times: int = 2) -> None:
    """Wait until each endpoint was read `times` more times (so a change has been met and stored)."""
    for path in paths:
        seen = sim.count(path)
        wait_for(lambda path=path, seen=seen: sim.count(path) >= seen + times, 20, what=f"re-reads of {path}")


def synced_after(exporter: ExporterProcess, moment: float) -> dict:
    """Metrics once every endpoint has been read (and the result published) after `moment`, twice over."""
    last = "btcturk_activity_last_sync_timestamp_seconds"
    first = exporter.wait_metrics(
        lambda m: (sample(m, last, account="main") or 0) > moment, 30, what="a sync"
    )
    seen = sample(first, last, account="main") or 0
    return exporter.wait_metrics(
        lambda m: (sample(m, last, account="main") or 0) > seen, 30, what="a second sync"
    )


def warnings(exporter: ExporterProcess, text: str) -> list[dict]:
    return [r for r in exporter.log_records() if text in str(r.get("msg"))]


class Totals(Scraping):
    """Scrapes /metrics in a thread and records every `_total` series that ever went down."""

    def __init__(self, exporter: ExporterProcess) -> None:
        super().__init__(exporter, every=0.05)
        self.highest: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.decreases: list[str] = []

    def look(self) -> None:
        with contextlib.suppress(Exception):
            metrics = parse_metrics(self.exporter.get("/metrics").text)
            self.scrapes += 1
            for key, value in metrics.items():
                if not key[0].endswith("_total"):
                    continue
                if value < self.highest.get(key, float("-inf")):
                    self.decreases.append(f"{key}: {self.highest[key]} -> {value}")
                self.highest[key] = max(value, self.highest.get(key, value))


def test_no_total_ever_decreases_under_repeated_changed_shrinking_and_reordered_answers(
    sim: Simulator, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
    history = sim.history(MAIN[0])
    deposit = next(t for t in history.fiat() if t.kind == "deposit")
    trade = max(history.trades, key=lambda t: t.fee.copy_abs())
    try:
        with Totals(exporter) as totals:
            before = backfilled(exporter)
            fees = sample(before, "btcturk_trade_fees_total", account="main", asset=trade.denominator)
            deposits = sample(before, "btcturk_deposits_total", account="main", asset="TRY")
            net = samples(before, "btcturk_net_deposits")
            records = samples(before, "btcturk_ledger_records")
            assert fees and deposits and net
            # The same deposit answered by /crypto too (same id): one record, counted once.
            sim.serve_items(CRYPTO, [deposit.to_json()])
            # A trade served again with other amounts, smaller fee: the first version is kept.
            changed = {**trade.to_json(), "fee": "-0.00000001", "tax": "0", "amount": str(trade.amount / 2)}
            sim.serve_items(TRADES, [changed])
            m = synced_after(exporter, sim.clock())
            assert sample(m, "btcturk_trade_fees_total", account="main", asset=trade.denominator) == fees
            assert sample(m, "btcturk_deposits_total", account="main", asset="TRY") == deposits
            assert samples(m, "btcturk_net_deposits") == net
            assert samples(m, "btcturk_ledger_records") == records
            assert sample(m, "btcturk_api_oddities_total", endpoint=CRYPTO, kind="changed_record") == 0
            assert sample(m, "btcturk_api_oddities_total", endpoint=TRADES, kind="changed_record") == 1
            (line,) = warnings(exporter, f"record {trade.id} again with other fields")
            assert line["level"] == "warn"
            # Shrinking answers (half the trades left out) and reordered ones (served oldest first).
            ids = [t.id for t in history.trades]
            sim.serve_items(TRADES, hidden=ids[::2])
            synced_after(exporter, sim.clock())
            sim.serve_items(TRADES, [changed], reverse=True)
            synced_after(exporter, sim.clock())
            # And new activity still counts, up.
            sim.clear_items()
            for _ in range(40):
                sim.drift()
            grown = exporter.wait_metrics(
                lambda m: (
                    sum(samples(m, "btcturk_trades_total").values())
                    > sum(samples(before, "btcturk_trades_total").values())
                ),
                timeout=30,
                what="new trades counted",
            )
            assert sample(grown, "btcturk_api_oddities_total", endpoint=TRADES, kind="changed_record") == 1
        assert totals.scrapes > 10
        assert totals.decreases == []
        with Ledger.read_only(storage / "ledger.db") as ledger:
            stored = next(t for t in ledger.trades("main") if t.id == trade.id)
            assert stored.fee == trade.fee and stored.amount == trade.amount
            assert sum(1 for t in ledger.transfers("main") if t.id == deposit.id) == 1
    finally:
        assert exporter.terminate() == 0


def test_bad_records_are_skipped_by_id_and_1970_is_refused(sim: Simulator, tmp_path: Path) -> None:
    trade = sim.history(MAIN[0]).trades[0]
    unparseable = {**trade.to_json(), "id": 12345, "price": "a lot"}
    from_1970 = {**trade.to_json(), "id": 12346, "timestamp": 86_400_000}
    sim.serve_items(TRADES, [unparseable, from_1970])
    storage = tmp_path / "storage"
    exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
    try:
        m = backfilled(exporter)
        reread(sim, TRADES, times=3)
        m = exporter.metrics()
        # Counted once each, however often they are served; the rest of every answer is kept.
        assert sample(m, "btcturk_api_oddities_total", endpoint=TRADES, kind="bad_record") == 2
        assert sample(m, "btcturk_activity_up", account="main") == 1
        served = sum(samples(m, "btcturk_trades_total").values())
        assert served == len(sim.history(MAIN[0]).trades)
        lines = warnings(exporter, "skipped, the rest kept")
        assert len(lines) == 2, lines
        assert any("record 12345" in r["msg"] and "price" in r["msg"] for r in lines)
        assert any("record 12346" in r["msg"] and "first day" in r["msg"] for r in lines)
        # No price was looked for back to 1970 (the 20 days of history need a few dozen requests).
        assert sim.count("/v1/klines/history") + sim.count("/v1/ohlcs") < 100
    finally:
        assert exporter.terminate() == 0
    with Ledger.read_only(storage / "ledger.db") as ledger:
        assert all(t.timestamp_ms >= EXCHANGE_FIRST_DAY_MS for t in ledger.trades("main"))
        assert {t.id for t in ledger.trades("main")}.isdisjoint({12345, 12346})


def wait_rebuilt(sim: Simulator, storage: Path) -> None:
    """Wait until the ledger file in `storage` holds as many trades as the simulator's record."""

    def rebuilt() -> bool:
        with Ledger.read_only(storage / "ledger.db") as ledger:
            return len(ledger.trades("main")) == len(sim.history(MAIN[0]).trades)

    wait_for(rebuilt, 30, what="the history read again into a new file")


def test_a_ledger_deleted_while_running_is_noticed_and_rebuilt(sim: Simulator, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
    try:
        before = backfilled(exporter)
        for suffix in ("", "-wal", "-shm"):
            (storage / f"ledger.db{suffix}").unlink(missing_ok=True)
        wait_for(
            lambda: warnings(exporter, "was deleted or replaced while running"), what="the deletion noticed"
        )
        wait_for(lambda: (storage / "ledger.db").is_file(), what="a new ledger file")
        wait_rebuilt(sim, storage)
        m = exporter.metrics()
        assert samples(m, "btcturk_trades_total") == samples(before, "btcturk_trades_total")
        assert len(warnings(exporter, "was deleted or replaced while running")) == 1
        assert sample(m, "btcturk_up", account="main") == 1
    finally:
        assert exporter.terminate() == 0


def moved_aside(storage: Path) -> list[Path]:
    """The ledger files moved aside (their -wal and -shm companions left out)."""
    return [p for p in storage.glob("ledger.db.damaged-*") if not p.name.endswith(("-wal", "-shm"))]


def damage_pages(path: Path) -> None:
    """Overwrite every page after the header page with noise, the header left valid."""
    with sqlite3.connect(path) as db:
        page = db.execute("PRAGMA page_size").fetchone()[0]
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with path.open("r+b") as f:
        size = f.seek(0, os.SEEK_END)
        for at in range(page, size, page):
            f.seek(at)
            f.write(os.urandom(page))


def test_damaged_pages_while_running_are_moved_aside_and_rebuilt(sim: Simulator, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
    try:
        backfilled(exporter)
        damage_pages(storage / "ledger.db")
        line = wait_for(lambda: warnings(exporter, "moved aside to"), 60, what="the damage noticed")
        (aside,) = moved_aside(storage)
        assert (
            len(line) == 1 and str(storage / "ledger.db") in line[0]["msg"] and aside.name in line[0]["msg"]
        )
        wait_rebuilt(sim, storage)
        assert sample(exporter.metrics(), "btcturk_up", account="main") == 1
    finally:
        assert exporter.terminate() == 0
    with sqlite3.connect(storage / "ledger.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


class Served(Scraping):
    """Scrapes /metrics in a thread and records every scrape that failed or did not serve the balances."""

    def __init__(self, exporter: ExporterProcess) -> None:
        super().__init__(exporter, every=0.1)
        self.missed: list[str] = []

    def look(self) -> None:
        try:
            up = sample(self.exporter.metrics(), "btcturk_up", account="main")
        except Exception as exc:  # a refused or failed scrape is a miss, said in the assertion
            self.missed.append(repr(exc))
            return
        self.scrapes += 1
        if up != 1:
            self.missed.append(f"btcturk_up {up}")


def spoil(path: Path, how: str) -> None:
    """Truncate the ledger file in place (same inode), or write garbage over its header."""
    with sqlite3.connect(path) as db:  # everything in the file itself, so the damage is to the records
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with path.open("r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if how == "truncated_half":
            f.truncate(size // 2)
        elif how == "truncated_empty":
            f.truncate(0)
        else:
            f.seek(0)
            f.write(b"this is no SQLite file, just garbage" + os.urandom(64))


def stored_ids(path: Path) -> tuple[list[int], list[int]]:
    """Every trade id and transfer id in a ledger file, repeats kept (so a doubled row shows)."""
    with Ledger.read_only(path) as ledger:
        return [t.id for t in ledger.trades("main")], [t.id for t in ledger.transfers("main")]


def simulated_ids(sim: Simulator) -> tuple[list[int], list[int]]:
    history = sim.history(MAIN[0])
    return sorted(t.id for t in history.trades), sorted(t.id for t in history.transfers)


@pytest.mark.parametrize("how", ["truncated_half", "truncated_empty", "garbage_header"])
def test_a_truncated_or_garbage_ledger_while_running_is_moved_aside_and_rebuilt(
    sim: Simulator, tmp_path: Path, how: str
) -> None:
    storage = tmp_path / "storage"
    path = storage / "ledger.db"
    exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
    try:
        with Served(exporter) as served:
            backfilled(exporter)
            spoil(path, how)
            # The publisher checks every page on disk every 30 s (LEDGER_CHECK_INTERVAL), writes sooner.
            lines = wait_for(lambda: warnings(exporter, "moved aside to"), 90, what="the damage noticed")
            (aside,) = moved_aside(storage)
            assert len(lines) == 1, lines
            assert str(path) in lines[0]["msg"] and aside.name in lines[0]["msg"], lines

            def rebuilt() -> bool:
                trades, transfers = stored_ids(path)
                return (sorted(trades), sorted(transfers)) == simulated_ids(sim)

            wait_for(rebuilt, 60, what="the history read again into a new file")
            m = exporter.metrics()
            assert sum(samples(m, "btcturk_trades_total").values()) == len(sim.history(MAIN[0]).trades)
        # Scraped all along (a busy box made a scrape every few seconds, not every 0.1 s), none missed.
        assert served.scrapes >= 3 and served.missed == [], served.missed
        assert len(warnings(exporter, "moved aside to")) == 1
        assert "Traceback" not in exporter.log_text()
    finally:
        assert exporter.terminate() == 0
    trades, transfers = stored_ids(path)
    assert (sorted(trades), sorted(transfers)) == simulated_ids(sim)
    assert len(trades) == len(set(trades)) and len(transfers) == len(set(transfers))


@pytest.mark.parametrize("damage", ["header", "pages", "newer_version"])
def test_a_damaged_ledger_at_start_never_stops_balances(sim: Simulator, tmp_path: Path, damage: str) -> None:
    storage = tmp_path / "storage"
    storage.mkdir()
    with Ledger.open(storage) as ledger:
        ledger.set_state("filler", "x" * 20_000)
    path = storage / "ledger.db"
    if damage == "header":
        with path.open("r+b") as f:
            f.write(b"not a database at all!")
    elif damage == "pages":
        damage_pages(path)
    else:
        with sqlite3.connect(path) as db:
            db.execute(f"PRAGMA user_version = {VERSION + 1}")
    exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
    try:
        backfilled(exporter)
        (line,) = warnings(exporter, "moved aside to")
        (aside,) = moved_aside(storage)
        assert str(path) in line["msg"] and aside.name in line["msg"]
        assert sample(exporter.metrics(), "btcturk_up", account="main") == 1
    finally:
        assert exporter.terminate() == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


def test_a_full_disk_is_said_once_marks_activity_down_and_recovers(
    sim: Simulator, tmp_path: Path, small_disk: Path
) -> None:
    storage = small_disk / "storage"
    exporter = start_exporter(tmp_path, config(sim), f"--storage.path={storage}")
    try:
        backfilled(exporter)
        filler = fill(small_disk)
        for _ in range(300):  # new records to store, more than the WAL's pages can hold
            sim.drift()
        m = exporter.wait_metrics(
            lambda m: sample(m, "btcturk_activity_up", account="main") == 0, 30, what="activity down"
        )
        assert sample(m, "btcturk_up", account="main") == 1
        reread(sim, TRADES, CRYPTO, FIAT)
        lines = warnings(exporter, f"disk full at {storage / 'ledger.db'}")
        assert len(lines) == 1, lines
        assert not warnings(exporter, "no transaction is active")
        assert not [r for r in exporter.log_records() if "Traceback" in str(r)]
        filler.unlink()
        exporter.wait_metrics(
            lambda m: sample(m, "btcturk_activity_up", account="main") == 1, 30, what="activity up again"
        )
        wait_for(lambda: warnings(exporter, "writable again"), what="the recovery said")
        total = sum(samples(exporter.metrics(), "btcturk_trades_total").values())
        wait_for(
            lambda: (
                sum(samples(exporter.metrics(), "btcturk_trades_total").values())
                == len(sim.history(MAIN[0]).trades)
            ),
            30,
            what=f"the new trades counted ({total} so far)",
        )
    finally:
        assert exporter.terminate() == 0


def export(storage: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "ledger", "export", "--storage.path", str(storage)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ledger_export_reads_a_read_only_or_old_ledger_without_touching_it(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    storage.mkdir()
    path = storage / "ledger.db"
    # A version 2 file (before transfers were keyed by id alone), as an older release left it.
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    for step in MIGRATIONS[:2]:
        step(db)
    db.execute("PRAGMA user_version = 2")
    db.execute(
        "INSERT INTO trades VALUES ('main', '7', NULL, 1735689600000, 'BTC', 'TRY', 'buy', '3000000',"
        " '0.5', '-12.5', '-2.5')"
    )
    for kind in ("crypto", "fiat"):  # the same deposit stored under both endpoints
        db.execute(
            "INSERT INTO transfers VALUES ('main', ?, '9', 1735603200000, 'deposit', 'TRY', '30104',"
            " NULL, NULL, NULL)",
            [kind],
        )
    db.close()  # the last connection: its WAL is checkpointed and removed
    before = path.read_bytes()
    # Read-only for root too (file modes are not): the directory bind-mounted read-only.
    view = tmp_path / "read-only"
    view.mkdir()
    done = subprocess.run(["mount", "--bind", str(storage), str(view)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True, capture_output=True)
        result = export(view)
    finally:
        subprocess.run(["umount", str(view)], check=False)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines()[1:] if line]
    assert len(rows) == 2, result.stdout  # the trade, and the deposit once
    # And on a writable directory too, the file is read as it is: not migrated, nothing beside it.
    assert export(storage).returncode == 0
    assert path.read_bytes() == before
    assert sorted(p.name for p in storage.iterdir()) == ["ledger.db"]
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_slow_price_history_never_holds_back_the_counters(sim: Simulator, tmp_path: Path) -> None:
    slow = 30.0  # each past-price request answers after this long
    for path in ("/v1/klines/history", "/v1/ohlcs"):
        sim.inject(Fault("latency", seconds=slow), endpoint=path)
    exporter = start_exporter(tmp_path, config(sim))
    try:
        m = exporter.wait_metrics(
            lambda m: samples(m, "btcturk_trades_total"), timeout=slow * 2 / 3, what="the counters"
        )
        # Published while the cost basis still waits for its prices.
        assert samples(m, "btcturk_asset_cost_basis") == {}
        assert sum(samples(m, "btcturk_trades_total").values()) == len(sim.history(MAIN[0]).trades)
    finally:
        sim.clear_faults()
        assert exporter.terminate(timeout=slow) == 0
