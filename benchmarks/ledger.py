#!/usr/bin/env python3
"""Ledger figures: 100,000 trades into SQLite, read back, and the cost basis recomputed over them.

    python benchmarks/ledger.py [--trades 100000] [--batch 1000] [--keep DIR]

A report, not a test: it prints its figures and fails nothing. The target is a full cost-basis
recompute (read from the ledger plus replay) under 2 s for 100,000 trades.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from procstat import rss_kib  # noqa: E402  (benchmarks/ is the script's own folder)

from exporter.api.records import Trade  # noqa: E402
from exporter.ledger.costbasis import compute  # noqa: E402
from exporter.ledger.store import Ledger  # noqa: E402

T0 = 1_700_000_000_000
HOUR_MS = 3_600_000
# (base, quote, starting price): mostly TRY-quoted, as on the exchange, plus USDT-quoted pairs that
# need a market price for every trade under TRY valuation.
PAIRS = [
    ("BTC", "TRY", Decimal("2000000")),
    ("ETH", "TRY", Decimal("80000")),
    ("USDT", "TRY", Decimal("34")),
    ("AVAX", "TRY", Decimal("1200")),
    ("BTC", "USDT", Decimal("60000")),
    ("ETH", "USDT", Decimal("2500")),
]


def make_trades(count: int, seed: int) -> Iterator[Trade]:
    """Plausible fills: buys a little more often than sells, prices on a random walk, fee 0.1% + 18% tax."""
    rng = random.Random(seed)
    prices = [p for *_, p in PAIRS]
    for n in range(count):
        index = rng.randrange(len(PAIRS))
        base, quote, _ = PAIRS[index]
        prices[index] = (prices[index] * Decimal(1000 + rng.randint(-3, 3)) / 1000).quantize(Decimal("0.01"))
        side = "buy" if rng.random() < 0.55 else "sell"
        quantity = Decimal(rng.randint(1, 10**6)) / Decimal(10**8) * (10**6 if base == "USDT" else 1)
        gross = quantity * prices[index]
        fee = (gross / 1000).quantize(Decimal("0.00000001"))
        tax = (fee * Decimal("0.18")).quantize(Decimal("0.00000001"))
        yield Trade(
            id=10**15 + n,
            order_id=10**12 + n // 2,
            timestamp_ms=T0 + n * 30_000,
            base=base,
            quote=quote,
            side=side,
            price=prices[index],
            amount=quantity if side == "buy" else -quantity,
            fee=-fee,
            tax=-tax,
        )


def hourly_prices(count: int) -> dict[tuple[str, int], Decimal]:
    """A stand-in for the price cache: one USDT/TRY close per hour over the trades' span."""
    hours = count * 30_000 // HOUR_MS + 2
    return {("USDT", h): Decimal(34) + Decimal(h % 500) / 100 for h in range(hours)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="trades per upsert, as a sync page")
    parser.add_argument("--keep", help="write the ledger into this directory and keep it")
    args = parser.parse_args()

    print(f"btcturk-exporter ledger benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"machine: {os.cpu_count()} CPUs, Linux {platform.release()}, CPython {platform.python_version()},"
        f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    rss_start, _ = rss_kib()
    trades = list(make_trades(args.trades, seed=1))
    rss_records, _ = rss_kib()
    print(f"\n{len(trades):,} trades over {len(PAIRS)} pairs; in memory: {rss_records - rss_start:,} KiB")

    with tempfile.TemporaryDirectory() as scratch:
        storage = Path(args.keep or scratch)
        path = storage / "ledger.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        with Ledger.open(storage) as ledger:
            started = time.perf_counter()
            for i in range(0, len(trades), args.batch):
                ledger.upsert_trades("bench", trades[i : i + args.batch])
            insert_s = time.perf_counter() - started
            started = time.perf_counter()
            changed = sum(
                ledger.upsert_trades("bench", trades[i : i + args.batch])
                for i in range(0, len(trades), args.batch)
            )
            reinsert_s = time.perf_counter() - started
            rss_insert, _ = rss_kib()
            size = sum(os.path.getsize(p) for p in storage.glob("ledger.db*"))
            print("\nLedger (SQLite, WAL)")
            print(
                f"  insert {len(trades):,} in batches of {args.batch}: {insert_s:.2f} s"
                f" ({len(trades) / insert_s:,.0f} trades/s)"
            )
            print(f"  upsert the same again (idempotent, {changed} changed): {reinsert_s:.2f} s")
            print(f"  file with WAL: {size / 1e6:.1f} MB ({size / len(trades):.0f} bytes/trade)")

            closes = hourly_prices(len(trades))

            def price_at(asset: str, currency: str, when_ms: int) -> Decimal | None:
                return closes.get((asset, (when_ms - T0) // HOUR_MS)) if currency == "TRY" else None

            print("\nCost basis recompute (read every trade from the ledger, then replay), TRY valuation")
            for method in ("average", "fifo"):
                timings = []
                for _ in range(3):
                    started = time.perf_counter()
                    stored = ledger.trades("bench")
                    read_s = time.perf_counter() - started
                    basis = compute(stored, [], "TRY", price_at, method)  # type: ignore[arg-type]
                    timings.append((time.perf_counter() - started, read_s))
                best, read_s = min(timings)
                verdict = "PASS" if best < 2 else "FAIL"
                shortfalls = sum(p.shortfalls for p in basis.positions.values())
                print(
                    f"  {method:7}  best of 3: {best:.2f} s (of which reading {read_s:.2f} s)"
                    f"  target < 2 s: {verdict};  realized {basis.realised:,.2f} TRY,"
                    f" {shortfalls:,} shortfalls, {basis.unpriced} unpriced"
                )
            started = time.perf_counter()
            compute(stored, [], "TRY", price_at, "average", keep_events=True)
            print(f"  average with every event kept (for export): {time.perf_counter() - started:.2f} s")
    rss_end, peak = rss_kib()
    print(
        f"\nResident size: start {rss_start / 1024:.1f} MiB, after insert {rss_insert / 1024:.1f} MiB,"
        f" end {rss_end / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    main()
