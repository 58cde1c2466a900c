"""Opening positions in the running exporter and in `backfill`: an account older than `activity.since`.

The simulator's account opened empty 50 days ago and the exporter reads 30 of them. What it held at
`since` enters the ledger as openings, so profit, net deposits, BTC's cost basis and realized profit are
complete "since since". The expected figures come from the simulator's own record (its history, its
candles over HTTP, its ticker), replayed here by the README's rules, not by the exporter's code. A
backfill on fresh storage (no exporter ran first) takes the same openings from its one walk.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from support import activity_config, sample, samples, start_exporter

from exporter.api.records import CRYPTO
from exporter.backfill.timeline import iso
from exporter.commands.backfill import backfill_main
from exporter.ledger.cursors import LIVE_SINCE
from exporter.ledger.store import Ledger
from exporter.simulator import Fault, Simulator, generate_keypair
from exporter.simulator.accounts import SimAsset
from exporter.simulator.ledger import History

OLD = generate_keypair(seed=171)
HELD = ("TRY", "BTC", "ETH", "USDT")  # every one with a TRY pair: each price is one candle's close
HOUR_S = 3600
HOUR_MS = 3_600_000


def config(sim: Simulator, since: str) -> dict[str, Any]:
    return activity_config(sim, {"main": OLD}, since=since)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        assets = [SimAsset(a, a, 0, 0) for a in HELD]
        simulator.add_account(*OLD, assets=assets, history_days=50, seed=5)
        yield simulator


def close(sim: Simulator, asset: str, when_ms: int) -> Decimal:
    """The close of the simulator's hourly candle holding `when_ms`, asset in TRY (its graph API)."""
    if asset == "TRY":
        return Decimal(1)
    hour = when_ms // 1000 // HOUR_S * HOUR_S
    params: dict[str, str | int] = {"symbol": f"{asset}_TRY", "resolution": "60", "from": hour, "to": hour}
    answer = requests.get(f"{sim.url}/v1/klines/history", params=params, timeout=10)
    body = json.loads(answer.text, parse_float=Decimal, parse_int=Decimal)
    assert body["s"] == "ok" and body["t"] == [hour], body
    return Decimal(body["c"][0])


def held_at(history: History, since_ms: int) -> dict[str, Decimal]:
    """What the account held at `since_ms`, by the simulator's own record of every record before it."""
    held: dict[str, Decimal] = {}
    for trade in history.trades:
        if trade.timestamp < since_ms:
            # The simulator's own record of what the fill moved (a numerator-fee pair's fee included).
            base, quote = trade.moved
            held[trade.numerator] = held.get(trade.numerator, Decimal(0)) + base
            held[trade.denominator] = held.get(trade.denominator, Decimal(0)) + quote
    for transfer in history.transfers:
        if transfer.timestamp < since_ms:
            held[transfer.currency] = held.get(transfer.currency, Decimal(0)) + transfer.amount
    return held


def expected(
    sim: Simulator, history: History, since_ms: int, until_ms: int | None = None
) -> dict[str, Decimal]:
    """Net deposits, and BTC's cost basis and realized profit (average cost), in TRY, since `since_ms`
    (with `until_ms`, over the records up to it)."""
    held = held_at(history, since_ms)
    assert held.get("BTC", Decimal(0)) > 0, "BTC was held at since (else this test shows nothing)"
    end = until_ms if until_ms is not None else sys.maxsize
    rank = {"deposit": 0, "trade": 1, "withdrawal": 2}
    events: list[tuple[int, int, int, Any]] = [
        (t.timestamp, rank["trade"], t.id, t) for t in history.trades if since_ms <= t.timestamp <= end
    ]
    events += [
        (t.timestamp, rank[t.kind], t.id, t) for t in history.transfers if since_ms <= t.timestamp <= end
    ]
    events.sort(key=lambda e: e[:3])
    with localcontext() as ctx:
        ctx.prec = 60
        net = sum((q * close(sim, a, since_ms) for a, q in held.items() if q > 0), Decimal(0))
        quantity = held["BTC"]
        cost = quantity * close(sim, "BTC", since_ms)
        realized = Decimal(0)
        for when, _, _, record in events:
            if hasattr(record, "numerator"):
                assert record.denominator != "BTC", "no BTC-quoted pair in this market"
                if record.numerator != "BTC":
                    continue
                q = abs(record.amount)
                costs = abs(record.fee) + abs(record.tax)
                leg = q * record.price + costs if record.side == "buy" else q * record.price - costs
                value = leg * close(sim, record.denominator, when)
                if record.side == "buy":
                    quantity, cost = quantity + q, cost + value
                else:
                    removed = cost if q == quantity else cost * q / quantity
                    realized += value - removed
                    quantity, cost = quantity - q, cost - removed
            else:
                q = abs(record.amount)
                value = q * close(sim, record.currency, when)
                net += value if record.kind == "deposit" else -value
                if record.currency == "BTC":
                    if record.kind == "deposit":
                        quantity, cost = quantity + q, cost + value
                    else:
                        removed = cost if q == quantity else cost * q / quantity
                        quantity, cost = quantity - q, cost - removed
    return {"net_deposits": net, "btc_cost": cost, "btc_realized": realized}


