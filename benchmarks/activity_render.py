#!/usr/bin/env python3
"""Render cost of the activity families: many accounts, assets and valuation currencies.

    python benchmarks/activity_render.py [--accounts 20] [--assets 60] [--currencies 2]

A report, not a test: it prints its figures and fails nothing. The activity text is rendered once
per activity change or new balance body (cached between, plain and gzip), by the first scrape after
the change; every other scrape serves the cached bytes. No target is set yet.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from exporter.activity.state import ActivitySnapshot  # noqa: E402
from exporter.activity.store import ActivityStore  # noqa: E402
from exporter.api.parsing import Balance, Ticker  # noqa: E402
from exporter.ledger.costbasis import CostBasis, Position  # noqa: E402
from exporter.metrics.activity_render import render_activity  # noqa: E402
from exporter.poll.snapshot import AccountSnapshot  # noqa: E402
from exporter.pricing.valuation import market_for  # noqa: E402

DONE = MappingProxyType({"trade": True, "crypto": True, "fiat": True})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--assets", type=int, default=60)
    parser.add_argument("--currencies", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    currencies = ("TRY", "USDT", "BTC", "EUR")[: args.currencies]
    assets = [f"A{i}" for i in range(args.assets)]
    tickers = tuple(
        Ticker(f"{a}{q}", a, q, Decimal("1.5"), Decimal("1.4"), Decimal("1.6"), Decimal(10))
        for a in assets
        for q in currencies
    )
    index = market_for(tickers)
    positions = {a: Position(a, Decimal("2.5"), Decimal("3.25"), Decimal("0.5")) for a in assets}
    totals = {
        "trades": {(f"{a}TRY", side): 10 for a in assets for side in ("buy", "sell")},
        "trade_fees": {("TRY",): Decimal("1.25")},
        "trade_taxes": {("TRY",): Decimal("0.25")},
        "deposits": {(a,): Decimal(3) for a in assets},
        "withdrawals": {(a,): Decimal("0.5") for a in assets},
    }
    names = [f"acct{i}" for i in range(args.accounts)]
    store = ActivityStore(names, True, lambda _: totals)
    balances = {}
    for name in names:
        basis = {c: CostBasis(c, "average", positions, Decimal(100), 0, 0) for c in currencies}
        store.publish_snapshot(
            ActivitySnapshot(
                name,
                True,
                True,
                1.0,
                MappingProxyType({}),
                MappingProxyType({"trade": 1}),
                DONE,
                MappingProxyType(basis),
                1000,
            )
        )
        row = tuple(Balance(a, a, Decimal(2), Decimal(2), Decimal(0), Decimal(0), Decimal(0)) for a in assets)
        balances[name] = AccountSnapshot(name, row, 1.0)
    view = store.view()
    times = []
    text = ""
    for _ in range(args.rounds):
        started = time.perf_counter()
        text = render_activity(view, balances, index, currencies, "last")
        times.append(time.perf_counter() - started)
    print(f"accounts={args.accounts} assets={args.assets} currencies={args.currencies}")
    print(f"series={text.count(chr(10)) - 2 * text.count('# TYPE')} bytes={len(text)}")
    print(f"render: median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
