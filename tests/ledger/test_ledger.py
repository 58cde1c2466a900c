"""The SQLite ledger: exact round trips, idempotent upserts, migrations and clear open errors."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from exporter.api.records import Trade, Transfer, loads, parse_trades, parse_transfers
from exporter.ledger.cursors import Cursor
from exporter.ledger.schema import MIGRATIONS, VERSION, LedgerError
from exporter.ledger.store import Ledger, ledger_path

FIXTURES = Path(__file__).parents[1] / "fixtures" / "activity"


def trades_fixture() -> tuple[Trade, ...]:
    return parse_trades(loads((FIXTURES / "trades.json").read_bytes()))


def transfers_fixture() -> tuple[Transfer, ...]:
    crypto = parse_transfers(loads((FIXTURES / "crypto.json").read_bytes()), "crypto")
    fiat = parse_transfers(loads((FIXTURES / "fiat.json").read_bytes()), "fiat")
    return crypto + fiat


def user_version(path: Path) -> int:
    """The schema version stored in the file, read on a connection of its own."""
    with closing(sqlite3.connect(path)) as raw:
        return int(raw.execute("PRAGMA user_version").fetchone()[0])


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    with Ledger.open(tmp_path / "data") as opened:
        yield opened  # type: ignore[misc]


def test_file_lives_in_the_storage_directory_in_wal_mode(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "store") as ledger:
        assert ledger.path == tmp_path / "store" / "ledger.db"
        assert user_version(ledger.path) == VERSION
    assert ledger_path() == Path("data") / "ledger.db"
    raw = sqlite3.connect(tmp_path / "store" / "ledger.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == VERSION


def test_trades_round_trip_exactly_in_time_order(ledger: Ledger) -> None:
    trades = trades_fixture()
    assert ledger.upsert_trades("alice", trades) == 3
    stored = ledger.trades("alice")
    assert stored == sorted(trades, key=lambda t: t.timestamp_ms)
    # Ids beyond 2^63 and amounts with trailing zeros come back as they went in.
    assert {t.id for t in stored} >= {9223372036854775809}
    assert str(stored[0].amount) == "0.00250000"
    assert ledger.trades("bob") == []


def test_ids_are_text_and_amounts_decimal_strings_in_the_file(ledger: Ledger) -> None:
    ledger.upsert_trades("alice", trades_fixture())
    raw = sqlite3.connect(ledger.path)
    types = raw.execute("SELECT DISTINCT typeof(id), typeof(price), typeof(amount), typeof(fee) FROM trades")
    assert types.fetchall() == [("text", "text", "text", "text")]
    assert raw.execute("SELECT amount FROM trades WHERE id = '9223372036854775809'").fetchone() == (
        "-0.00512000",
    )


def test_upsert_is_idempotent_and_keeps_the_first_version_of_an_id(ledger: Ledger) -> None:
    trades = trades_fixture()
    assert ledger.upsert_trades("alice", trades) == 3
    assert ledger.upsert_trades("alice", trades) == 0
    changed: list[Trade] = []
    other = Trade(**{**_fields(trades[0]), "fee": Decimal("-23.05")})
    assert ledger.upsert_trades("alice", [other, *trades], changed) == 0
    assert changed == [other]
    assert ledger.counts() == {("alice", "trade"): 3}
    assert next(t for t in ledger.trades("alice") if t.id == other.id).fee == trades[0].fee
    # The same value written otherwise (1.50 for 1.5) is the same record, not a changed one.
    same = Trade(**{**_fields(trades[0]), "price": trades[0].price.quantize(Decimal("0.0000001"))})
    changed.clear()
    assert ledger.upsert_trades("alice", [same], changed) == 0 and changed == []
    # The same id under another account is another record.
    assert ledger.upsert_trades("bob", trades[:1]) == 1
    assert ledger.counts() == {("alice", "trade"): 3, ("bob", "trade"): 1}


def _fields(trade: Trade) -> dict[str, object]:
    return trade._asdict()


def test_transfers_round_trip_with_absent_fields_and_kinds(ledger: Ledger) -> None:
    transfers = transfers_fixture()
    assert ledger.upsert_transfers("alice", transfers) == 4
    assert ledger.upsert_transfers("alice", transfers) == 0
    stored = ledger.transfers("alice")
    assert stored == sorted(transfers, key=lambda t: t.timestamp_ms)
    bare = next(t for t in stored if t.id == 551003)
    assert bare.currency is None and bare.fee is None and bare.funds is None
    # The same id from /crypto and /fiat is one record: the first stays, a different one is reported.
    first = next(t for t in stored if t.id == 2391834)
    twin = first._replace(kind="fiat")
    changed: list[Transfer] = []
    assert ledger.upsert_transfers("alice", [twin], changed) == 0 and changed == []
    other = Transfer(
        kind="fiat", id=2391834, timestamp_ms=1, balance_type="deposit", currency="TRY", amount=Decimal(1)
    )
    assert ledger.upsert_transfers("alice", [other], changed) == 0 and changed == [other]
    assert ledger.transfers("alice") == stored


def test_time_window_and_newest_per_endpoint(ledger: Ledger) -> None:
    ledger.upsert_trades("alice", trades_fixture())
    ledger.upsert_transfers("alice", transfers_fixture())
    assert ledger.newest_ms("alice", "trade") == 1764530400000
    assert ledger.newest_ms("alice", "crypto") == 1764520000000
    assert ledger.newest_ms("alice", "fiat") == 1764310000000
    assert ledger.newest_ms("bob", "trade") is None
    window = ledger.trades("alice", since_ms=1764443999000, until_ms=1764530400000)
    assert [t.timestamp_ms for t in window] == [1764443999000, 1764444000000]
    assert [t.id for t in ledger.transfers("alice", since_ms=1764400000000)] == [2391001, 2391834]
    assert ledger.accounts() == ["alice"]


def test_ties_in_time_are_ordered_by_numeric_id(ledger: Ledger) -> None:
    base = trades_fixture()[2]
    same_time = [Trade(**{**_fields(base), "id": i}) for i in (10, 9, 100)]
    ledger.upsert_trades("alice", same_time)
    assert [t.id for t in ledger.trades("alice")] == [9, 10, 100]


def test_cursors_and_state(ledger: Ledger) -> None:
    assert ledger.cursor("alice", "trade") == Cursor()
    ledger.set_cursor("alice", "trade", Cursor(newest_ms=5, backfilled_to_ms=1, backfill_complete=True))
    ledger.set_cursor("alice", "fiat", Cursor(newest_ms=7))
    assert ledger.cursor("alice", "trade") == Cursor(5, 1, True)
    assert ledger.cursor("alice", "fiat") == Cursor(7, None, False)
    assert ledger.cursor("bob", "trade") == Cursor()
    assert ledger.state("live_since_ms") is None
    assert ledger.set_state("live_since_ms", "100", keep_existing=True) == "100"
    assert ledger.set_state("live_since_ms", "200", keep_existing=True) == "100"
    assert ledger.set_state("live_since_ms", "300") == "300"


def test_cursors_and_state_live_in_ledger_sync(ledger: Ledger) -> None:
    ledger.sync.set_cursor("alice", "crypto", Cursor(newest_ms=3))
    assert ledger.cursor("alice", "crypto") == ledger.sync.cursor("alice", "crypto") == Cursor(3)
    ledger.set_state("live_since_ms", "42")
    assert ledger.sync.state("live_since_ms") == "42"
    assert ledger.sync.set_state("live_since_ms", "43", keep_existing=True) == "42"


def test_price_cache(ledger: Ledger) -> None:
    ledger.prices.put("BTCTRY", "1D", [(86400, Decimal("2240000.50")), (172800, Decimal("2250000"))])
    ledger.prices.put("BTCTRY", "60", [(86400, Decimal("1"))])
    assert ledger.prices.close_at("BTCTRY", "1D", 86400) == Decimal("2240000.50")
    assert ledger.prices.close_at("BTCTRY", "1D", 86401) is None
    assert ledger.prices.latest("BTCTRY", "1D", 172799) == (86400, Decimal("2240000.50"))
    assert ledger.prices.latest("BTCTRY", "1D", 10**9) == (172800, Decimal("2250000"))
    assert ledger.prices.latest("BTCTRY", "1D", 86399) is None
    assert ledger.prices.latest("USDTTRY", "1D", 10**9) is None


def test_data_survives_reopening(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        ledger.upsert_trades("alice", trades_fixture())
        ledger.set_cursor("alice", "trade", Cursor(newest_ms=9))
    with Ledger.open(tmp_path) as ledger:
        assert ledger.counts() == {("alice", "trade"): 3}
        assert ledger.cursor("alice", "trade").newest_ms == 9


def test_a_version_1_file_migrates_keeping_its_records(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    raw = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](raw)
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO trades VALUES ('alice', '9223372036854775809', NULL, 1764530400000, 'BTC', 'TRY',"
        " 'sell', '2250000.00', '-0.00512000', '-23.04000000', '-4.14720000')"
    )
    raw.close()
    with Ledger(path) as ledger:
        assert user_version(ledger.path) == VERSION > 1
        (trade,) = ledger.trades("alice")
        assert trade.id == 9223372036854775809 and trade.amount == Decimal("-0.00512000")
        ledger.prices.put("BTCTRY", "1D", [(0, Decimal(1))])  # a table version 2 added
    names = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert {"prices", "trades_by_time", "transfers_by_time"} <= names


def test_version_3_keeps_one_of_a_transfer_stored_under_both_endpoints(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    raw = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:2]:
        step(raw)
    raw.execute("PRAGMA user_version = 2")
    for kind, currency in (("fiat", "TRY"), ("crypto", "TRY"), ("crypto", "BTC")):
        ident = "9" if currency == "TRY" else "10"
        raw.execute(
            "INSERT INTO transfers VALUES ('a', ?, ?, 1764530400000, 'deposit', ?, '30104.00',"
            " NULL, NULL, NULL)",
            [kind, ident, currency],
        )
    raw.close()
    with Ledger(path) as ledger:
        assert user_version(ledger.path) == VERSION
        moves = ledger.transfers("a")
        assert [(t.id, t.kind, t.currency) for t in moves] == [(9, "crypto", "TRY"), (10, "crypto", "BTC")]
        assert str(moves[0].amount) == "30104.00"


def test_a_failed_migration_leaves_the_file_at_its_old_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.db"
    raw = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](raw)
    raw.execute("PRAGMA user_version = 1")
    raw.execute("CREATE TABLE prices (x)")  # makes step 2 fail half way
    raw.close()
    with pytest.raises(LedgerError, match=r"ledger .*ledger\.db: cannot open: table prices already exists"):
        Ledger(path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1


def test_a_newer_schema_is_moved_aside_by_the_writer_and_refused_by_readers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ledger.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {VERSION + 1}")
    with pytest.raises(LedgerError, match=f"schema version {VERSION + 1} is newer"):
        Ledger.read_only(path)
    with Ledger(path) as ledger:
        assert user_version(ledger.path) == VERSION
    (aside,) = tmp_path.glob("ledger.db.damaged-*")
    assert sqlite3.connect(aside).execute("PRAGMA user_version").fetchone()[0] == VERSION + 1
    (line,) = [r.getMessage() for r in caplog.records if "moved aside" in r.getMessage()]
    assert str(path) in line and aside.name in line and "is newer" in line


def test_a_file_that_is_not_a_database_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError) as info:
        Ledger.read_only(path)
    assert str(info.value) == f"ledger {path}: not a readable ledger (file is not a database)"
    with Ledger(path) as ledger:
        assert ledger.counts() == {}
    (aside,) = tmp_path.glob("ledger.db.damaged-*")
    assert aside.read_bytes() == b"this is not sqlite" * 100


@pytest.mark.parametrize("layout", ["parent_is_a_file", "ledger_is_a_directory"])
def test_an_unwritable_path_is_one_clear_error_naming_it(tmp_path: Path, layout: str) -> None:
    if layout == "parent_is_a_file":
        (tmp_path / "data").write_text("x")
        storage = tmp_path / "data" / "inner"
    else:
        storage = tmp_path / "data"
        (storage / "ledger.db").mkdir(parents=True)
    with pytest.raises(LedgerError) as info:
        Ledger.open(storage)
    message = str(info.value)
    assert message.startswith(f"ledger {storage / 'ledger.db'}: cannot open")
    assert "\n" not in message


def test_a_write_from_another_thread_is_serialised(ledger: Ledger) -> None:
    trades = trades_fixture()
    errors: list[BaseException] = []

    def write(account: str) -> None:
        try:
            for _ in range(20):
                ledger.upsert_trades(account, trades)
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"a{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert ledger.counts() == {(f"a{i}", "trade"): 3 for i in range(4)}


def test_a_write_blocked_by_another_process_is_one_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db", busy_timeout_s=0.05) as ledger:
        other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        with pytest.raises(LedgerError) as info:
            ledger.upsert_trades("alice", trades_fixture())
        assert str(info.value) == f"ledger {tmp_path / 'ledger.db'}: cannot write: database is locked"
        other.execute("COMMIT")
        assert ledger.upsert_trades("alice", trades_fixture()) == 3


def test_an_error_inside_a_write_rolls_it_back(ledger: Ledger) -> None:
    def broken() -> Iterator[Trade]:
        yield trades_fixture()[0]
        raise RuntimeError("the sync failed half way")

    with pytest.raises(RuntimeError):
        ledger.upsert_trades("alice", broken())
    assert ledger.counts() == {}
    assert ledger.upsert_trades("alice", trades_fixture()) == 3


def test_the_record_count_is_kept_by_the_writes_and_counted_where_a_ledger_lacks_it(ledger: Ledger) -> None:
    def truth(account: str) -> int:
        with closing(sqlite3.connect(ledger.path)) as db:
            return int(
                db.execute(
                    "SELECT (SELECT count(*) FROM trades WHERE account = ?)"
                    " + (SELECT count(*) FROM transfers WHERE account = ?)",
                    [account, account],
                ).fetchone()[0]
            )

    trades, transfers = trades_fixture(), transfers_fixture()
    assert ledger.record_count("alice") == 0
    ledger.upsert_trades("alice", trades[:2])
    ledger.upsert_trades("alice", trades)  # two of them again: counted once
    ledger.upsert_transfers("alice", transfers)
    ledger.upsert_trades("bob", trades[:1])
    assert ledger.record_count("alice") == truth("alice") == len(trades) + len(transfers)
    assert ledger.record_count("bob") == truth("bob") == 1
    # A ledger made before the count was kept: counted when read, and kept from the next write on.
    with closing(sqlite3.connect(ledger.path)) as db, db:
        db.execute("DELETE FROM state WHERE key LIKE 'ledger:records:%'")
    assert ledger.record_count("alice") == truth("alice")
    ledger.upsert_trades("alice", trades)  # nothing new: the count is still stored where it lacked
    with closing(sqlite3.connect(ledger.path)) as db:
        stored = db.execute("SELECT value FROM state WHERE key = 'ledger:records:alice'").fetchone()
    assert stored == (str(truth("alice")),)
