#!/usr/bin/env python3
"""Figures for valuation per ticker snapshot and for an oversized upstream body. A report, not a test.

    python benchmarks/client_values.py [--quick] [--before REV]

* valuation: 20 accounts x 500 assets, a 380-pair ticker (190 TRY- and 189 USDT-quoted pairs, as the
  live API lists), valued in TRY and USDT: the time to value every account from one new snapshot,
  with the snapshot indexed once (`market_for`) and, for comparison, re-indexed for every account;
* an oversized body: a loopback server streams 200 MB of balances answer; the peak resident size of
  a fresh process that asks for it once, and how long the call took to fail.

With `--before REV`, the same figures are taken from exporter/pricing/valuation.py and exporter/api/client.py
as they were at git revision REV, loaded beside today's modules.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import resource
import socket
import socketserver
import statistics
import subprocess
import sys
import threading
import time
import types
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from exporter.api.parsing import Balance, Ticker  # noqa: E402

ACCOUNTS = 20
ASSETS = 500
BIG_BODY = 200 * 1024 * 1024


def load_old(module: str, rev: str) -> types.ModuleType:
    """exporter/<module>.py (a path under exporter/, e.g. api/client) at git revision `rev`, as a module.

    Revisions before the package was split into subpackages (c603688) are not comparable: their modules
    import names from where those lived then.
    """
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:exporter/{module}.py"], capture_output=True, text=True
    )
    if shown.returncode != 0:
        raise SystemExit(f"--before {rev}: no exporter/{module}.py there (older than the package split?)")
    source = shown.stdout
    module = module.replace("/", "_")
    spec = importlib.util.spec_from_loader(f"old_{module}", loader=None)
    assert spec is not None
    old = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = old  # dataclasses look their module up there
    exec(compile(source, f"{rev}:exporter/{module}.py", "exec"), old.__dict__)
    return old


def market(seed: int = 1) -> tuple[Ticker, ...]:
    rng = random.Random(seed)
    bases = [f"C{i:03d}" for i in range(189)]
    rows = [Ticker("USDTTRY", "USDT", "TRY", Decimal("41.5"), Decimal("41.49"), Decimal("41.51"), Decimal(1))]
    for base in bases:
        usdt = Decimal(rng.randrange(1, 10**8)).scaleb(-4)
        for quote, price in (("TRY", usdt * Decimal("41.5")), ("USDT", usdt)):
            rows.append(Ticker(base + quote, base, quote, price, price * Decimal("0.999"), price, Decimal(1)))
    return tuple(rows)


def accounts(seed: int = 2) -> list[list[Balance]]:
    rng = random.Random(seed)
    symbols = ["TRY", "USDT"] + [f"C{i:03d}" for i in range(189)] + [f"T{i:03d}" for i in range(ASSETS)]
    out = []
    for _ in range(ACCOUNTS):
        rows = []
        for symbol in symbols[:ASSETS]:
            amount = Decimal(rng.randrange(1, 10**21)).scaleb(-16)
            rows.append(Balance(symbol, symbol, amount, amount, Decimal(0), Decimal(0), Decimal(0)))
        out.append(rows)
    return out


def time_it(fn: object, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - started)
    return out


def row(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    return f"  {label:<58} {len(ms):>4} {statistics.median(ms):>10.2f} {ms[int(0.9 * (len(ms) - 1))]:>10.2f}"


def bench_valuation(runs: int, before: str | None) -> None:
    from exporter.pricing import valuation

    books = accounts()
    currencies = ("TRY", "USDT")
    print(f"Valuing {ACCOUNTS} accounts x {ASSETS} assets in TRY and USDT from one new snapshot (ms)")
    print(f"  {'':<58} {'n':>4} {'median':>10} {'p90':>10}")

    def shared() -> None:
        tickers = market()  # a new tuple: a new snapshot, indexed once
        index = valuation.market_for(tickers)
        for balances in books:
            valuation.value_balances(balances, index, currencies, "bid")

    def per_account() -> None:
        tickers = market()
        for balances in books:
            valuation.value_balances(balances, valuation.Market.of(tickers), currencies, "bid")

    print(row("today, snapshot indexed once (market_for)", time_it(shared, runs)))
    print(row("today, ticker re-indexed for every account", time_it(per_account, runs)))
    if before:
        old = load_old("pricing/valuation", before)

        def old_way() -> None:
            tickers = market()
            for balances in books:
                old.value_balances(balances, old.index_tickers(tickers), currencies, "bid")

        print(row(f"at {before}: ticker indexed and routes found per account", time_it(old_way, runs)))


class _Flood(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                got = self.request.recv(4096)
                if not got:
                    return
                data += got
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            self.request.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
            piece = b" " * (1024 * 1024)
            frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            for _ in range(BIG_BODY // len(piece)):
                self.request.sendall(frame)
            tail = b'{"data":[],"success":true,"code":0}'
            self.request.sendall(f"{len(tail):x}\r\n".encode() + tail + b"\r\n0\r\n\r\n")
        except OSError:
            pass  # the client stopped reading, as it should


def child(url: str, rev: str | None) -> None:
    """One oversized call in this fresh process; prints seconds taken, peak RSS in MiB and the outcome."""
    from exporter.api.account import Account, Secret
    from exporter.simulator import generate_keypair

    if rev:
        client_module = load_old("api/client", rev)
    else:
        import exporter.api.client as client_module
    public, private = generate_keypair(seed=1)
    started = time.perf_counter()
    try:
        outcome = (
            f"returned {len(client_module.Client(url, 60.0).balances(Account('a', public, Secret(private))))}"
        )
    except Exception as exc:
        outcome = str(exc)
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{took:.2f}\t{peak:.0f}\t{outcome[:90]}")


def bench_big_body(before: str | None) -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Flood)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"\nA {BIG_BODY // (1024 * 1024)} MB balances body, one call in a fresh process")
    print(f"  {'':<28} {'seconds':>8} {'peak RSS MiB':>13}  outcome")
    runs = [("today", None)] + ([(f"at {before}", before)] if before else [])
    for label, rev in runs:
        args = [sys.executable, __file__, "--_child", url] + ([rev] if rev else [])
        out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=600).stdout.strip()
        took, peak, outcome = out.split("\t")
        print(f"  {label:<28} {took:>8} {peak:>13}  {outcome}")
    server.shutdown()
    server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--before", metavar="REV", help="also measure the code at this git revision")
    parser.add_argument("--_child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        child(args._child[0], args._child[1] if len(args._child) > 1 else None)
        return 0
    socket.setdefaulttimeout(None)
    bench_valuation(5 if args.quick else 20, args.before)
    bench_big_body(args.before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
