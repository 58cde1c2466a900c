"""`ledger report`, `ledger holdings` and `ledger export --lots` in process, on the worked example."""

from __future__ import annotations

import json
import sqlite3
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from exporter import cli
from exporter.api.records import Trade, Transfer
from exporter.ledger import report
from exporter.ledger.costbasis import CONTEXT
from exporter.ledger.cursors import origin_key
from exporter.ledger.store import Ledger
from exporter.pricing.routes import DIVISION


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_report_from_the_ledger_alone_sums_what_export_shows(
    example_ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"--storage.path={example_ledger}"
    code, out, err = run(
        capsys, "ledger", "report", storage, "--period=month", "--until=2025-12-01T10:00Z", "--format=json"
    )
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert rows and all(list(r) == list(report.COLUMNS) for r in rows)
    alice = {(r["asset"], r["currency"]): r for r in rows if r["account"] == "alice"}
    assert {r["period"] for r in rows} == {"2025-12"}
    assert alice["BTC", "TRY"]["realized_profit"] == "230884.8"
    assert alice["USDT", "TRY"]["realized_profit"] == "2883.04"  # 2,883.0379752 in the ledger
    assert alice["TRY", "TRY"]["deposits"] == "2000000" and alice["BTC", "TRY"]["withdrawals"] == "216000"
    # The end, 10:00 UTC: 0.36 BTC at 2,500,000 + 6,996.46 USDT at 36 + 1,255,586.8 TRY.
    assert alice["BTC", "TRY"]["value_end"] == str(D("0.36") * 2_500_000 + D("6996.46") * 36 + D("1255586.8"))
    # The withdrawal at 08:00 needs the value held then, and USDT has no price at 08:00.
    assert alice["BTC", "TRY"]["time_weighted_return"] is None
    bob = next(r for r in rows if r["account"] == "bob" and r["currency"] == "TRY")
    assert (bob["value_start"], bob["value_end"], bob["time_weighted_return"]) == ("0", "2000000", "0")
    code, exported, _ = run(capsys, "ledger", "export", storage, "--format=json")
    shown = [D(r["realized"]) for r in json.loads(exported) if r["realized"] is not None]
    # The report sums the export's rows as shown, to the kuruş.
    assert sum(D(r["realized_profit"]) for r in rows if r["currency"] == "TRY") == sum(shown)


def test_cost_basis_flag_overrides_the_method(
    example_ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"--storage.path={example_ledger}"
    argv = (
        "ledger",
        "report",
        storage,
        "--period=year",
        "--until=2025-12-02",
        "--format=json",
        "--cost-basis=lifo",
    )
    rows = json.loads(run(capsys, *argv)[1])
    assert {r["period"] for r in rows} == {"2025"}
    btc = next(r for r in rows if r["account"] == "alice" and r["asset"] == "BTC" and r["currency"] == "TRY")
    assert btc["realized_profit"] == "186932"
    exported = json.loads(run(capsys, "ledger", "export", storage, "--format=json", "--cost-basis=hifo")[1])
    sale = next(r for r in exported if r["type"] == "sell")
    assert sale["realized"] == "186932"


def test_holdings_at_a_moment_with_absent_values_where_no_price(
    example_ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"--storage.path={example_ledger}"
    code, out, err = run(
        capsys, "ledger", "holdings", storage, "--at=2025-12-01T08:30:00Z", "--account=alice", "--format=json"
    )
    assert (code, err) == (0, "")
    rows = {(r["asset"], r["currency"]): r for r in json.loads(out)}
    assert rows["BTC", "TRY"] == {
        "at": "2025-12-01T11:30:00+03:00",
        "account": "alice",
        "asset": "BTC",
        "currency": "TRY",
        "quantity": "0.36",
        "value": "864000",
        "cost_basis": "760016.56",
    }
    assert rows["USDT", "TRY"]["value"] is None, "no USDT price at 08:00: absent, not guessed"
    text = run(capsys, "ledger", "holdings", storage, "--at=2025-12-01T11:30", "--tz=Europe/Istanbul")[1]
    assert text.splitlines()[0].split() == [
        "at",
        "account",
        "asset",
        "currency",
        "quantity",
        "value",
        "cost_basis",
    ]
    assert "864000" in text


def test_export_lots_lists_what_each_sale_took(
    example_ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"--storage.path={example_ledger}"
    code, out, _ = run(capsys, "ledger", "export", storage, "--lots", "--cost-basis=fifo", "--format=json")
    assert code == 0
    sale = [r for r in json.loads(out) if r["type"] == "sell"]
    # FIFO at step 5: lot A, lot B, and 0.1 of lot C.
    assert [(r["acquired_at"], r["quantity"], r["cost"]) for r in sale] == [
        ("2025-12-01T02:00:00.000Z", "0.4", "800944"),
        ("2025-12-01T03:00:00.000Z", "0.1", "210000"),
        ("2025-12-01T04:00:00.000Z", "0.1", "220259.6"),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "--lots"], "--lots: average cost takes no lots; add --cost-basis fifo, lifo or hifo"),
        (["report", "--period=month", "--tz=Mars/Olympus"], "--tz: unknown time zone 'Mars/Olympus'"),
        (
            ["report", "--period=month", "--since=2026-02-01", "--until=2026-01-01"],
            "--since: 2026-02-01 is not before",
        ),
        (["holdings", "--at=yesterday"], "--at: expected a date (2026-01-31)"),
        (["report", "--period=month", "--account=carol"], "--account: no account 'carol'"),
    ],
)
def test_bad_flags_are_one_line_errors(
    example_ledger: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "ledger", *argv, f"--storage.path={example_ledger}")
    assert (code, out) == (1, "")
    assert err.startswith(f"btcturk-exporter: {message}") and err.count("\n") == 1, err


def test_report_needs_a_period_and_a_known_method(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["ledger", "report"],
        ["ledger", "report", "--period=week"],
        ["ledger", "holdings"],
        ["ledger", "holdings", "--at=2026-01-01", "--cost-basis=lofi"],
    ):
        with pytest.raises(SystemExit) as exited:
            cli.main(argv)
        err = capsys.readouterr().err
        # One line naming the mistake, as `ledger export` and `backfill` say theirs: not the usage first.
        assert exited.value.code == 2 and err.count("\n") == 1 and "usage:" not in err, err


HOUR_MS = 3_600_000
T0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z


def _cut_history(storage: Path) -> None:
    """An account whose history `activity.since` cut at T0 + 5 h: 500 TRY held then, 1,000 deposited later."""
    with Ledger.open(storage) as ledger:
        ledger.upsert_transfers("main", [Transfer("fiat", 1, T0 + 10 * HOUR_MS, "deposit", "TRY", D(1000))])
        ledger.set_state(origin_key("main"), str(T0 + 5 * HOUR_MS))
        ledger.set_openings("main", T0 + 5 * HOUR_MS, {"TRY": D(500)}, ledger.rebuilds)


@pytest.mark.parametrize("at", ["2025-12-01T02:00Z", "2025-12-01T05:00Z"])
def test_holdings_before_the_history_begins_are_unknown_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], at: str
) -> None:
    _cut_history(tmp_path)
    code, out, err = run(capsys, "ledger", "holdings", f"--storage.path={tmp_path}", f"--at={at}", "--tz=UTC")
    # Before, no row at all (nothing held), exit 0; at the start itself the openings are not yet counted.
    assert (code, out) == (1, "")
    assert err == (
        f"btcturk-exporter: --at: {at} is not after the ledger's history of account 'main' begins"
        " (2025-12-01T05:00:00+00:00, activity.since): what it held then is unknown\n"
    )
    code, out, err = run(
        capsys, "ledger", "holdings", f"--storage.path={tmp_path}", "--at=2025-12-01T06:00Z", "--format=json"
    )
    assert (code, err) == (0, "")
    assert [(r["asset"], r["quantity"]) for r in json.loads(out) if r["currency"] == "TRY"] == [
        ("TRY", "500")
    ]


