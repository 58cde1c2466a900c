#!/usr/bin/env python3
"""The live cost basis at 100,000 trades: full replay, one new record fed on, and the report commands.

    python benchmarks/replay.py [--trades 100000] [--appends 100] [--keep DIR] [--profile METHOD]

A report, not a test: it prints its figures beside their targets and fails nothing. The ledger is
benchmarks/ledger.py's trades plus deposits and withdrawals (so units are issued and redeemed), with
every pair's hourly candles in the ledger's price cache, so nothing here touches a network. Valued in
TRY and USDT, the exporter's default currencies, as activity/revalue.py does it:

* full replay per method: reading the history a 30-day chunk at a time, the prices each chunk needs
  looked up, the cost basis and the unit value replayed (targets < 1 s); the replay alone, over
  records already read; and the full replay valued in TRY alone, as the issue's baseline was;
* one new record: appended to the ledger, then revalue() feeding it onto the kept replay (median of
  --appends, target < 10 ms), beside the full recompute every new record cost before (the peer);
* `ledger report --period month` and `ledger holdings --at` run as commands on that ledger (offline:
  no --config.file, prices from its cache; target < 2 s each), with their peak resident size.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ledger import PAIRS, T0, make_trades  # noqa: E402  (benchmarks/ is the script's own folder)
from procstat import rss_kib  # noqa: E402

from exporter.activity.revalue import chunks, revalue  # noqa: E402
from exporter.activity.state import SyncHealth  # noqa: E402
from exporter.api.candles import HOURLY  # noqa: E402
from exporter.api.records import Trade, Transfer  # noqa: E402
from exporter.config.activity_settings import COST_METHODS, ActivitySettings, CostMethod  # noqa: E402
from exporter.ledger.costbasis import compute_chunks, order  # noqa: E402
from exporter.ledger.cursors import origin_key  # noqa: E402
from exporter.ledger.replay import ReplayState  # noqa: E402
from exporter.ledger.returns import UnitTrack  # noqa: E402
from exporter.ledger.store import Ledger  # noqa: E402
from exporter.pricing.candlecache import HOUR  # noqa: E402
from exporter.pricing.history import PriceHistory  # noqa: E402

ACCOUNT = "bench"
CURRENCIES = ("TRY", "USDT")
TARGET_FULL_S = 1.0
TARGET_APPEND_MS = 10.0
TARGET_COMMAND_S = 2.0


def make_transfers(count: int, span_ms: int, seed: int) -> list[Transfer]:
    """TRY deposits (a large first one, so the trades have money), some withdrawals, a few BTC moves."""
    rng = random.Random(seed)
    out = [Transfer("fiat", 1, T0 - 60_000, "deposit", "TRY", Decimal(500_000_000))]
    for n in range(2, count + 1):
        when = T0 + rng.randrange(span_ms)
        asset = "BTC" if rng.random() < 0.2 else "TRY"
        deposit = rng.random() < 0.7
        quantity = (
            Decimal(rng.randint(1, 100)) / 100 if asset == "BTC" else Decimal(rng.randint(1000, 200_000))
        )
        kind = "crypto" if asset == "BTC" else "fiat"
        out.append(
            Transfer(
                kind,
                n,
                when,
                "deposit" if deposit else "withdrawal",
                asset,
                quantity if deposit else -quantity,
            )
        )
    return out


def fill_price_cache(ledger: Ledger, trades: list[Trade], hours: int) -> None:
    """Every pair's hourly close over the history, marked as fetched, as the sync would leave it."""
    first = (T0 - 60_000) // 1000 // HOUR * HOUR - HOUR
    last: dict[str, Decimal] = {}
    for trade in trades:
        last.setdefault(trade.base + trade.quote, trade.price)
    for base, quote, start in PAIRS:
        pair = base + quote
        closes = [
            (first + h * HOUR, (start * Decimal(1000 + (h % 41) - 20) / 1000)) for h in range(hours + 3)
        ]
        ledger.prices.put(pair, HOURLY, closes)
        ledger.set_state(f"prices:{HOURLY}:{pair}", f"{first}:{first + (hours + 3) * HOUR}")


