#!/usr/bin/env python3
"""Activity-sync figures: the first sync of 100,000 trades, a cost-basis recompute, a steady cycle.

    python benchmarks/sync.py [--trades 100000] [--days 730] [--cycles 20]

A report, not a test: it prints its figures and fails nothing. The simulator runs in this process with
its per-IP limits raised (so the run is not an hour of waiting); the sync runs in a child process, so
its resident size is its own. The time the API's budget alone would impose is printed beside the
measured time. Targets: first sync bounded by the API budget alone, a steady cycle under 20 ms CPU,
RSS under 80 MiB at 100,000 trades.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import statistics
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

from exporter.activity.sync import ActivitySync  # noqa: E402
from exporter.api import budget  # noqa: E402
from exporter.api.account import Account, Secret  # noqa: E402
from exporter.api.client import Client  # noqa: E402
from exporter.api.market import EXCHANGE_INFO  # noqa: E402
from exporter.api.ratelimit import Gates  # noqa: E402
from exporter.api.records import CRYPTO, FIAT, TRADES  # noqa: E402
from exporter.api.transactions import KLINES, OHLCS, ActivityClient  # noqa: E402
from exporter.config.activity_settings import ActivitySettings  # noqa: E402
from exporter.ledger.store import Ledger  # noqa: E402
from exporter.simulator import Simulator, generate_keypair  # noqa: E402
from exporter.simulator.ledger import Trade as SimTrade  # noqa: E402
from exporter.simulator.ledger import Transfer as SimTransfer  # noqa: E402
from exporter.simulator.server import Handler  # noqa: E402

DAY_MS = 86_400_000
PAIRS = ("BTCTRY", "ETHTRY", "USDTTRY", "AVAXTRY", "XRPTRY", "BTCUSDT", "ETHUSDT")
FEE = Decimal("0.0012")
PATHS = (TRADES, CRYPTO, FIAT, EXCHANGE_INFO, KLINES, OHLCS)


def fill(sim: Simulator, public: str, trades: int, days: int, seed: int) -> None:
    """`trades` fills over `days` on a few pairs at the simulator's own past prices, plus deposits."""
    rng = random.Random(seed)
    now = sim.now_ms()
    history = sim.history(public)
    pairs = [sim.market.pairs[name] for name in PAIRS if name in sim.market.pairs]
    stamps = sorted(rng.randrange(now - days * DAY_MS, now - 60_000) for _ in range(trades))
    with sim.lock:
        for n, stamp in enumerate(stamps):
            pair = pairs[n % len(pairs)]
            base = sim.prices.price_at(pair.numerator, stamp / 1000) or 1.0
            quote = 1.0 if pair.denominator == "TRY" else sim.prices.price_at(pair.denominator, stamp / 1000)
            price = pair.q(Decimal(repr(base / (quote or 1.0))))
            amount = Decimal(rng.randrange(1, 10_000)).scaleb(-6)
            side = "buy" if rng.random() < 0.55 else "sell"
            gross = (amount * price).quantize(Decimal("1e-8"))
            fee = -(gross * FEE).quantize(Decimal("1e-8"))
            tax = -(-fee * Decimal("0.2")).quantize(Decimal("1e-8"))
            signed = amount if side == "buy" else -amount
            history.trades.append(
                SimTrade(
                    2**53 + n,
                    90_000_000 + n // 2,
                    stamp,
                    pair.numerator,
                    pair.denominator,
                    side,
                    price,
                    signed,
                    -signed * price,
                    fee,
                    tax,
                )
            )
        for n in range(days * 2):
            stamp = now - days * DAY_MS + n * DAY_MS // 2 + 1
            currency = "TRY" if n % 3 else "BTC"
            amount = Decimal(rng.randrange(1_000, 50_000)) if currency == "TRY" else Decimal("0.01")
            history.transfers.append(SimTransfer(5_000_000 + n, stamp, "deposit", currency, amount))


