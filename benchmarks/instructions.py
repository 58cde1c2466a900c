#!/usr/bin/env python3
"""The cost basis in instructions, not seconds: this checkout beside a peer, counted by callgrind.

    python benchmarks/instructions.py --peer-source DIR [--trades 20000] [--jobs 2]

A report, not a test: it prints figures and fails nothing. On a shared VM the wall time of the same
code varies by half from one run to the next; the number of instructions it executes does not
(callgrind counts the same total twice with the other core loaded). Each workload runs in a child
`python` under `valgrind --tool=callgrind` with the package of one checkout, on a ledger that
checkout wrote itself (an older one may not open a newer file), and the instructions of the same
child stopped just before the measured call (imports, the ledger opened, the settings made) are
taken off:

* `baseline average`, `baseline fifo`: the issue's own measure (benchmarks/ledger.py): every trade
  read from the ledger and `compute()` in TRY, no transfers. Any checkout since the ledger has it,
  so a peer from before a change gives the ratio of the change on this measure;
* `full <method>`: activity/revalue.py's full replay, as benchmarks/replay.py times it (TRY and
  USDT, transfers, prices cached, unit value), for a peer that has revalue() with today's arguments;
* `report month`, `holdings`: `ledger report --period month` and `ledger holdings --at` (halfway
  through the history) as the command line runs them, offline, the output thrown away. The report
  runs up to now, so two runs on different days count different months; a peer in the same run
  counts the same ones.

Instructions are not time (cache misses and branch mispredictions cost cycles), but for the same
workload on two versions of the same Python code the ratio of one is close to the ratio of the other.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("average", "fifo", "lifo", "hifo")
WORKLOADS = (
    "baseline average",
    "baseline fifo",
    *(f"full {method}" for method in METHODS),
    "report month",
    "holdings",
)

# The child: `python -c CHILD SOURCE LEDGER_DIR WORKLOAD TRADES RUN`. It imports only what the workload
# needs, from SOURCE (put first on sys.path) and SOURCE/benchmarks, so each checkout runs its own code;
# RUN 0 stops before the measured call.
CHILD = r"""
import logging, sys
source, storage, workload, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
run = sys.argv[5] == "1"
sys.path[:0] = [source, source + "/benchmarks"]
logging.disable(logging.WARNING)
import exporter
assert exporter.__file__.startswith(source), exporter.__file__
from ledger import HOUR_MS, PAIRS, T0, hourly_prices, make_trades
from exporter.ledger.store import Ledger
ledger = Ledger.open(storage)
if workload == "make":
    trades = list(make_trades(count, seed=1))
    for at in range(0, count, 1000):
        ledger.upsert_trades("bench", trades[at : at + 1000])
    try:
        from replay import make_transfers, fill_price_cache
        from exporter.ledger.cursors import origin_key
        from exporter.pricing.candlecache import HOUR
    except ImportError:  # a checkout from before benchmarks/replay.py: the baseline only
        sys.exit(0)
    span = trades[-1].timestamp_ms - T0
    ledger.upsert_transfers("bench", make_transfers(1_500 * count // 100_000, span, seed=2))
    ledger.set_state(origin_key("bench"), str(T0 - 60_000))
    fill_price_cache(ledger, trades, span // 1000 // HOUR + 2)
elif workload.startswith("baseline"):
    from exporter.ledger.costbasis import compute
    closes = hourly_prices(count)
    def price_at(asset, currency, when_ms):
        return closes.get((asset, (when_ms - T0) // HOUR_MS)) if currency == "TRY" else None
    if run:
        compute(ledger.trades("bench"), [], "TRY", price_at, workload.split()[1])
elif workload.startswith("full"):
    from exporter.activity.revalue import revalue
    from exporter.activity.state import SyncHealth
    from exporter.config.activity_settings import ActivitySettings
    from exporter.pricing.history import PriceHistory
    prices = PriceHistory(ledger, lambda *_: ())
    prices.set_pairs((base, quote) for base, quote, _ in PAIRS)
    now_ms = T0 + count * 30_000 + 60_000
    settings = ActivitySettings(currencies=("TRY", "USDT"), cost_basis=workload.split()[1])
    if run:
        revalue(ledger, prices, SyncHealth("bench"), settings, now_ms / 1000, now_ms)
else:  # a command as `ledger` runs it, its output thrown away; the run stopped before has it imported
    import contextlib, io, time
    from exporter.cli import main
    ledger.close()
    halfway = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((T0 + count * 15_000) // 1000))
    argv = ["ledger", workload.split()[0], "--storage.path", storage, "--format", "csv"]
    argv += ["--period", workload.split()[1]] if workload.startswith("report") else ["--at", halfway]
    if run:
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(argv) == 0
"""


def child(source: Path, storage: Path, workload: str, trades: int, run: bool = True) -> list[str]:
    """The argv of the child running `workload` with `source`'s package on the ledger in `storage`."""
    flag = "1" if run else "0"
    return [sys.executable, "-c", CHILD, str(source), str(storage), workload, str(trades), flag]


def instructions(source: Path, storage: Path, workload: str, trades: int, run: bool) -> int | None:
    """What the child executes for `workload` with `source`'s package, up to the measured call or
    through it (`run`); None when it fails there."""
    with tempfile.TemporaryDirectory() as scratch:
        argv = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={scratch}/out",
            *child(source, storage, workload, trades, run),
        ]
        # Run from the scratch directory: `python -c` puts the working directory first on sys.path.
        done = subprocess.run(argv, cwd=scratch, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        return None
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-source", type=Path, required=True, help="another checkout to count too")
    parser.add_argument("--trades", type=int, default=20_000, help="callgrind runs some 50x slower")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    sources = {"this checkout": ROOT, "peer": args.peer_source.resolve()}
    with tempfile.TemporaryDirectory() as scratch:
        storages = {name: Path(scratch, str(n)) for n, name in enumerate(sources)}
        for name, source in sources.items():
            argv = child(source, storages[name], "make", args.trades)
            made = subprocess.run(argv, cwd=scratch, capture_output=True, text=True, check=False)
            if made.returncode != 0:
                raise SystemExit(f"{name} ({source}) could not write its ledger: {made.stderr[-500:]}")
        runs = [(name, workload, run) for name in sources for workload in WORKLOADS for run in (False, True)]

        def count(run: tuple[str, str, bool]) -> int | None:
            name, workload, through = run
            return instructions(sources[name], storages[name], workload, args.trades, through)

        with ThreadPoolExecutor(args.jobs) as pool:
            counts = dict(zip(runs, pool.map(count, runs), strict=True))
    print(f"btcturk-exporter instructions, {args.trades:,} trades; peer: {args.peer_source}")
    print(f"  {'workload':18} {'this checkout':>16} {'peer':>16}  ratio")
    for workload in WORKLOADS:
        ours, theirs = (_work(counts, name, workload) for name in sources)
        ratio = f"{ours / theirs:6.3f}" if ours is not None and theirs else "   n/a"
        print(f"  {workload:18} {_shown(ours):>16} {_shown(theirs):>16}  {ratio}")


def _work(counts: dict[tuple[str, str, bool], int | None], name: str, workload: str) -> int | None:
    """The measured call's instructions: the run through it less the run stopped before it."""
    total, base = counts[(name, workload, True)], counts[(name, workload, False)]
    return None if total is None or base is None else total - base


def _shown(count: int | None) -> str:
    return "n/a" if count is None else f"{count:,}"


if __name__ == "__main__":
    main()