def old_recompute(ledger: Ledger, prices: PriceHistory, method: CostMethod, now_ms: int) -> None:
    """What every change cost before the replay was kept: the history read and replayed in full, a
    30-day chunk at a time, with its unit value (the code of revalue.py before, prices cached)."""
    tracks = [UnitTrack(currency, prices.price_at) for currency in CURRENCIES]

    def records():  # type: ignore[no-untyped-def]
        for since, until in chunks(ledger, ACCOUNT, now_ms):
            trades = ledger.trades(ACCOUNT, since, until)
            transfers = ledger.transfers(ACCOUNT, since, until)
            prices.prefetch(prices.needs(trades, transfers, CURRENCIES), now_ms / 1000)
            for record in order([*trades, *transfers]):
                for track in tracks:
                    track.apply(record)
            yield trades, transfers

    compute_chunks(records(), CURRENCIES, prices.price_at, method)


def timed(fn: Callable[..., object], *args: object) -> float:
    """Seconds one call of fn(*args) takes."""
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def command(storage: Path, source: Path, *args: str) -> tuple[float, int, int]:
    """(wall s, peak RSS KiB, output bytes) of `python -m exporter ledger ...` on the benchmark ledger,
    with the exporter package of the checkout at `source`."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    env.pop("BTCTURK_CONFIG_FILE", None)
    argv = [sys.executable, "-c", _MEASURED, "ledger", *args, "--storage.path", str(storage.resolve())]
    started = time.perf_counter()
    # Run from `source`: `python -c` puts the working directory first on sys.path, so started inside
    # another checkout, that checkout's package would be measured, not the one at `source`.
    done = subprocess.run(argv, cwd=source, env=env, capture_output=True, check=False, timeout=600)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ledger {' '.join(args)} failed: {done.stderr.decode()[-500:]}")
    peak = int(done.stderr.decode().strip().splitlines()[-1])
    return wall, peak, len(done.stdout)


# The command in a child that reports its own peak RSS on stderr's last line; sockets refused, so a
# price the cache lacks cannot be fetched behind the benchmark's back.
_MEASURED = """
import socket, sys
def refused(*a, **k):
    raise OSError("benchmark: no network")
socket.socket.connect = refused
from exporter.cli import main
sys.argv = ["btcturk-exporter", *sys.argv[1:]]
try:
    code = main()
finally:
    with open("/proc/self/status", encoding="ascii") as status:  # VmHWM: this process's own peak
        print(next(line.split()[1] for line in status if line.startswith("VmHWM")), file=sys.stderr)
