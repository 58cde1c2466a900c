"""The `ledger export` and `backfill` subcommands in process: flags, errors, runs against the simulator."""

from __future__ import annotations

import csv
import io
import json
import shutil
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path

import pytest
import yaml
from costbasis_example import EXAMPLE_TRANSFERS, hourly
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter import cli
from exporter.api.client import BALANCES
from exporter.api.market import EXCHANGE_INFO
from exporter.api.records import TRADES
from exporter.api.transactions import KLINES, OHLCS
from exporter.backfill.timeline import Notice, iso
from exporter.commands import dispatch as commands
from exporter.commands.backfill import backfill_main, notice_lines
from exporter.commands.common import CommandError, moment
from exporter.ledger.store import Ledger
from exporter.simulator import Fault, Simulator, generate_keypair

HOUR_MS = 3_600_000
T0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z
KEYS = generate_keypair(seed=71)
REFUSED = generate_keypair(seed=72)
DAYS = 6


# --- flags and the settings seam -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2025-12-01", T0),
        ("2025-12-01T14:00Z", T0 + 14 * HOUR_MS),
        ("2025-12-01T14:30:15Z", T0 + 14 * HOUR_MS + 30 * 60_000 + 15_000),
        (" 2025-12-01 01:00 ", T0 + HOUR_MS),
    ],
)
def test_times_are_utc_dates_or_times(text: str, ms: int) -> None:
    # `ledger export` and `backfill` read their times in UTC: the one parser of moments, in UTC.
    assert moment(text, "--since", timezone.utc) == ms


@pytest.mark.parametrize("text", ["2025-13-01", "yesterday", "2025-12-01T25:00Z", "1764547200"])
def test_a_bad_time_names_the_flag(text: str) -> None:
    with pytest.raises(CommandError, match=r"^--until: expected a date"):
        moment(text, "--until", timezone.utc)


@pytest.mark.parametrize("text", ["0001-01-01", "1969-12-31", "9999-12-31"])
def test_a_time_outside_the_years_names_the_flag_and_the_range(text: str) -> None:
    # Before, 0001-01-01 and 9999-12-31 ended `ledger report` and `holdings` in a traceback.
    with pytest.raises(CommandError, match=rf"^--at: {text} is out of range \(years 1970 to 9998\)$"):
        moment(text, "--at", timezone.utc)


def test_ledger_needs_export_and_bad_flags_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ledger"]) == 2
    assert "usage: btcturk-exporter ledger export" in capsys.readouterr().err
    assert cli.main(["ledger", "import"]) == 2
    for argv in (
        ["ledger", "export", "--bogus"],
        ["backfill", "--stp", "1h"],
        ["ledger", "export", "--format=xml"],
    ):
        with pytest.raises(SystemExit) as exited:
            cli.main(argv)
        assert exited.value.code == 2


def test_export_without_a_ledger_says_how_to_get_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["ledger", "export", "--storage.path", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"btcturk-exporter: no ledger at {tmp_path}/ledger.db: start the exporter once, or run "
        f"`btcturk-exporter backfill --config.file FILE --storage.path {tmp_path}` to sync\n"
    )
    assert not (tmp_path / "ledger.db").exists(), "looking must not create the file"


# --- ledger export from the ledger alone -----------------------------------------------------------


def exported(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert commands.run(["ledger", "export", *argv]) == 0
    return capsys.readouterr().out


def test_export_values_the_worked_example_from_the_price_cache(
    example_ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = exported(capsys, "--storage.path", str(example_ledger), "--account", "alice")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["type"], r["asset"], r["value"], r["realized"]) for r in rows] == [
        ("deposit", "TRY", "2000000", ""),
        ("buy", "BTC", "800944", ""),
        ("deposit", "BTC", "210000", ""),
        ("buy", "BTC", "1101298", ""),
        ("sell", "BTC", "1498230", "230884.8"),
        ("buy", "USDT", "340401.2", ""),
        ("buy", "BTC", "105123.9", "2883.04"),  # through the cached USDT/TRY price
        ("withdrawal", "BTC", "216000", ""),
    ]
    assert {r["currency"] for r in rows} == {"TRY"}


