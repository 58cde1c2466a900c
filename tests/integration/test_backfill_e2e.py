"""Issue "Your history on day one", done when: the backfill command, promtool and Prometheus, end to end.

The simulator makes weeks of account history; `btcturk-exporter backfill` runs as a real process against
it and writes a file; the real `promtool tsdb create-blocks-from openmetrics` turns it into blocks; a real
`prometheus` serves them; and instant queries at past times answer what the test works out on its own
from the simulator's record: the balances by replaying its trades and transfers by hand, their value
with the simulator's price path, rounded as its graph-api rounds candles. Nothing here calls the code
under test to get an expected number.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import yaml
from support import require_binary, wait_for

from exporter.ledger.store import Ledger
from exporter.simulator import Simulator, generate_keypair

HOUR = 3600
DAYS = 12
KEYS = generate_keypair(seed=61)


@dataclass
class Stack:
    sim: Simulator
    out: Path
    stderr: str
    live_since_s: int
    url: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    promtool, prometheus = require_binary("promtool"), require_binary("prometheus")
    work = tmp_path_factory.mktemp("backfill-e2e")
    with Simulator("127.0.0.1", 0, seed=9) as sim:
        sim.add_account(*KEYS, history_days=DAYS, seed=4)
        config = {
            "api_url": sim.url,
            "value_currencies": ["TRY"],
            "accounts": [{"name": "main", "public_key": KEYS[0], "private_key": KEYS[1]}],
        }
        (work / "config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        (work / "config.yml").chmod(0o600)
        # The exporter began scraping two days ago, at half past an hour: the file must stop before it.
        live_since_s = (int(sim.clock()) // HOUR - 48) * HOUR + 1800
        (work / "data").mkdir()
        with Ledger.open(work / "data") as ledger:
            ledger.set_state("live_since_ms", str(live_since_s * 1000))
        out = work / "backfill.om"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BTCTURK_")}
        result = subprocess.run(
            [sys.executable, "-m", "exporter", "backfill", "--config.file", str(work / "config.yml"),
             "--storage.path", str(work / "data"), "--graph-api.url", sim.url, "--out", str(out),
             "--label.instance=localhost:9788"],
            capture_output=True, text=True, timeout=120, env=env, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert out.read_text(encoding="utf-8").endswith("# EOF\n")
        blocks = work / "tsdb"
        made = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=1458h", str(out),
             str(blocks)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stdout + made.stderr
        (work / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n", encoding="utf-8")
        port = free_port()
        log = (work / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [prometheus, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={blocks}",
             "--storage.tsdb.retention.time=10y", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:

            def ready() -> bool:
                assert proc.poll() is None, (work / "prometheus.log").read_text()
                return requests.get(f"{url}/-/ready", timeout=2).status_code == 200

            wait_for(ready, 30, interval=0.2, what="prometheus to be ready")
            yield Stack(sim, out, result.stderr, live_since_s, url)
        finally:
            proc.terminate()
            proc.wait(15)
            log.close()


def query(stack: Stack, promql: str, at_s: int) -> dict[tuple[tuple[str, str], ...], float]:
    answer = requests.get(f"{stack.url}/api/v1/query", params={"query": promql, "time": at_s}, timeout=10)
    answer.raise_for_status()
    result = answer.json()["data"]["result"]
    return {
        tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")): float(r["value"][1])
        for r in result
    }


def held_at(sim: Simulator, at_ms: int) -> dict[str, Decimal]:
    """The simulator's own record replayed by hand: every move up to and including `at_ms`."""
    history = sim.history(KEYS[0])
    held: dict[str, Decimal] = {}
    for trade in history.trades:
        if trade.timestamp <= at_ms:
            # Fee and tax off the asset they were charged in (the numerator on an ETHTRY buy).
            numerator, denominator = trade.moved
            held[trade.numerator] = held.get(trade.numerator, Decimal(0)) + numerator
            held[trade.denominator] = held.get(trade.denominator, Decimal(0)) + denominator
    for transfer in history.transfers:
        if transfer.timestamp <= at_ms:
            held[transfer.currency] = held.get(transfer.currency, Decimal(0)) + transfer.net
    return held


