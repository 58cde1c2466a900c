"""Opening positions: stored as one set per account (schema v4), and replayed as deposits at since.

The figures are worked by hand: an account held 0.5 BTC and 50,000 TRY when its history begins at
since (t = 1,000 ms), with BTC at 1,000,000 TRY then.
"""

from __future__ import annotations

import sqlite3
from datetime import timezone
from decimal import Decimal
from pathlib import Path

import pytest

from exporter.api.records import Trade, Transfer
from exporter.ledger.costbasis import CONTEXT, compute, order
from exporter.ledger.counters import count
from exporter.ledger.export import rows
from exporter.ledger.openings import opening
from exporter.ledger.report import report
from exporter.ledger.returns import unit_steps
from exporter.ledger.schema import MIGRATIONS, VERSION
from exporter.ledger.store import Ledger

SINCE = 1_000
BTC_AT = {SINCE: Decimal(1_000_000), 2_000: Decimal(1_100_000), 3_000: Decimal(1_200_000)}
OPENINGS = [opening("BTC", SINCE, Decimal("0.5")), opening("TRY", SINCE, Decimal(50_000))]
# A sale at since's very millisecond: the opening comes before it, or it would be a shortfall.
SALE_AT_SINCE = Trade(
    7, 7, SINCE, "BTC", "TRY", "sell", Decimal(1_000_000), Decimal("-0.1"), Decimal(0), Decimal(0)
)
DEPOSIT = Transfer("fiat", 8, 2_000, "deposit", "TRY", Decimal(100_000))
SALE = Trade(
    9, 9, 3_000, "BTC", "TRY", "sell", Decimal(1_200_000), Decimal("-0.2"), Decimal(-240), Decimal(-48)
)


def price_at(asset: str, currency: str, when_ms: int) -> Decimal | None:
    assert (asset, currency) == ("BTC", "TRY")
    return BTC_AT.get(when_ms)


def test_an_opening_is_a_deposit_at_since_valued_at_its_price() -> None:
    basis = compute([SALE], [DEPOSIT, *OPENINGS], "TRY", price_at)
    # 0.5 BTC x 1,000,000 + 50,000 TRY at since, then 100,000 TRY deposited.
    assert basis.net_deposits == Decimal(650_000)
    btc = basis.positions["BTC"]
    # The sale of 0.2 BTC: 240,000 - 240 fee - 48 tax received, 0.2 / 0.5 of 500,000 cost given up.
    assert btc.realised == Decimal(239_712) - Decimal(200_000)
    assert (btc.quantity, btc.cost, btc.shortfalls) == (Decimal("0.3"), Decimal(300_000), 0)
    assert basis.positions["TRY"].quantity == Decimal(50_000 + 100_000 + 239_712)


def test_an_opening_comes_before_every_record_of_its_millisecond() -> None:
    assert order([SALE_AT_SINCE, *OPENINGS])[:2] == OPENINGS
    basis = compute([SALE_AT_SINCE], OPENINGS, "TRY", price_at)
    btc = basis.positions["BTC"]
    assert (btc.shortfalls, btc.quantity, btc.cost, btc.realised) == (0, Decimal("0.4"), Decimal(400_000), 0)


def test_an_unpriced_opening_is_counted_unpriced_like_a_deposit() -> None:
    late = opening("BTC", 500, Decimal("0.5"))  # no price at 500 ms
    basis = compute([], [late], "TRY", price_at)
    assert basis.unpriced == 1 and basis.net_deposits == 0 and "BTC" not in basis.positions


def test_the_unit_value_is_one_at_the_openings() -> None:
    steps = unit_steps([SALE, DEPOSIT, *OPENINGS], "TRY", price_at)
    # The openings issue 550,000 units at 1; at the deposit the 0.5 BTC is worth 550,000, so the
    # holdings are 600,000 for 550,000 units: the deposit buys 100,000 x 550,000 / 600,000 units.
    assert [s.timestamp_ms for s in steps] == [SINCE, SINCE, 2_000]
    assert steps[1].units == Decimal(550_000)
    assert steps[2].units == CONTEXT.divide(Decimal(550_000) * 700_000, Decimal(600_000))


def test_openings_are_no_deposit_the_counters_count() -> None:
    totals = count([SALE, DEPOSIT, *OPENINGS])
    assert totals["deposits"] == {("TRY",): Decimal(100_000)}


def test_ledger_export_shows_an_opening_as_a_deposit_row_of_kind_opening() -> None:
    basis = compute([SALE], [DEPOSIT, *OPENINGS], "TRY", price_at, keep_events=True)
    (btc, try_) = [r for r in rows("main", basis, price_at) if r.kind == "opening"]
    assert (btc.asset, btc.type, btc.id, btc.timestamp_ms, btc.amount) == (
        "BTC",
        "deposit",
        SINCE,
        SINCE,
        Decimal("0.5"),
    )
    assert btc.value == Decimal(500_000) and try_.value == Decimal(50_000) and btc.realized is None


def test_openings_are_replaced_as_one_set_and_writing_the_same_again_changes_nothing(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        assert ledger.set_openings("main", SINCE, {"BTC": Decimal("0.5"), "TRY": Decimal(50_000)})
        assert not ledger.set_openings("main", SINCE, {"TRY": Decimal(50_000), "BTC": Decimal("0.5")})
        assert ledger.openings("main") == OPENINGS
        assert ledger.openings("main", since_ms=SINCE + 1) == []
        # since moved (or the walk-back changed): the whole set is replaced; nothing held is no row.
        assert ledger.set_openings("main", 900, {"BTC": Decimal("0.7"), "TRY": Decimal(0)})
        assert ledger.openings("main") == [opening("BTC", 900, Decimal("0.7"))]
        assert ledger.openings("other") == [] and ledger.transfers("main") == []
        ledger.upsert_transfers("main", [DEPOSIT])
        assert ledger.history_transfers("main") == [opening("BTC", 900, Decimal("0.7")), DEPOSIT]
        assert ledger.set_openings("main", 900, {})
        assert ledger.openings("main") == []


def test_a_write_planned_before_a_rebuild_stores_no_opening(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        planned = ledger.rebuilds
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"ledger.db{suffix}").unlink(missing_ok=True)
        with pytest.raises(Exception, match="rebuilt since this write was planned"):
            ledger.set_openings("main", SINCE, {"BTC": Decimal(1)}, planned)
        assert ledger.openings("main") == []


def test_a_version_3_file_gains_the_openings_table(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    raw = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:3]:
        step(raw)
    raw.execute("PRAGMA user_version = 3")
    raw.close()
    assert VERSION == 4
    with Ledger.read_only(path) as ledger:  # a reader migrates its copy, never the file
        assert ledger.openings("main") == []
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 3
    with Ledger(path) as ledger:
        assert ledger.set_openings("main", SINCE, {"BTC": Decimal(1)})
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 4


def test_ledger_report_counts_the_openings_as_deposits_of_the_period_holding_since() -> None:
    found = report(
        "main",
        [SALE],
        [DEPOSIT, *OPENINGS],
        ("TRY",),
        price_at,
        "average",
        "month",
        timezone.utc,
        None,
        10_000,
    )
    rows = {r["asset"]: r for r in found}
    assert {r["period"] for r in found} == {"1970-01"}
    assert (rows["BTC"]["deposits"], rows["TRY"]["deposits"]) == (Decimal(500_000), Decimal(150_000))
    assert rows["BTC"]["realized_profit"] == Decimal(39_712)