def test_a_period_that_begins_before_the_history_has_no_start_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cut_history(tmp_path)
    storage = f"--storage.path={tmp_path}"
    argv = ("ledger", "report", storage, "--period=month", "--tz=UTC", "--until=2025-12-02", "--format=json")
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, "")
    (row,) = [r for r in json.loads(out) if r["currency"] == "TRY"]
    # December began before the history did: its start value was 0 before, as if nothing was held.
    assert (row["value_start"], row["time_weighted_return"]) == (None, None)
    assert (row["deposits"], row["value_end"]) == ("1500", "1500")  # the opening counts as a deposit
    code, out, err = run(capsys, *argv, "--since=2025-12-01T06:00Z")
    (row,) = [r for r in json.loads(out) if r["currency"] == "TRY"]
    assert (row["value_start"], row["deposits"], row["time_weighted_return"]) == ("500", "1000", "0")


def test_a_report_stops_at_now(example_ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "ledger", "report", f"--storage.path={example_ledger}", "--period=year", "--until=9998-01-01",
        "--format=json", "--tz=UTC",
    )  # fmt: skip
    this_year = time.gmtime().tm_year
    assert (code, err) == (0, "")
    # Before, every year up to 9997 had a row of zeros, as if known; 9999-12-31 ended in a traceback.
    assert max(int(r["period"]) for r in json.loads(out)) in (this_year, this_year + 1)