def child(url: str, public: str, private: str, ledger_dir: str, cycles: int) -> None:
    """The sync's side: first sync, recompute and steady cycles; prints one JSON line."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    account = Account("bench", public, Secret(private))
    settings = ActivitySettings(since="735d")
    client = ActivityClient(Client(url, 30.0), Client(url, 30.0))
    published = []
    rss_start, _ = rss_kib()
    with Ledger(Path(ledger_dir) / "ledger.db") as ledger:
        # The client-side budgets are lifted like the simulator's: the budget's time is computed instead.
        raised = [budget.Budget(b.name, 10_000_000, b.paths) for b in budget.BUDGETS]
        sync = ActivitySync(
            settings,
            [account],
            client,
            ledger,
            gates=Gates(raised),
            on_snapshot=published.append,
            budgets=raised,
        )
        wall, cpu = time.perf_counter(), time.process_time()
        snapshot = sync.run_once()["bench"]
        first_wall, first_cpu = time.perf_counter() - wall, time.process_time() - cpu
        rss_first, peak_first = rss_kib()
        recompute = []
        for _ in range(3):
            sync.health["bench"].changed = True
            wall = time.perf_counter()
            sync.publish("bench")
            recompute.append(time.perf_counter() - wall)
        steady_cpu, steady_wall = [], []
        for _ in range(cycles):
            wall, cpu = time.perf_counter(), time.process_time()
            for kind in ("trade", "crypto", "fiat"):
                sync.sync_endpoint(account, kind)  # type: ignore[arg-type]
            sync.publish("bench")
            steady_cpu.append(time.process_time() - cpu)
            steady_wall.append(time.perf_counter() - wall)
        wall, cpu = time.perf_counter(), time.process_time()
        sync.refresh_market()
        market_cpu = time.process_time() - cpu
        rss_end, peak = rss_kib()
    print(
        json.dumps(
            {
                "records": dict(snapshot.records),
                "unpriced": {c: b.unpriced for c, b in snapshot.cost_basis.items()},
                "truncated": sum(n for (_, r), n in snapshot.failures.items() if r == "truncated"),
                "failures": {f"{e} {r}": n for (e, r), n in snapshot.failures.items()},
                "first_wall": first_wall,
                "first_cpu": first_cpu,
                "recompute": recompute,
                "steady_cpu": steady_cpu,
                "steady_wall": steady_wall,
                "market_cpu": market_cpu,
                "rss_start": rss_start,
                "rss_first": rss_first,
                "peak_first": peak_first,
                "rss_end": rss_end,
                "peak": peak,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--child", nargs=5, metavar=("URL", "PUBLIC", "PRIVATE", "DIR", "CYCLES"))
    args = parser.parse_args()
    if args.child:
        url, public, private, ledger_dir, cycles = args.child
        child(url, public, private, ledger_dir, int(cycles))
        return
    public, private = generate_keypair(seed=9)
    # The simulator writes headers and body apart, unbuffered: on loopback each answer then waits ~40 ms
    # for a delayed ACK (Nagle), which would be most of the measured time. Buffered, an answer leaves whole.
    Handler.wbufsize = 1 << 16
    unlimited = dict.fromkeys(PATHS, 10_000_000)
    with Simulator(limits=unlimited, seed=1) as sim, tempfile.TemporaryDirectory() as ledger_dir:
        sim.prices.days = args.days + 30  # a price past as long as the account's history
        sim.add_account(public, private, [])
        started = time.perf_counter()
        fill(sim, public, args.trades, args.days, seed=2)
        print(
            f"btcturk-exporter activity-sync benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        )
        print(f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
              f"CPython {platform.python_version()}; load {os.getloadavg()}")  # fmt: skip
        print(f"simulator: {args.trades:,} trades over {args.days} days generated in "
              f"{time.perf_counter() - started:.1f} s; its per-IP limits raised to 10,000,000/min "
              f"for the transaction, exchangeinfo and graph endpoints (and the sync's own gates); "
              f"activity_cap {sim.activity_cap}")  # fmt: skip
        command = [
            sys.executable,
            __file__,
            "--child",
            sim.url,
            public,
            private,
            ledger_dir,
            str(args.cycles),
        ]
        out = subprocess.run(command, check=True, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        retried = [line for line in out.stderr.splitlines() if "retrying" in line]
        if out.stderr.strip():
            print(f"sync process log: {len(out.stderr.splitlines())} lines, {len(retried)} retries; last:")
            print("  " + out.stderr.strip().splitlines()[-1][:300])
        calls = {path: sim.count(path) for path in PATHS}
    settings = ActivitySettings()
    print(f"\nFirst sync (backfill of {args.days} days, page cap {settings.page_cap}):")
    print(f"  records: {result['records']}; truncated windows {result['truncated']}")
    print(f"  unpriced records per valuation currency: {result['unpriced']}")
    print(f"  failures: {result['failures'] or 'none'}")
    print(f"  wall {result['first_wall']:.1f} s, CPU {result['first_cpu']:.1f} s (sync process)")
    print("  API calls: " + ", ".join(f"{p} {n}" for p, n in calls.items()))
    budget_minutes = 0.0
    for path in (TRADES, CRYPTO, FIAT, KLINES):
        limit = budget.BY_PATH[path].limit
        planned = budget.planned_calls(limit, settings.rate_limit_share)
        n = calls[path] + (calls[OHLCS] if path == KLINES else 0)
        minutes = n / planned
        budget_minutes = max(budget_minutes, minutes)
        print(f"    {path}: {n} calls at the planned {planned}/min of {limit} = {minutes:.1f} min")
    print(f"  time the API budget alone imposes (endpoints in parallel threads): {budget_minutes:.1f} min;"
          f" measured {result['first_wall'] / 60:.1f} min with raised limits:"
          f" {'PASS' if result['first_wall'] / 60 <= budget_minutes else 'FAIL'}"
          " (the sync's own cost stays under the budget's)")  # fmt: skip
    rec = sorted(result["recompute"])
    print(f"\nCost-basis recompute (TRY and USDT, prices cached): median {statistics.median(rec):.2f} s")
    cpu_ms = sorted(1000 * c for c in result["steady_cpu"])
    wall_ms = sorted(1000 * c for c in result["steady_wall"])
    print(f"\nSteady cycle (3 reads, no new records, snapshot published), {len(cpu_ms)} cycles:")
    print(f"  CPU median {statistics.median(cpu_ms):.1f} ms, max {cpu_ms[-1]:.1f} ms; wall median "
          f"{statistics.median(wall_ms):.1f} ms   target < 20 ms CPU: "
          f"{'PASS' if statistics.median(cpu_ms) < 20 else 'FAIL'}")  # fmt: skip
    print(f"  one exchangeinfo poll (every {settings.market_interval:g} s, not every cycle): "
          f"{1000 * result['market_cpu']:.1f} ms CPU")  # fmt: skip
    mib = 1024
    print(f"\nResident size of the sync process: start {result['rss_start'] / mib:.1f} MiB, after the first "
          f"sync {result['rss_first'] / mib:.1f} MiB, end {result['rss_end'] / mib:.1f} MiB, peak "
          f"{result['peak'] / mib:.1f} MiB   target < 80 MiB: "
          f"{'PASS' if result['peak'] / mib < 80 else 'FAIL'}")  # fmt: skip


if __name__ == "__main__":
    main()
