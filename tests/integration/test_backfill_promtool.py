"""A backfill file through the real `promtool tsdb create-blocks-from openmetrics`, read back in full.

promtool accepts a file and silently drops any sample that goes back in time, so "promtool exited 0" is
not enough: the blocks are dumped and every sample written must be there, with its value and time.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from decimal import Decimal as D
from pathlib import Path

from prometheus_client.openmetrics.parser import text_string_to_metric_families
from support import require_binary, routed

from exporter.api.records import Trade, Transfer
from exporter.backfill.timeline import AccountHistory, Plan, deltas
from exporter.backfill.writer import FAMILIES, backfill

H = 3_600_000
T0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z
DUMP_LINE = re.compile(r"^\{(.*)\} (\S+) (\d+)$")
Key = tuple[str, tuple[tuple[str, str], ...]]


def closes(base: str, quote: str, ms: int) -> D | None:
    hour = (ms - T0) // H
    return {
        ("BTC", "TRY"): D(2_000_000) + hour * 1500,
        ("USDT", "TRY"): D("34.25") + D(hour) / 100,
        ("ETH", "USDT"): D(2500) - hour,
    }.get((base, quote))


price_at = routed(closes, [("BTC", "TRY"), ("USDT", "TRY"), ("ETH", "USDT")])  # as the exporter routes


def histories() -> list[AccountHistory]:
    """Two accounts, two days of hourly steps, trades in three pairs (one USDT-quoted) and transfers."""
    trades = []
    for n in range(40):
        ms = T0 + n * 70 * 60_000 + 17
        if n % 4 == 3:
            trades.append(Trade(n, n, ms, "BTC", "TRY", "sell", D(2_000_000), D("-0.001"), D(-2), D("-0.36")))
        elif n % 4 == 2:
            trades.append(Trade(n, n, ms, "ETH", "USDT", "buy", D(2500), D("0.01"), D("-0.025"), D(0)))
        else:
            trades.append(Trade(n, n, ms, "USDT", "TRY", "buy", D(34), D(20), D("-0.68"), D("-0.12")))
    transfers = [
        Transfer("fiat", 1, T0 - H, "deposit", "TRY", D(100_000)),
        Transfer("crypto", 2, T0 + 2 * H, "deposit", "BTC", D("0.05")),
        Transfer("crypto", 3, T0 + 30 * H + 1, "withdrawal", "ETH", D("-0.02"), fee=D("-0.001")),
    ]
    # The balances now are what the records add up to, less 0.001 ETH missing (a transfer fee, say), so
    # both a consistent walk and a negative holding's cut reach the file.
    balances: dict[str, D] = {}
    for record in sorted([*trades, *transfers], key=lambda r: r.timestamp_ms):
        for asset, delta in deltas(record):
            balances[asset] = balances.get(asset, D(0)) + delta
    balances["ETH"] -= D("0.001")
    return [
        AccountHistory("main", balances, T0 + 48 * H, trades, transfers),
        AccountHistory(
            'fund "B"', {"TRY": D(5)}, T0 + 48 * H, [], [Transfer("fiat", 9, T0, "deposit", "TRY", D(5))]
        ),
    ]


def written_samples(text: str) -> dict[tuple[Key, int], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            samples[key, round(float(s.timestamp) * 1000)] = s.value
    return samples


def dumped_samples(dump: str) -> dict[tuple[Key, int], float]:
    samples = {}
    for line in dump.splitlines():
        match = DUMP_LINE.match(line)
        assert match, line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1)))
        labels = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in labels.items()}
        name = labels.pop("__name__")
        samples[(name, tuple(sorted(labels.items()))), int(match.group(3))] = float(match.group(2))
    return samples


def test_promtool_turns_the_file_into_blocks_holding_every_sample(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    path = tmp_path / "backfill.om"
    plan = Plan(T0, T0 + 48 * H, H, ("TRY", "USDT"), "fifo")
    with path.open("w", encoding="utf-8") as out:
        summary = backfill(out, histories(), plan, price_at)
    blocks = tmp_path / "blocks"
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(path), str(blocks)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (blocks / "wal").mkdir()  # `tsdb dump` opens the directory as a TSDB, which needs one
    dump = subprocess.run(
        [promtool, "tsdb", "dump", str(blocks)], capture_output=True, text=True, timeout=120, check=True
    ).stdout

    expected = written_samples(path.read_text(encoding="utf-8"))
    got = dumped_samples(dump)
    assert len(expected) == summary.samples > 1000
    # ETH's walk sits 0.001 below the ledger's own count, so its cost basis is left out too.
    assert {(n.code, n.asset) for n in summary.notices} == {
        ("negative_holding", "ETH"),
        ("partial_cost_basis", "ETH"),
    }
    assert {key[0] for key, _ in expected} >= {f.sample_name for f in FAMILIES}
    assert got.keys() == expected.keys(), "promtool dropped or invented samples"
    assert all(got[k] == expected[k] for k in expected)
    # Every counter the TSDB now holds only goes up.
    by_series: dict[Key, list[tuple[int, float]]] = {}
    for (key, ms), value in sorted(got.items()):
        by_series.setdefault(key, []).append((ms, value))
    counters = {k: v for k, v in by_series.items() if k[0].endswith("_total")}
    assert {k[0] for k in counters} == {
        "btcturk_trades_total",
        "btcturk_trade_fees_total",
        "btcturk_trade_taxes_total",
        "btcturk_deposits_total",
        "btcturk_withdrawals_total",
    }
    for key, series in counters.items():
        assert all(a[1] <= b[1] for a, b in itertools.pairwise(series)), key
    assert min(ms for _, ms in got) == T0 and max(ms for _, ms in got) == T0 + 47 * H