@pytest.mark.parametrize("content", [b"", b"sqlite"])
def test_a_file_that_is_not_a_ledger_is_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    path = tmp_path / "ledger.db"
    if content:
        sqlite3.connect(path).execute("CREATE TABLE foo (x)").connection.close()
    else:
        path.write_bytes(content)
    for command in (["export"], ["report", "--period=month"], ["holdings", "--at=2026-01-01"]):
        code, out, err = run(capsys, "ledger", *command, f"--storage.path={tmp_path}")
        # Before, headers and no rows, exit 0: no record, nothing held.
        assert (code, out) == (1, "")
        never = "not a ledger (no schema version: the exporter never wrote it)"
        assert err == f"btcturk-exporter: ledger {path}: {never}\n"


@pytest.mark.parametrize("table", ["trades", "transfers", "openings", "prices"])
def test_a_ledger_missing_a_table_is_one_line(
    example_ledger: Path, capsys: pytest.CaptureFixture[str], table: str
) -> None:
    db = sqlite3.connect(example_ledger / "ledger.db")
    db.execute(f"DROP TABLE {table}")
    db.close()
    for command in (["export"], ["report", "--period=month"], ["holdings", "--at=2025-12-01T09:00Z"]):
        code, out, err = run(capsys, "ledger", *command, f"--storage.path={example_ledger}")
        assert (code, out) == (1, ""), command
        assert err.startswith("btcturk-exporter: ledger ") and f"no such table: {table}" in err, err
        assert err.count("\n") == 1


