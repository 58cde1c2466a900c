"""`ledger report`'s totals are the sums of `ledger export`'s rounded rows, to the last digit.

A history whose exact figures all run past the kuruş (8-place amounts at uneven prices, average-cost
splits of 60 digits): the report, read as CSV, JSON and a text table, must give per period, account,
asset and currency exactly what adding up the export's rows gives, where rounding the exact totals
instead would not.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import ROUND_DOWN
from decimal import Decimal as D
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from exporter import cli
from exporter.api.records import Trade, Transfer
from exporter.commands.common import price_source
from exporter.config.activity_settings import ActivitySettings
from exporter.ledger import export, report
from exporter.ledger.costbasis import compute
from exporter.ledger.store import Ledger, ledger_path

HOUR_MS = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOURS = 24 * 100  # records over some three months
UNTIL = "--until=2026-04-15"
ISTANBUL = ZoneInfo("Europe/Istanbul")  # report.timezone's default: the periods the report cuts
Key = tuple[str, str, str, str]  # period, account, asset, currency


def btc_try(hour: int) -> D:
    return D("2000000") + D("1234.56789") * hour % D("300000.123")


def usdt_try(hour: int) -> D:
    return D("34.1") + D("0.0007") * hour


def places(amount: D, n: int) -> D:
    return amount.quantize(D(1).scaleb(-n), rounding=ROUND_DOWN)


class History:
    """Records of one account built as a user would make them, never selling what is not held."""

    def __init__(self, account: str, seed: int) -> None:
        self.account = account
        self.rng = random.Random(seed)
        self.trades: list[Trade] = []
        self.transfers: list[Transfer] = []
        self.btc = D(0)
        self.usdt = D(0)
        self.ids = seed * 10_000

    def _id(self) -> int:
        self.ids += 1
        return self.ids

    def trade(self, hour: int, quote: str, side: str, amount: D, price: D, base: str = "BTC") -> None:
        fee = -places(amount.copy_abs() * price * D("0.0012"), 8)
        tax = -places(-fee * D("0.2"), 8)
        signed = amount if side == "buy" else -amount
        when = T0 + hour * HOUR_MS + 60_000
        self.trades.append(Trade(self._id(), None, when, base, quote, side, price, signed, fee, tax))  # type: ignore[arg-type]

    def transfer(self, hour: int, kind: str, asset: str, amount: D, fee: D | None = None) -> None:
        side = "deposit" if amount > 0 else "withdrawal"
        record = Transfer(kind, self._id(), T0 + hour * HOUR_MS + 120_000, side, asset, amount, fee)  # type: ignore[arg-type]
        self.transfers.append(record)

    def build(self) -> History:
        rng = self.rng
        self.transfer(0, "fiat", "TRY", D("5000000"))
        for hour in range(3, HOURS, 29):
            price = btc_try(hour) + D(rng.randint(-5000, 5000)) / 7
            choice = rng.random()
            if choice < 0.35 or self.btc < D("0.01"):
                amount = D(rng.randint(1_000_000, 9_000_000)).scaleb(-8)
                self.trade(hour, "TRY", "buy", amount, price.quantize(D("0.01")))
                self.btc += amount
            elif choice < 0.6:
                amount = places(self.btc * D(rng.randint(5, 40)) / 100, 8)
                self.trade(hour, "TRY", "sell", amount, price.quantize(D("0.01")))
                self.btc -= amount
            elif choice < 0.7:
                amount = D(rng.randint(100_000, 3_000_000)).scaleb(-8)
                self.transfer(hour, "crypto", "BTC", amount)
                self.btc += amount
            elif choice < 0.78:
                amount = places(self.btc * D(rng.randint(5, 20)) / 100, 8)
                self.transfer(hour, "crypto", "BTC", -amount, -D("0.0004"))
                self.btc -= amount
            elif choice < 0.86:
                amount = D(rng.randint(10_000, 900_000)).scaleb(-2)
                self.trade(hour, "TRY", "buy", amount, usdt_try(hour).quantize(D("0.001")), base="USDT")
                self.usdt += amount
            elif choice < 0.93 and self.usdt > 100:
                # BTC bought with USDT: what it realizes is on USDT, its fee valued at USDT's price.
                usdt_price = (price / usdt_try(hour)).quantize(D("0.01"))
                amount = places(self.usdt / 3 / usdt_price, 8)
                self.trade(hour, "USDT", "buy", amount, usdt_price)
                self.usdt -= amount * usdt_price * D("1.00144")
                self.btc += amount
            else:
                self.transfer(hour, "fiat", "TRY", -D(rng.randint(1000, 90000)) / 100)
        return self


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two accounts' histories and hourly candles for every hour they span."""
    path = tmp_path_factory.mktemp("totals")
    with Ledger.open(path) as ledger:
        for history in (History("alice", 1).build(), History("bob", 2).build()):
            ledger.upsert_trades(history.account, history.trades)
            ledger.upsert_transfers(history.account, history.transfers)
        start = T0 // 1000 - 7 * 86400
        hours = range(-7 * 24, HOURS + 24 * 30)
        ledger.prices.put("BTCTRY", "60", [(T0 // 1000 + h * 3600, btc_try(h)) for h in hours])
        ledger.prices.put("USDTTRY", "60", [(T0 // 1000 + h * 3600, usdt_try(h)) for h in hours])
        for pair in ("BTCTRY", "USDTTRY"):
            ledger.set_state(f"prices:60:{pair}", f"{start}:{T0 // 1000 + hours[-1] * 3600}")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, "")
    return captured.out


def month(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, ISTANBUL).strftime("%Y-%m")


def amount(cell: str | None) -> D:
    assert cell not in (None, "", "-"), "every figure of this history has a price"
    return D(cell)


def export_sums(rows: Iterable[Mapping[str, str | None]]) -> dict[Key, dict[str, D]]:
    """The report's sums, worked out by adding up the export's rows as a spreadsheet would."""
    sums: dict[Key, dict[str, D]] = defaultdict(lambda: dict.fromkeys(report.SUMS, D(0)))
    for row in rows:
        assert not row["shortfall"], "no record gives more than is held"
        period, account, currency = month(int(str(row["timestamp_ms"]))), row["account"], row["currency"]
        traded = sums[period, str(account), str(row["asset"]), str(currency)]
        for column, paid in (("fees", "fee"), ("taxes", "tax")):
            if row[paid] not in (None, ""):  # a transfer without one has nothing to value
                traded[column] += amount(row[paid + "_value"])
        if row["type"] in ("deposit", "withdrawal"):
            traded[row["type"] + "s"] += amount(row["value"])
        if row["realized"] not in (None, ""):
            given = row["asset"] if row["type"] == "sell" else row["quote"]
            disposed = sums[period, str(account), str(given), str(currency)]
            disposed["realized_profit"] += amount(row["realized"])
            disposed["proceeds"] += amount(row["value"])
            disposed["cost_of_sold"] += amount(row["value"]) - amount(row["realized"])
    return sums


def report_sums(rows: Iterable[Mapping[str, str | None]], currency: str) -> dict[Key, dict[str, D]]:
    return {
        (str(r["period"]), str(r["account"]), str(r["asset"]), currency): {
            column: amount(r[column]) for column in report.SUMS
        }
        for r in rows
        if r["currency"] == currency
    }


def assert_equal(reported: dict[Key, dict[str, D]], summed: dict[Key, dict[str, D]]) -> None:
    zero = dict.fromkeys(report.SUMS, D(0))
    assert set(summed) <= set(reported)
    for key in reported:  # a report row of an asset only held in its period sums nothing
        assert reported[key] == summed.get(key, zero), key


def test_the_history_makes_rounding_the_exact_totals_differ(storage: Path) -> None:
    """Without summing rounded rows the report would miss the export's sums: the test below can fail."""
    with Ledger.read_only(ledger_path(storage)) as ledger:
        differ = 0
        for account in ("alice", "bob"):
            trades, transfers = ledger.trades(account), ledger.transfers(account)
            prices = price_source(ledger, None, ActivitySettings(), {account: (trades, transfers)}, ["TRY"])
            basis = compute(trades, transfers, "TRY", prices.price_at, "average", keep_events=True)
            exact: dict[tuple[str, str], list[D]] = defaultdict(list)
            for row in export.rows(account, basis, prices.price_at):
                if row.realized is not None:
                    exact[month(row.timestamp_ms), "realized"].append(row.realized)
                if row.fee_value is not None:
                    exact[month(row.timestamp_ms), "fees"].append(row.fee_value)
            for figures in exact.values():
                naive = sum(figures, D(0)).quantize(D("0.01"))
                differ += naive != sum((f.quantize(D("0.01")) for f in figures), D(0))
    assert differ >= 2


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_report_totals_are_the_sums_of_the_exported_rows(
    storage: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    where = f"--storage.path={storage}"
    exported = run(capsys, "ledger", "export", where, f"--format={fmt}")
    reported = run(capsys, "ledger", "report", where, "--period=month", UNTIL, f"--format={fmt}")
    parse = (lambda text: list(csv.DictReader(io.StringIO(text)))) if fmt == "csv" else json.loads
    export_rows, report_rows = parse(exported), parse(reported)
    assert len(export_rows) > 120 and {r["account"] for r in export_rows} == {"alice", "bob"}
    assert {r["period"] for r in report_rows} == {"2026-01", "2026-02", "2026-03", "2026-04"}
    reported_try = report_sums(report_rows, "TRY")
    assert_equal(reported_try, export_sums(export_rows))
    # And realized = proceeds - cost_of_sold in every row, exactly.
    for sums in reported_try.values():
        assert sums["realized_profit"] == sums["proceeds"] - sums["cost_of_sold"]


def test_the_text_table_shows_the_same_totals(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = f"--storage.path={storage}"
    text = run(capsys, "ledger", "report", where, "--period=month", UNTIL, "--format=text")
    header, *lines = text.splitlines()
    columns = header.split()
    assert columns == list(report.COLUMNS)
    table = [dict(zip(columns, line.split(), strict=True)) for line in lines]
    exported = list(csv.DictReader(io.StringIO(run(capsys, "ledger", "export", where))))
    assert_equal(report_sums(table, "TRY"), export_sums(exported))


def test_usdt_totals_are_the_sums_of_the_usdt_export(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ledger export` writes the first valuation currency; USDT rows, made as it makes them, add up too."""
    where = f"--storage.path={storage}"
    reported = run(capsys, "ledger", "report", where, "--period=month", UNTIL, "--format=csv")
    out = io.StringIO()
    with Ledger.read_only(ledger_path(storage)) as ledger:
        for account in ("alice", "bob"):
            trades, transfers = ledger.trades(account), ledger.transfers(account)
            prices = price_source(ledger, None, ActivitySettings(), {account: (trades, transfers)}, ["USDT"])
            basis = compute(trades, transfers, "USDT", prices.price_at, "average", keep_events=True)
            export.write_csv(out, export.rows(account, basis, prices.price_at))
    exported = [r for r in csv.DictReader(io.StringIO(out.getvalue())) if r["account"] != "account"]
    report_rows = list(csv.DictReader(io.StringIO(reported)))
    assert_equal(report_sums(report_rows, "USDT"), export_sums(exported))