sys.exit(code)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--transfers", type=int, default=1_500)
    parser.add_argument("--appends", type=int, default=100, help="new records fed on, one at a time")
    parser.add_argument("--keep", help="write the ledger into this directory and keep it")
    parser.add_argument("--profile", choices=COST_METHODS, help="print a cProfile of one full replay")
    parser.add_argument(
        "--peer-source",
        type=Path,
        help="another checkout (e.g. main's) to run the commands with too, as the peer",
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the replays' shortfall warnings, once per replay

    print(f"btcturk-exporter replay benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"machine: {os.cpu_count()} CPUs, Linux {platform.release()}, CPython {platform.python_version()},"
        f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    trades = list(make_trades(args.trades, seed=1))
    span_ms = trades[-1].timestamp_ms - T0
    transfers = make_transfers(args.transfers, span_ms, seed=2)
    with tempfile.TemporaryDirectory() as scratch:
        storage = Path(args.keep or scratch)
        for suffix in ("", "-wal", "-shm"):
            Path(str(storage / "ledger.db") + suffix).unlink(missing_ok=True)
        with Ledger.open(storage) as ledger:
            for i in range(0, len(trades), 1000):
                ledger.upsert_trades(ACCOUNT, trades[i : i + 1000])
            ledger.upsert_transfers(ACCOUNT, transfers)
            ledger.set_state(origin_key(ACCOUNT), str(T0 - 60_000))
            fill_price_cache(ledger, trades, span_ms // 1000 // HOUR + 2)
            del trades
            now_ms = T0 + span_ms + 60_000
            print(
                f"\n{args.trades:,} trades over {len(PAIRS)} pairs and {args.transfers:,} transfers,"
                f" {span_ms / 86_400_000:.0f} days; valued in {' and '.join(CURRENCIES)}; prices cached"
            )
            prices = PriceHistory(ledger, lambda *_: ())
            prices.set_pairs((base, quote) for base, quote, _ in PAIRS)
            rss_before, _ = rss_kib()
            full_rows(ledger, prices, now_ms, args.profile)
            append_rows(ledger, prices, now_ms, args.appends)
            rss_after, peak = rss_kib()
        print("\nCommands (python -m exporter ledger ..., offline on that ledger, prices from its cache)")
        when = time.strftime("%Y-%m-%d", time.gmtime((T0 + span_ms // 2) / 1000))
        for what in (["report", "--period", "month", "--format", "csv"], ["holdings", "--at", when]):
            for label, source in (("", ROOT), ("  peer: ", args.peer_source)):
                if source is None:
                    continue
                wall, kib, size = command(storage, source, *what)
                print(
                    f"  {label}ledger {' '.join(what):38} {wall:5.2f} s  target < {TARGET_COMMAND_S:g} s:"
                    f" {verdict(wall < TARGET_COMMAND_S)};  peak RSS {kib / 1024:.1f} MiB; {size:,} bytes out"
                )
    print(
        f"\nResident size of this process: {rss_before / 1024:.1f} MiB before the replays,"
        f" {rss_after / 1024:.1f} MiB after, peak {peak / 1024:.1f} MiB"
    )


def read_all(ledger: Ledger, now_ms: int) -> None:
    """The history read as a full replay reads it, a chunk at a time, and nothing else."""
    for since, until in chunks(ledger, ACCOUNT, now_ms):
        order([*ledger.trades(ACCOUNT, since, until), *ledger.transfers(ACCOUNT, since, until)])


def full_rows(ledger: Ledger, prices: PriceHistory, now_ms: int, profile: str | None) -> None:
    print("\nFull replay (read a 30-day chunk at a time, prices looked up, cost basis and unit value)")
    read = min(timed(read_all, ledger, now_ms) for _ in range(3))
    print(f"  reading the history alone (30-day chunks, ordered): {read:.2f} s")
    print(
        f"  {'method':8} {'read + replay':>14} {'replay alone':>13} {'before (peer)':>14}"
        f" {CURRENCIES[0] + ' alone':>10}  target"
    )
    records = order([*ledger.trades(ACCOUNT), *ledger.transfers(ACCOUNT)])
    for method in COST_METHODS:
        settings = ActivitySettings(currencies=CURRENCIES, cost_basis=method)
        best = min(
            timed(revalue, ledger, prices, SyncHealth(ACCOUNT), settings, now_ms / 1000, now_ms)
            for _ in range(3)
        )
        # The issue's own measure (benchmarks/ledger.py) values in one currency: the same full replay
        # valued in the first currency only, beside the default two.
        single = ActivitySettings(currencies=CURRENCIES[:1], cost_basis=method)
        one = min(
            timed(revalue, ledger, prices, SyncHealth(ACCOUNT), single, now_ms / 1000, now_ms)
            for _ in range(3)
        )
        alone = min(timed(ReplayState(CURRENCIES, prices.price_at, method).feed, records) for _ in range(3))
        peer = min(timed(old_recompute, ledger, prices, method, now_ms) for _ in range(2))
        print(
            f"  {method:8} {best:12.2f} s {alone:11.2f} s {peer:12.2f} s {one:8.2f} s  < {TARGET_FULL_S:g} s:"
            f" {verdict(best < TARGET_FULL_S)}"
        )
        if profile == method:
            health = SyncHealth(ACCOUNT)
            cProfile.runctx(
                "revalue(ledger, prices, health, settings, now_ms / 1000, now_ms)",
                globals(),
                locals(),
                "/tmp/replay.prof",
            )
            pstats.Stats("/tmp/replay.prof").sort_stats("tottime").print_stats(25)


def append_rows(ledger: Ledger, prices: PriceHistory, now_ms: int, appends: int) -> None:
    print(f"\nOne new record, fed on ({appends} appends of a trade after the newest, one at a time)")
    newest = max(ledger.trades(ACCOUNT), key=lambda t: t.timestamp_ms)
    for method in COST_METHODS:
        settings = ActivitySettings(currencies=CURRENCIES, cost_basis=method)
        health = SyncHealth(ACCOUNT)
        revalue(ledger, prices, health, settings, now_ms / 1000, now_ms)
        kept = health.replay
        times = []
        for _ in range(appends):
            newest = newest._replace(id=newest.id + 1, timestamp_ms=newest.timestamp_ms + 1000)
            ledger.upsert_trades(ACCOUNT, [newest])
            times.append(timed(revalue, ledger, prices, health, settings, now_ms / 1000, now_ms))
        assert health.replay is not None and kept is not None and health.replay.state is kept.state
        median = statistics.median(times) * 1000
        peer = timed(old_recompute, ledger, prices, method, now_ms) * 1000
        print(
            f"  {method:8} median {median:6.2f} ms, max {max(times) * 1000:6.2f} ms;"
            f" full recompute before {peer:7.0f} ms ({peer / median:,.0f}x);"
            f" target < {TARGET_APPEND_MS:g} ms: {verdict(median < TARGET_APPEND_MS)}"
        )


if __name__ == "__main__":
    main()