def test_holdings_route_through_a_currency_only_later_records_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """holdings reads only the records before --at, yet routes as over the whole history: USDT is
    traded only after --at, and the TRY held then is valued in USDT by the inverse of USDT/TRY."""
    t0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z
    with Ledger.open(tmp_path) as ledger:
        ledger.upsert_transfers("main", [Transfer("fiat", 1, t0, "deposit", "TRY", D(4170))])
        later = Trade(2, None, t0 + 5 * 3_600_000, "USDT", "TRY", "buy", D("41.7"), D(10), D(0), D(0))
        ledger.upsert_trades("main", [later])
        ledger.prices.put("USDTTRY", "60", [(t0 // 1000 + h * 3600, D("41.7")) for h in range(8)])
        ledger.set_state("prices:60:USDTTRY", f"{t0 // 1000}:{t0 // 1000 + 8 * 3600}")
    code, out, err = run(
        capsys, "ledger", "holdings", f"--storage.path={tmp_path}", "--at=2025-12-01T02:00Z", "--format=json"
    )
    assert (code, err) == (0, "")
    rows = {(r["asset"], r["currency"]): r for r in json.loads(out)}
    assert rows["TRY", "TRY"]["value"] == "4170"
    # Through USDT/TRY's inverse leg; without the later trade's USDT, no pair would price TRY in USDT.
    assert D(rows["TRY", "USDT"]["value"]) == CONTEXT.multiply(D(4170), DIVISION.divide(1, D("41.7")))


@pytest.mark.parametrize(
    ("update", "table"),
    [
        ("UPDATE trades SET amount = 'abc'", "trades"),
        ("UPDATE trades SET id = 'x' || id", "trades"),
        ("UPDATE transfers SET amount = '1,5'", "transfers"),
    ],
)
def test_a_row_edited_into_no_number_is_one_line(
    example_ledger: Path, capsys: pytest.CaptureFixture[str], update: str, table: str
) -> None:
    db = sqlite3.connect(example_ledger / "ledger.db")
    db.execute(update)
    db.commit()
    db.close()
    for command in (["export"], ["report", "--period=month"], ["holdings", "--at=2025-12-01T09:00Z"]):
        code, out, err = run(capsys, "ledger", *command, f"--storage.path={example_ledger}")
        # Before, a traceback from int() or Decimal().
        assert (code, out) == (1, ""), command
        assert err.startswith(
            f"btcturk-exporter: ledger {example_ledger / 'ledger.db'}: a row of {table} is not"
        )
        assert err.count("\n") == 1


def test_a_candle_still_open_when_cached_prices_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exporter caches the hour still open as it is then (its own replay takes it and replays once
    it closes); a command prints what it values, so that close, still moving, is no price there."""
    with Ledger.open(tmp_path) as ledger:
        ledger.upsert_transfers(
            "main",
            [
                Transfer("crypto", 1, T0 + 30 * 60_000, "deposit", "USDT", D(10)),
                Transfer("crypto", 2, T0 + HOUR_MS + 30 * 60_000, "deposit", "USDT", D(10)),
            ],
        )
        ledger.prices.put("USDTTRY", "60", [(T0 // 1000, D("41.7")), (T0 // 1000 + 3600, D("41.9"))])
        # Fetched at 01:40: the 01:00 candle was open, so the range of final candles ends at 01:00.
        ledger.set_state("prices:60:USDTTRY", f"{T0 // 1000}:{T0 // 1000 + 3600}")
    storage = f"--storage.path={tmp_path}"
    code, out, err = run(capsys, "ledger", "export", storage, "--format=json")
    assert (code, err) == (0, "")
    values = {r["id"]: r["value"] for r in json.loads(out) if r["currency"] == "TRY"}
    # Before, the second deposit was valued at 41.9, the close of 01:00 as it stood at 01:40.
    assert values == {"1": "417", "2": None}
    code, out, err = run(capsys, "ledger", "holdings", storage, "--at=2025-12-01T01:50Z", "--format=json")
    assert (code, err) == (0, "")
    (usdt,) = [r for r in json.loads(out) if r["asset"] == "USDT" and r["currency"] == "TRY"]
    assert (usdt["quantity"], usdt["value"]) == ("20", None)
    code, out, err = run(capsys, "ledger", "holdings", storage, "--at=2025-12-01T00:50Z", "--format=json")
    (usdt,) = [r for r in json.loads(out) if r["asset"] == "USDT" and r["currency"] == "TRY"]
    assert (usdt["quantity"], usdt["value"]) == ("10", "417")


def test_damaged_pages_are_said_in_one_line(example_ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = example_ledger / "ledger.db"
    size = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    # Page 2's cells overwritten past its header: SQLite's quick_check complains on two lines.
    data[size + 100 : 2 * size] = bytes(i * 7 % 251 for i in range(size - 100))
    path.write_bytes(bytes(data))
    code, out, err = run(capsys, "ledger", "export", f"--storage.path={example_ledger}")
    assert (code, out) == (1, "")
    assert err.startswith(f"btcturk-exporter: ledger {path}: damaged pages (*** in database main *** On ")
    assert err.count("\n") == 1
