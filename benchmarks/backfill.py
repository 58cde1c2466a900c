#!/usr/bin/env python3
"""Backfill figures: one account, 10,000 trades over a year, written at 1h steps as OpenMetrics.

    python benchmarks/backfill.py [--trades 10000] [--days 365] [--step-minutes 60] [--method average]
                                  [--promtool] [--keep FILE] [--command-days N]

A report, not a test: it prints its figures and fails nothing. Targets: under 30 s for the whole
reconstruction and file (API time excluded: prices come from an in-memory table, as from a filled
cache), and a peak resident size under 150 MiB. --promtool also feeds the file to
`promtool tsdb create-blocks-from openmetrics` and reports its time separately. --command-days N also
runs the real `btcturk-exporter backfill` process against the simulator with N days of history on a
new ledger, API time included (its sync, balances and price history at the planned rate share).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from procstat import rss_kib  # noqa: E402  (benchmarks/ is the script's own folder)

from exporter.api.records import Trade, Transfer  # noqa: E402
from exporter.backfill.timeline import AccountHistory, Plan, deltas  # noqa: E402
from exporter.backfill.writer import Progress, backfill  # noqa: E402
from exporter.pricing.routes import price_of_route, table_of  # noqa: E402

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
T0 = 1_733_011_200_000  # 2024-12-01T00:00:00Z
# (base, quote, price at T0): TRY-quoted as most of the exchange, plus USDT-quoted pairs whose trades
# are valued through USDT/TRY under TRY valuation, and an asset priced only through a bridge.
PAIRS = [
    ("BTC", "TRY", Decimal("2000000")),
    ("ETH", "TRY", Decimal("80000")),
    ("USDT", "TRY", Decimal("34")),
    ("AVAX", "TRY", Decimal("1200")),
    ("BTC", "USDT", Decimal("60000")),
    ("ETH", "USDT", Decimal("2500")),
    ("SOL", "USDT", Decimal("150")),
]


def hourly_closes(hours: int, seed: int) -> dict[tuple[str, str], list[Decimal]]:
    """A stand-in for the filled price cache: one close per pair per hour, on a random walk."""
    rng = random.Random(seed)
    closes = {}
    for base, quote, start in PAIRS:
        price, series = start, []
        for _ in range(hours):
            price = (price * Decimal(10_000 + rng.randint(-40, 40)) / 10_000).quantize(Decimal("0.0001"))
            series.append(price)
        closes[base, quote] = series
    return closes


def make_history(
    count: int, days: int, closes: dict[tuple[str, str], list[Decimal]], seed: int
) -> tuple[list[Trade], list[Transfer], dict[str, Decimal]]:
    """Trades that never sell more than is held, a few transfers, and the balances they add up to."""
    rng = random.Random(seed)
    span = days * DAY_MS
    transfers = [Transfer("fiat", 1, T0 - DAY_MS, "deposit", "TRY", Decimal(50_000_000))]
    for n in range(2, 26):  # crypto in and out now and then, fees not taken from the amount
        asset = rng.choice(["BTC", "ETH", "USDT"])
        amount = Decimal(rng.randint(1, 500)) / 1000 * (1000 if asset == "USDT" else 1)
        transfers.append(Transfer("crypto", n, T0 + rng.randrange(span), "deposit", asset, amount))
    transfers.sort(key=lambda t: t.timestamp_ms)
    held: dict[str, Decimal] = {}

    def move(record: Trade | Transfer) -> None:
        for asset, delta in deltas(record):
            held[asset] = held.get(asset, Decimal(0)) + delta

    trades: list[Trade] = []
    times = sorted(T0 + rng.randrange(span) for _ in range(count))
    pending = list(transfers)
    for n, ms in enumerate(times):
        while pending and pending[0].timestamp_ms <= ms:
            move(pending.pop(0))
        base, quote, _ = PAIRS[rng.randrange(len(PAIRS))]
        price = closes[base, quote][(ms - T0) // HOUR_MS]
        quantity = (Decimal(rng.randint(1, 2000)) / (price if quote == "TRY" else price * 30)).quantize(
            Decimal("0.00000001")
        )
        side = "sell" if held.get(base, Decimal(0)) >= quantity and rng.random() < 0.45 else "buy"
        gross = quantity * price
        fee = (gross * Decimal("0.001")).quantize(Decimal("0.00000001"))
        tax = (fee * Decimal("0.18")).quantize(Decimal("0.00000001"))
        if side == "buy" and held.get(quote, Decimal(0)) < gross + fee + tax:
            # Not enough of the quote: buy some of it with TRY instead, so there are `count` trades.
            base, quote, price = "USDT", "TRY", closes["USDT", "TRY"][(ms - T0) // HOUR_MS]
            quantity = Decimal(rng.randint(10, 500))
            gross = quantity * price
            fee = (gross * Decimal("0.001")).quantize(Decimal("0.00000001"))
            tax = (fee * Decimal("0.18")).quantize(Decimal("0.00000001"))
        trade = Trade(
            10**15 + n,
            10**12 + n,
            ms,
            base,
            quote,
            side,
            price,
            quantity if side == "buy" else -quantity,
            -fee,
            -tax,
        )
        move(trade)
        trades.append(trade)
    for transfer in pending:
        move(transfer)
    balances = dict(held)
    return trades, transfers, balances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--step-minutes", type=int, default=60)
    parser.add_argument("--method", choices=("average", "fifo"), default="average")
    parser.add_argument("--promtool", action="store_true", help="also build TSDB blocks from the file")
    parser.add_argument("--block-hours", type=int, default=1458, help="promtool --max-block-duration")
    parser.add_argument("--keep", help="write the OpenMetrics file here and keep it")
    parser.add_argument(
        "--command-days", type=int, help="also run the backfill command over this much history"
    )
    args = parser.parse_args()

    print(f"btcturk-exporter backfill benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"machine: {os.cpu_count()} CPUs, Linux {platform.release()}, CPython {platform.python_version()},"
        f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    rss_start, _ = rss_kib()
    hours = args.days * 24 + 48
    closes = hourly_closes(hours, seed=1)
    trades, transfers, balances = make_history(args.trades, args.days, closes, seed=2)
    until = T0 + args.days * DAY_MS
    calls = 0

    table = table_of(closes)

    def price_at(asset: str, currency: str, when_ms: int) -> Decimal | None:
        # Routed as the exporter's price history routes (the timeline and the replay route nothing).
        nonlocal calls
        calls += 1
        hour = max(0, (when_ms - T0) // HOUR_MS)
        return price_of_route(table, asset, currency, lambda leg: closes[leg.base, leg.quote][hour])

    rss_inputs, _ = rss_kib()
    print(
        f"\nInput: {len(trades):,} trades over {len(PAIRS)} pairs and {len(transfers)} transfers in"
        f" {args.days} days; {len(balances)} assets held;"
        f" inputs in memory {(rss_inputs - rss_start) / 1024:.1f} MiB"
    )
    plan = Plan(T0, until, args.step_minutes * 60_000, ("TRY", "USDT"), args.method)
    history = AccountHistory("bench", balances, until, trades, transfers, complete_since_ms=T0 - DAY_MS)
    marks: dict[str, float] = {}

    def progress(p: Progress) -> None:
        marks.setdefault(p.stage, time.perf_counter())

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(args.keep) if args.keep else Path(scratch) / "backfill.om"
        started = time.perf_counter()
        with path.open("w", encoding="utf-8") as out:
            summary = backfill(out, [history], plan, price_at, progress)
        total_s = time.perf_counter() - started
        reconstruct_s = marks["reconstruct"] - started
        _, peak = rss_kib()
        size = path.stat().st_size
        print(f"\nBackfill at {args.step_minutes} min steps, valued in TRY and USDT, {args.method} cost")
        print(f"  steps: {len(plan.steps()):,}; series: {summary.series:,}; samples: {summary.samples:,}")
        print(f"  file: {size / 1e6:.1f} MB; price look-ups: {calls:,}; notices: {len(summary.notices)}")
        for notice in summary.notices[:5]:
            print(f"    {notice}")
        print(f"  reconstruct: {reconstruct_s:.2f} s; write: {total_s - reconstruct_s:.2f} s")
        verdict = "PASS" if total_s < 30 else "FAIL"
        print(f"  total: {total_s:.2f} s   target < 30 s: {verdict}")
        mem = "PASS" if peak / 1024 < 150 else "FAIL"
        print(
            f"  resident size: start {rss_start / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB"
            f"   target < 150 MiB: {mem}"
        )
        if args.promtool:
            promtool = shutil.which("promtool")
            if promtool is None:
                print("  promtool: not on PATH, skipped")
            else:
                blocks = scratch + "/tsdb"
                # promtool reads the whole file once per block it cuts: 2h blocks over a year is 4,380
                # passes, so the figure is taken with the larger blocks the backfill docs advise.
                flag = f"--max-block-duration={args.block_hours}h"
                started = time.perf_counter()
                result = subprocess.run(
                    [
                        promtool,
                        "tsdb",
                        "create-blocks-from",
                        "openmetrics",
                        flag,
                        "-q",
                        str(path),
                        blocks,
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                state = "accepted" if result.returncode == 0 else f"refused: {result.stderr.strip()[:200]}"
                took = time.perf_counter() - started
                print(f"  promtool create-blocks-from openmetrics {flag}: {state} in {took:.1f} s")
    if args.command_days:
        command_run(args.command_days)


def command_run(days: int) -> None:
    """The backfill command as a process against the simulator: wall time, peak RSS, API calls."""
    import yaml

    from exporter.simulator import Simulator, generate_keypair

    keys = generate_keypair(seed=5)
    with Simulator("127.0.0.1", 0, seed=3) as sim, tempfile.TemporaryDirectory() as scratch:
        sim.add_account(*keys, history_days=days, seed=4)
        records = len(sim.history(keys[0]).trades) + len(sim.history(keys[0]).transfers)
        config = Path(scratch) / "config.yml"
        accounts = [{"name": "bench", "public_key": keys[0], "private_key": keys[1]}]
        config.write_text(yaml.safe_dump({"api_url": sim.url, "accounts": accounts}), encoding="utf-8")
        config.chmod(0o600)
        argv = [sys.executable, "-m", "exporter", "backfill", f"--config.file={config}",
                f"--storage.path={scratch}/data", f"--graph-api.url={sim.url}",
                f"--out={scratch}/b.om", "--label.instance=localhost:9788"]  # fmt: skip
        for run in ("new ledger", "again (synced, prices cached)"):
            log = Path(scratch) / "stderr.txt"
            started = time.perf_counter()
            with log.open("w", encoding="utf-8") as err:
                proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
                # This child's own peak, not RUSAGE_CHILDREN's (which would include promtool's).
                _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            took = time.perf_counter() - started
            lines = log.read_text(encoding="utf-8").strip().splitlines()
            print(f"\nbackfill command, {days} days of simulator history ({records:,} records), {run}:")
            print(f"  exit {proc.returncode} in {took:.1f} s; peak RSS {usage.ru_maxrss / 1024:.1f} MiB")
            print(f"  {lines[-1] if lines else '(no output)'}")


if __name__ == "__main__":
    main()