def price_try(sim: Simulator, asset: str, at_s: int) -> Decimal | None:
    """The simulator's last price before `at_s` in TRY, rounded as its candles round each pair."""
    if asset == "TRY":
        return Decimal(1)
    pairs = sim.market.pairs
    before = at_s - 1e-6

    def path(symbol: str) -> float:
        price = sim.prices.price_at(symbol, before)
        assert price is not None
        return price

    if asset + "TRY" in pairs:
        return Decimal(repr(round(path(asset), pairs[asset + "TRY"].scale)))
    if asset + "USDT" in pairs and "USDTTRY" in pairs:
        in_usdt = round(path(asset) / path("USDT"), pairs[asset + "USDT"].scale)
        return Decimal(repr(in_usdt)) * Decimal(repr(round(path("USDT"), pairs["USDTTRY"].scale)))
    return None


def moments(stack: Stack) -> list[int]:
    """Past whole hours spread over the backfilled range, the last one just before live scraping."""
    last = (stack.live_since_s - 1) // HOUR * HOUR
    return [last - hours * HOUR for hours in (24 * (DAYS - 3) - 7, 24 * 7 + 5, 24 * 3 + 11, 30, 0)]


def test_balances_at_past_times_are_the_simulators_history(stack: Stack) -> None:
    checked = 0
    for at_s in moments(stack):
        expected = {a: q for a, q in held_at(stack.sim, at_s * 1000).items() if q != 0}
        assert expected, f"nothing held at {at_s}: pick moments inside the history"
        got = query(stack, 'btcturk_balance{account="main"}', at_s)
        shown = {dict(k)["asset"]: v for k, v in got.items() if v != 0}
        assert shown.keys() == expected.keys(), at_s
        for asset, quantity in expected.items():
            assert shown[asset] == float(quantity), (at_s, asset)
            checked += 1
    assert checked > 10


def test_values_and_portfolio_at_past_times_use_the_simulators_prices(stack: Stack) -> None:
    for at_s in moments(stack):
        held = {a: q for a, q in held_at(stack.sim, at_s * 1000).items() if q != 0}
        got = {
            dict(k)["asset"]: v
            for k, v in query(stack, 'btcturk_balance_value{account="main",currency="TRY"}', at_s).items()
        }
        total, unpriced = Decimal(0), 0
        for asset, quantity in held.items():
            price = price_try(stack.sim, asset, at_s)
            if price is None:
                unpriced += 1
                assert asset not in got, f"{asset} has no price at {at_s} but a value was shown"
                continue
            total += quantity * price
            assert math.isclose(got[asset], float(quantity * price), rel_tol=1e-12), (at_s, asset)
        portfolio = query(stack, 'btcturk_portfolio_value{account="main",currency="TRY"}', at_s)
        assert math.isclose(next(iter(portfolio.values())), float(total), rel_tol=1e-12), at_s
        count = query(stack, 'btcturk_unpriced_assets{account="main",currency="TRY"}', at_s)
        assert next(iter(count.values())) == unpriced


def test_trade_counts_at_past_times(stack: Stack) -> None:
    history = stack.sim.history(KEYS[0])
    for at_s in moments(stack):
        expected = sum(1 for t in history.trades if t.timestamp <= at_s * 1000)
        got = query(stack, 'sum(btcturk_trades_total{account="main"})', at_s)
        assert next(iter(got.values())) == expected, at_s


def test_the_file_stops_where_live_scraping_began_and_has_no_health_metrics(stack: Stack) -> None:
    last = (stack.live_since_s - 1) // HOUR * HOUR
    assert query(stack, 'count(btcturk_balance{account="main"})', last)
    # Past the last step's 5-minute lookback, before the live scrapes: nothing from the backfill.
    assert query(stack, "btcturk_balance", last + 600) == {}
    assert query(stack, "btcturk_balance", stack.live_since_s + HOUR) == {}
    health = '{__name__=~"btcturk_(up|scrape_.*|api_.*|last_poll.*|poll.*|request.*)"}'
    assert query(stack, f"count({health})", last) == {}
    assert "(live_since_ms)" in stack.stderr
    assert "API calls" in stack.stderr.splitlines()[-1]