def test_export_json_since_a_time_and_every_account(
    example_ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = exported(
        capsys, "--storage.path", str(example_ledger), "--format", "json", "--since", "2025-12-01T07:00Z"
    )
    rows = json.loads(out)
    assert [(r["account"], r["type"], r["value"]) for r in rows] == [
        ("alice", "buy", "105123.9"),
        ("alice", "withdrawal", "216000"),
        ("bob", "deposit", "2000000"),
    ]


def test_export_of_an_unknown_account_names_those_there_are(
    example_ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        commands.run(["ledger", "export", "--storage.path", str(example_ledger), "--account", "carol"]) == 1
    )
    assert capsys.readouterr().err == (
        f"btcturk-exporter: --account: no account 'carol' in {example_ledger}/ledger.db"
        " (it holds: alice, bob)\n"
    )


def test_export_of_a_ledger_from_a_newer_release_is_refused(
    example_ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(example_ledger / "ledger.db") as db:
        db.execute("PRAGMA user_version = 999")
    assert commands.run(["ledger", "export", "--storage.path", str(example_ledger)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("btcturk-exporter: ") and "newer" in err and err.count("\n") == 1


# --- against the simulator -------------------------------------------------------------------------


@dataclass
class World:
    sim: Simulator
    config: Path
    refused: Path
    storage: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("commands")
    with Simulator("127.0.0.1", 0, seed=5) as sim:
        sim.add_account(*KEYS, history_days=DAYS, seed=8)
        sim.add_account(*REFUSED, history_days=2, seed=9, can_read_activity=False)
        paths = []
        for name, keys in (("config.yml", KEYS), ("refused.yml", REFUSED)):
            config = {
                "api_url": sim.url,
                "value_currencies": ["TRY", "USDT"],
                "accounts": [{"name": "main", "public_key": keys[0], "private_key": keys[1]}],
            }
            (work / name).write_text(yaml.safe_dump(config), encoding="utf-8")
            (work / name).chmod(0o600)
            paths.append(work / name)
        yield World(sim, paths[0], paths[1], work / "data")


# The target the live series are scraped at: its labels go on every backfilled series.
INSTANCE = "--label.instance=localhost:9788"


def backfill(world: World, *argv: str, storage: Path | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    flags = ["--config.file", str(world.config), "--graph-api.url", world.sim.url, INSTANCE]
    code = backfill_main([*flags, "--storage.path", str(storage or world.storage), *argv], out, err)
    return code, out.getvalue(), err.getvalue()


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float, float]]]:
    found: dict[str, list[tuple[dict[str, str], float, float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found.setdefault(s.name, []).append((s.labels, s.value, float(s.timestamp)))
    return found


def test_backfill_syncs_prices_and_writes_the_file_then_reuses_the_ledger(world: World) -> None:
    target = world.storage.parent / "first.om"
    trades_before, klines_before = world.sim.count(TRADES), world.sim.count(KLINES)
    code, out, err = backfill(world, "--out", str(target))
    assert code == 0, err
    assert out == ""
    text = target.read_text(encoding="utf-8")
    assert text.endswith("# EOF\n")
    assert not target.with_name("first.om.partial").exists()
    found = samples(text)
    assert {
        "btcturk_balance",
        "btcturk_balance_value",
        "btcturk_portfolio_value",
        "btcturk_trades_total",
    } <= set(found)
    assert not any(name.startswith(("btcturk_up", "btcturk_scrape", "btcturk_activity")) for name in found)
    assert {labels["currency"] for labels, _, _ in found["btcturk_portfolio_value"]} == {"TRY", "USDT"}
    # Every series carries the labels Prometheus gives the live ones, so that past and live are one.
    assert {(labels["job"], labels["instance"]) for f in found.values() for labels, _, _ in f} == {
        ("btcturk", "localhost:9788")
    }
    history = world.sim.history(KEYS[0])
    trades = sum(
        v
        for labels, v, when in found["btcturk_trades_total"]
        if when == max(w for _, _, w in found["btcturk_trades_total"])
    )
    assert trades == len(history.trades)
    first_record = min(t.timestamp for t in [*history.trades, *history.transfers])
    stamps = [round(when * 1000) for _, _, when in found["btcturk_portfolio_value"]]
    assert first_record - HOUR_MS <= min(stamps) < first_record  # from the step before the first record
    assert world.sim.count(TRADES) > trades_before and world.sim.count(KLINES) > klines_before
    summary = err.splitlines()[-1]
    assert summary.startswith("backfill: done: 1 account, ") and f"into {target}" in summary
    assert f"{BALANCES} 1" in summary and "API calls" in summary
    assert "synced account main trade:" in err and "prices of BTCTRY ready" in err

    # Again: the ledger is synced and its prices cached, so only the recent window and the open candles.
    klines_before = world.sim.count(KLINES)
    code, _, err = backfill(world, "--out", str(target))
    assert code == 0, err
    assert "synced account main trade: 0 records new or changed" in err
    assert world.sim.count(KLINES) - klines_before <= 2 * 10, "cached prices were fetched again"


def test_backfill_to_stdout_between_since_and_until_at_a_day_step(world: World) -> None:
    now_ms = int(world.sim.clock() * 1000)
    day = 86_400_000
    until_day = (now_ms // day - 1) * day
    since, until = until_day - 3 * day, until_day
    code, out, err = backfill(world, "--since", iso(since), "--until", iso(until), "--step", "1d")
    assert code == 0, err
    stamps = {round(when * 1000) for values in samples(out).values() for _, _, when in values}
    assert stamps == {since, since + day, since + 2 * day}
    assert out.endswith("# EOF\n")


def test_backfill_ends_where_live_scraping_began(world: World, tmp_path: Path) -> None:
    now_ms = int(world.sim.clock() * 1000)
    live = (now_ms // HOUR_MS - 5) * HOUR_MS + 1
    with Ledger.open(tmp_path) as ledger:
        ledger.set_state("live_since_ms", str(live))
    code, out, err = backfill(world, storage=tmp_path)
    assert code == 0, err
    stamps = [round(when * 1000) for values in samples(out).values() for _, _, when in values]
    assert max(stamps) == live - 1  # the last whole hour before it
    assert "(live_since_ms)" in err


def test_backfill_of_an_account_whose_history_cannot_be_read(world: World, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "--config.file",
        str(world.refused),
        "--graph-api.url",
        world.sim.url,
        INSTANCE,
        "--storage.path",
        str(tmp_path),
    ]
    assert backfill_main(argv, out, err) == 1
    assert "account main: its transaction history could not be read to the end" in err.getvalue()
    assert "no account could be synced; nothing is written" in err.getvalue()
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--step", "0s"], "--step: must be a positive duration"),
        (["--since", "2030-01-02", "--until", "2030-01-01"], "--since: 2030-01-02 is not before --until"),
        (["--since", "2020-01-01", "--until", "2030-01-01", "--step", "1m"], "more than 100000"),
    ],
)
def test_backfill_flags_that_cannot_work_are_one_line_errors(
    world: World, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--config.file", str(world.config), "--graph-api.url", world.sim.url, INSTANCE]
    assert commands.run(["backfill", *flags, "--storage.path", str(world.storage), *argv]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("btcturk-exporter: ") and message in err[-1]


@pytest.mark.parametrize(
    ("flag", "url", "message"),
    [
        ("--prometheus.url", "http://user:hunter2@127.0.0.1:9", "must not hold a user name or password"),
        ("--graph-api.url", "http://user:hunter2@127.0.0.1:9", "must not hold a user name or password"),
        ("--graph-api.url", "http://127.0.0.1:99999", "the port must be a number from 1 to 65535"),
        ("--prometheus.url", "ftp://127.0.0.1", "must be an http:// or https:// URL"),
    ],
)
def test_url_flags_are_checked_as_the_configuration_s_urls(
    world: World, flag: str, url: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before, a password in these flags reached the log lines naming the URL, and a bad port ended
    # in a traceback.
    flags = ["--config.file", str(world.config), "--graph-api.url", world.sim.url, INSTANCE, flag, url]
    assert commands.run(["backfill", *flags, "--storage.path", str(world.storage)]) == 1
    err = capsys.readouterr().err
    assert err == f"btcturk-exporter: {flag}: {message}" + err.split(message, 1)[1]
    assert err.count("\n") == 1 and "hunter2" not in err


def test_backfill_without_accounts_or_balances(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "BTCTURK_PUBLIC_KEY",
        "BTCTURK_PRIVATE_KEY",
        "BTCTURK_PUBLIC_KEY_FILE",
        "BTCTURK_PRIVATE_KEY_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    assert commands.run(["backfill", "--storage.path", str(tmp_path)]) == 1
    assert "no accounts configured" in capsys.readouterr().err
    world.sim.inject(Fault("status", status=403), endpoint=BALANCES)
    flags = ["--config.file", str(world.config), "--graph-api.url", world.sim.url, INSTANCE]
    try:
        code = commands.run(["backfill", *flags, "--storage.path", str(tmp_path)])
    finally:
        world.sim.clear_faults()
    assert code == 1
    assert f"balances of account main: GET {BALANCES}: HTTP 403" in capsys.readouterr().err


def test_export_with_a_config_fetches_the_prices_it_lacks(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = backfill(world, "--out", str(tmp_path / "unused.om"))  # the ledger synced
    assert code == 0, err
    shutil.copy(world.storage / "ledger.db", tmp_path / "ledger.db")
    with sqlite3.connect(tmp_path / "ledger.db") as db:  # the records without their prices
        db.execute("DELETE FROM prices")
        db.execute("DELETE FROM state WHERE key LIKE 'prices:%'")
    history = world.sim.history(KEYS[0])
    usdt_quoted = sum(1 for t in history.trades if t.denominator == "USDT")
    assert usdt_quoted

    alone = list(csv.DictReader(io.StringIO(exported(capsys, "--storage.path", str(tmp_path)))))
    assert len(alone) == len(history.trades) + len(history.transfers)
    assert sum(1 for r in alone if r["quote"] == "USDT" and r["value"] == "") == usdt_quoted, (
        "a guessed value"
    )

    klines = world.sim.count(KLINES)
    flags = [
        "--storage.path",
        str(tmp_path),
        "--config.file",
        str(world.config),
        "--graph-api.url",
        world.sim.url,
    ]
    fetched = list(csv.DictReader(io.StringIO(exported(capsys, *flags))))
    assert world.sim.count(KLINES) > klines
    assert all(r["value"] for r in fetched if r["quote"] == "USDT")
    # A reader never writes the file: the fetched prices were used, not kept (the running exporter
    # fills the cache); without them the next export leaves the values out again, never guesses.
    again = list(csv.DictReader(io.StringIO(exported(capsys, "--storage.path", str(tmp_path)))))
    assert again == alone


def test_backfill_without_price_history_leaves_values_out(world: World, tmp_path: Path) -> None:
    for path in (KLINES, OHLCS):
        world.sim.inject(Fault("status", status=403), endpoint=path)
    try:
        code, out, err = backfill(world, storage=tmp_path)
    finally:
        world.sim.clear_faults()
    assert code == 0, err
    failed = [line for line in err.splitlines() if line.startswith("backfill: price history of BTCTRY:")]
    assert failed and f"GET {KLINES}: HTTP 403 (forbidden)" in failed[0]
    assert failed[0].endswith("; its values are left out")
    assert "prices of BTCTRY ready" not in err
    found = samples(out)
    assert found["btcturk_balance"], "balances do not need prices"
    # TRY is worth 1 TRY without any price; nothing else has a value, guessed or stale.
    valued = {
        (labels["asset"], labels["currency"]) for labels, _, _ in found.get("btcturk_balance_value", [])
    }
    assert valued <= {("TRY", "TRY"), ("USDT", "USDT")}


def test_market_status_failure_is_one_line(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--config.file", str(world.config), "--graph-api.url", world.sim.url, INSTANCE]
    world.sim.inject(Fault("status", status=403), endpoint=EXCHANGE_INFO)
    try:
        assert commands.run(["backfill", *flags, "--storage.path", str(tmp_path)]) == 1
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"btcturk-exporter: market status from {world.sim.url} failed (see the log line above)"
        )
        # The failed backfill made the ledger file, empty.
        assert commands.run(["ledger", "export", *flags[:-1], "--storage.path", str(tmp_path)]) == 1
        assert "market status" in capsys.readouterr().err
    finally:
        world.sim.clear_faults()


def test_a_storage_path_that_cannot_be_made(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("in the way", encoding="utf-8")
    flags = ["--config.file", str(world.config), "--graph-api.url", world.sim.url, INSTANCE]
    assert commands.run(["backfill", *flags, "--storage.path", str(tmp_path / "file" / "data")]) == 1
    assert capsys.readouterr().err.startswith(
        f"btcturk-exporter: --storage.path: cannot create {tmp_path}/file/data"
    )


def test_the_ledger_is_complete_from_since_but_not_before_its_first_record() -> None:
    from exporter.commands.backfill import complete_since

    now = T0 + 100 * 86_400_000
    first = [hourly(EXAMPLE_TRANSFERS[0], 0)]  # a deposit at T0 exactly
    first[0] = first[0]._replace(timestamp_ms=T0 + 30 * 60_000)
    # since 730d reaches far before the first record: a since moved earlier must not claim that time.
    assert complete_since([], first, "730d", now, HOUR_MS) == T0  # type: ignore[arg-type]
    assert complete_since([], first, "2025-12-03", now, HOUR_MS) == T0 + 2 * 86_400_000  # type: ignore[arg-type]
    assert complete_since([], [], "30d", now, HOUR_MS) == now - 30 * 86_400_000


def test_backfill_needs_the_live_instance_label_or_a_prometheus_to_read_it(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--config.file", str(world.config), "--graph-api.url", world.sim.url]
    assert commands.run(["backfill", *flags, "--storage.path", str(tmp_path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("btcturk-exporter: give --prometheus.url"), err


def test_backfill_with_another_job_label(world: World, tmp_path: Path) -> None:
    code, out, err = backfill(world, "--label.job=exchange", "--step=1d", storage=tmp_path)
    assert code == 0, err
    assert {labels["job"] for f in samples(out).values() for labels, _, _ in f} == {"exchange"}
    assert "; job=exchange, instance=localhost:9788" in err


def test_a_prometheus_that_cannot_be_asked_is_one_line(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    flags = ["--config.file", str(world.config), f"--prometheus.url={closed}"]
    assert commands.run(["backfill", *flags, "--storage.path", str(tmp_path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"btcturk-exporter: --prometheus.url: {closed}/api/v1/series: ConnectionError"]


def test_cost_basis_gaps_are_one_line_per_account() -> None:
    gaps = [
        Notice("main", "partial_cost_basis", f"{asset}: the ledger accounts for 0 of the 1 held", asset)
        for asset in ("BTC", "ETH", "BTC")
    ]
    other = Notice("main", "unpriced", "XYZ has no price")
    lines = notice_lines([*gaps, other])
    assert lines[0] == "account main: XYZ has no price"
    assert len(lines) == 2
    assert lines[1].startswith("account main: the ledger does not account for the whole holding of 2 assets")
    assert (
        "(BTC, ETH)" in lines[1]
        and "(3 series; first: BTC: the ledger accounts for 0 of the 1 held)" in lines[1]
    )