def export_rows(storage: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "ledger",
            "export",
            "--storage.path",
            str(storage),
            "--format=json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def served_once_reconciled(sim: Simulator, tmp_path: Path, since: str) -> tuple[dict, Path]:
    storage = tmp_path / "storage"
    exporter = start_exporter(tmp_path, config(sim, since), f"--storage.path={storage}")
    try:
        # The unit value is served once every holding reconciles (with the openings, for this account)
        # and the cost basis over them is published.
        m = exporter.wait_metrics(
            lambda m: samples(m, "btcturk_portfolio_unit_value"), timeout=120, what="the unit value"
        )
    finally:
        assert exporter.terminate() == 0
    return m, storage


def test_an_account_older_than_since_is_complete_since_since(sim: Simulator, tmp_path: Path) -> None:
    m, storage = served_once_reconciled(sim, tmp_path, "30d")
    with Ledger.open(storage) as ledger:
        since_ms = int(ledger.state("activity:origin:main") or 0)
        openings = ledger.openings("main")
    history = sim.history(OLD[0])
    assert min(t.timestamp for t in history.trades) < since_ms - 15 * 86_400_000, "history older than since"
    want = expected(sim, history, since_ms)
    net = sample(m, "btcturk_net_deposits", account="main", currency="TRY")
    assert net == pytest.approx(float(want["net_deposits"]), rel=1e-12)
    cost = sample(m, "btcturk_asset_cost_basis", account="main", asset="BTC", currency="TRY")
    assert cost == pytest.approx(float(want["btc_cost"]), rel=1e-12)
    realized = sample(m, "btcturk_asset_realized_profit", account="main", asset="BTC", currency="TRY")
    assert realized == pytest.approx(float(want["btc_realized"]), rel=1e-9, abs=1e-6)
    # Profit is value minus net deposits: the value at the simulator's own balances and ticker.
    balances = {a.asset: a.free + a.locked for a in sim.assets(OLD[0])}
    value_now = sum(
        (q * (Decimal(1) if a == "TRY" else sim.market.pairs[a + "TRY"].last) for a, q in balances.items()),
        Decimal(0),
    )
    value = sample(m, "btcturk_portfolio_value", account="main", currency="TRY")
    assert value == pytest.approx(float(value_now), rel=1e-12)
    assert value - net == pytest.approx(float(value_now - want["net_deposits"]), rel=1e-9)
    assert sample(m, "btcturk_ledger_reconciled", account="main", asset="BTC", state="match") == 1
    # `ledger export`: one row of kind opening per asset held at since, columns as for a deposit.
    rows = [r for r in export_rows(storage) if r["kind"] == "opening" and r["currency"] == "TRY"]
    assert {r["asset"] for r in rows} == {o.currency for o in openings} and "BTC" in {
        r["asset"] for r in rows
    }
    btc = next(r for r in rows if r["asset"] == "BTC")
    assert btc["type"] == "deposit" and btc["timestamp_ms"] == since_ms and btc["id"] == str(since_ms)
    assert Decimal(btc["value"]) == round(Decimal(btc["amount"]) * close(sim, "BTC", since_ms), 2), (
        "valued at the candle's close at since"
    )


def test_an_account_younger_than_since_gets_no_opening(sim: Simulator, tmp_path: Path) -> None:
    m, storage = served_once_reconciled(sim, tmp_path, "60d")
    with Ledger.open(storage) as ledger:
        assert ledger.openings("main") == []
    assert not [r for r in export_rows(storage) if r["kind"] == "opening"]
    history = sim.history(OLD[0])
    net = sample(m, "btcturk_net_deposits", account="main", currency="TRY")
    assert net == pytest.approx(float(expected_all(sim, history)), rel=1e-12)


def expected_all(sim: Simulator, history: History) -> Decimal:
    """Net deposits over the whole history, each transfer at its candle's close."""
    with localcontext() as ctx:
        ctx.prec = 60
        total = Decimal(0)
        for t in history.transfers:
            value = abs(t.amount) * close(sim, t.currency, t.timestamp)
            total += value if t.kind == "deposit" else -value
    return total


# --- backfill on fresh storage: the openings from its one walk ------------------------------------

PROFIT = "account_currency:btcturk_portfolio_profit:value_minus_net_deposits"
OPENINGS_LOGGER = "exporter.activity.reconciler"


def since_day(sim: Simulator, days: int) -> str:
    """The UTC date `days` back: the exporter and every backfill start the history at the same time."""
    return datetime.fromtimestamp(sim.now() - days * 86_400, timezone.utc).strftime("%Y-%m-%d")


def write_config(tmp_path: Path, sim: Simulator, since: str) -> Path:
    path = tmp_path / "backfill.yml"
    path.write_text(yaml.safe_dump(config(sim, since)), encoding="utf-8")
    path.chmod(0o600)
    return path


def run_backfill(config_file: Path, storage: Path, until_ms: int) -> tuple[int, str, str]:
    """`btcturk-exporter backfill` in process, ending at `until_ms`: exit status, the file, stderr."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["--config.file", str(config_file), "--storage.path", str(storage),
            "--label.instance=localhost:9788", "--until", iso(until_ms)]  # fmt: skip
    return backfill_main(argv, out, err), out.getvalue(), err.getvalue()


def lines_of(text: str, name: str) -> list[str]:
    """The file's sample lines of one series name, as written."""
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def series(text: str, name: str, **labels: str) -> dict[int, float]:
    """One series of the file: its values by step (ms)."""
    return {
        round(float(s.timestamp) * 1000): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    }


def opening_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "opening positions" in r.getMessage()]


def test_a_backfill_on_fresh_storage_takes_the_openings_the_exporter_takes(
    sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=OPENINGS_LOGGER)
    since = since_day(sim, 30)
    until = (sim.now_ms() // HOUR_MS - 1) * HOUR_MS  # whole hours, every candle closed: both files alike
    _, live = served_once_reconciled(sim, tmp_path, since)
    with Ledger.open(live) as ledger:
        since_ms = int(ledger.state("activity:origin:main") or 0)
        from_live = ledger.openings("main")
    assert {o.currency for o in from_live} >= {"BTC"}, from_live
    config_file = write_config(tmp_path, sim, since)
    caplog.clear()

    fresh = tmp_path / "fresh"
    code, written, err = run_backfill(config_file, fresh, until)
    assert code == 0, err
    with Ledger.open(fresh) as ledger:
        assert ledger.openings("main") == from_live, "one walk from the balances taken before the sync"
    # The simulator's own record says the same: what every record before since left held.
    held = {a: q for a, q in held_at(sim.history(OLD[0]), since_ms).items() if q > 0}
    assert {o.currency: o.amount for o in from_live} == held
    assert opening_lines(caplog) == [
        "account main: opening positions at its history's start (activity.since): "
        + ", ".join(f"{format(q, 'f')} {a}" for a, q in sorted(held.items()))
    ]

    caplog.clear()
    code, written_live, err = run_backfill(config_file, live, until)
    assert code == 0, err
    assert opening_lines(caplog) == [], "the exporter's openings are kept as they are"
    for name in ("btcturk_net_deposits", PROFIT, "btcturk_asset_cost_basis", "btcturk_portfolio_unit_value"):
        assert lines_of(written, name), name
        assert lines_of(written, name) == lines_of(written_live, name), name
    # By hand: net deposits at the last step are the openings and every flow since, at their candles.
    net = series(written, "btcturk_net_deposits", currency="TRY")
    assert min(net) == since_ms, "from since on: the holdings there are known"
    last = max(net)
    want = expected(sim, sim.history(OLD[0]), since_ms, last)["net_deposits"]
    assert net[last] == pytest.approx(float(want), rel=1e-12)
    assert series(written, "btcturk_asset_cost_basis", asset="BTC", currency="TRY"), "the whole holding"


def test_a_backfill_keeps_no_opening_for_an_asset_the_balances_contradict(
    sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=OPENINGS_LOGGER)
    since = since_day(sim, 30)
    since_ms = int(datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp() * 1000)
    history = sim.history(OLD[0])
    held = {a: q for a, q in held_at(history, since_ms).items() if q > 0}
    now = held_at(history, sim.now_ms() + 1)
    # An asset held at since that the records since then added to: held at nothing now, its records
    # give away more than the balance and all they show held (a mismatch), not what was held at since.
    gone = next(a for a in sorted(held) if now[a] > held[a])
    sim.set_assets(
        OLD[0],
        [a if a.asset != gone else dataclasses.replace(a, free=0, locked=0) for a in sim.assets(OLD[0])],
    )
    code, written, err = run_backfill(write_config(tmp_path, sim, since), tmp_path / "fresh", sim.now_ms())
    assert code == 0, err
    with Ledger.open(tmp_path / "fresh") as ledger:
        kept = {o.currency: o.amount for o in ledger.openings("main")}
    assert kept == {a: q for a, q in held.items() if a != gone}, "none guessed for the contradicted asset"
    assert len(opening_lines(caplog)) == 1
    # Shown as the shortfall it is: a notice, and the asset's series only after the walk's negative.
    assert f"account main: {gone}: walking the ledger back from the balances gives -" in err
    balance = series(written, "btcturk_balance", asset=gone)
    assert all(when > since_ms and quantity >= 0 for when, quantity in balance.items())
    profit = series(written, PROFIT, currency="TRY")
    assert profit and min(profit) > since_ms, "no portfolio (nor profit) over a holding never known"


def test_a_backfill_of_a_history_not_read_whole_keeps_no_openings(
    sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=OPENINGS_LOGGER)
    config_file = write_config(tmp_path, sim, since_day(sim, 30))
    storage = tmp_path / "fresh"
    sim.inject(Fault("status", status=403), endpoint=CRYPTO)
    try:
        code, written, err = run_backfill(config_file, storage, sim.now_ms())
    finally:
        sim.clear_faults()
    assert code == 1 and written == ""
    assert "account main: its transaction history could not be read to the end" in err
    with Ledger.open(storage) as ledger:
        assert ledger.openings("main") == []
        assert ledger.cursor("main", "trade").backfill_complete, "part of the history was read"
    assert opening_lines(caplog) == []
    # Read whole on the next run: the openings follow.
    code, _, err = run_backfill(config_file, storage, sim.now_ms())
    assert code == 0, err
    with Ledger.open(storage) as ledger:
        assert {o.currency for o in ledger.openings("main")} >= {"BTC"}
    assert len(opening_lines(caplog)) == 1


def test_a_backfill_on_a_ledger_an_exporter_polled_leaves_the_openings_to_the_exporter(
    sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=OPENINGS_LOGGER)
    storage = tmp_path / "polled"
    # An exporter's first poll marks the ledger; its reconciler's two polls may agree on no openings,
    # which reads back as none: one walk of the backfill must not overrule them.
    with Ledger.open(storage) as ledger:
        ledger.set_state(LIVE_SINCE, str(sim.now_ms()))
    code, _, err = run_backfill(write_config(tmp_path, sim, since_day(sim, 30)), storage, sim.now_ms())
    assert code == 0, err
    with Ledger.open(storage) as ledger:
        assert ledger.openings("main") == []
    assert opening_lines(caplog) == []
