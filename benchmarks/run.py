#!/usr/bin/env python3
"""Speed, size, memory and load figures for btcturk-exporter. A report, not a test: nothing here fails.

    python benchmarks/run.py [--quick] [--load-seconds 60] [--json out.json]

What it measures, at 20 accounts x 500 non-zero assets (about 50,000 series):

* scrape latency in process: `Renderer.scrape` against `prometheus_client.generate_latest` over the
  same series held as GaugeMetricFamily by a custom collector, in the same run;
* the render work a poll causes, and parsing one 500-asset balances response;
* the real exporter process, polling a simulator in another process (a live-sized market: 379 pairs,
  a ~110 kB ticker): start to first /metrics, resident size (after start, after the first poll,
  during and after 10,000 scrapes), scrape latency over HTTP (plain and gzip), and client_python's
  own HTTP server over the same series;
* the scrape Prometheus makes, the first after a poll changed the prices, in process, and 50
  scrapers at once after each of a series of price changes, over HTTP, rendering on publish (as the
  exporter does), on scrape (as it did) and with client_python's own server;
* a load test: 50 concurrent keep-alive scrapers for --load-seconds, in separate processes.

Every loop is bounded by a count or a deadline; child processes end with this one (stdin closed,
SIGTERM on exit, and SIGTERM from the kernel if this process is killed).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gzip
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # `python benchmarks/run.py` from a checkout, installed or not.
    sys.path.insert(0, str(ROOT))

ACCOUNTS = 20
ASSETS = 500
POLL_INTERVAL = "30s"  # 20 accounts need >= 10s under the 120 calls/minute per-IP budget
SEED = 1
LOAD_SCRAPERS = 50
# What Prometheus sends when it scrapes.
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "User-Agent": "Prometheus/2.53.0",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
TARGET_RATIO = 20.0
TARGET_MEDIAN_MS = 5.0
TARGET_BURST_P99_MS = 50.0
MIB = 1024 * 1024
PR_SET_PDEATHSIG = 1


# --- small helpers ---------------------------------------------------------------------------------


@dataclass
class Stats:
    """A latency sample summarised, in milliseconds."""

    n: int
    median: float
    p90: float
    p99: float
    mean: float
    min: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Stats:
        """Summarise durations given in seconds."""
        ms = sorted(s * 1000.0 for s in seconds)
        return cls(
            n=len(ms),
            median=statistics.median(ms),
            p90=percentile(ms, 0.90),
            p99=percentile(ms, 0.99),
            mean=statistics.fmean(ms),
            min=ms[0],
            max=ms[-1],
        )


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sample."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def timed(fn: Callable[[], object], runs: int, warmup: int = 1) -> list[float]:
    """Durations of `runs` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, VmHWM (kB) and Threads from /proc/<pid>/status."""
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


def rss_mib(pid: int | str = "self") -> float:
    """Resident set size in MiB."""
    return proc_status(pid)["VmRSS"] / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def die_with_parent() -> None:
    """In a child about to exec: get SIGTERM when this process dies, however it dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> dict[str, Any]:
    """Where the figures come from."""
    import prometheus_client

    import exporter

    cpu: dict[str, str] = {}
    mem_kb = 0
    with contextlib.suppress(OSError):
        # The first processor's block; a VM may name only the brand ("AMD EPYC"), so keep the rest too.
        for line in Path("/proc/cpuinfo").read_text().split("\n\n", 1)[0].splitlines():
            key, _, value = line.partition(":")
            cpu.setdefault(key.strip(), value.strip())
    model = cpu.get("model name", "unknown")
    details = ", ".join(
        f"{label} {cpu[key]}"
        for key, label in (
            ("vendor_id", "vendor"),
            ("cpu family", "family"),
            ("model", "model"),
            ("cpu MHz", "MHz"),
            ("cache size", "cache"),
        )
        if key in cpu
    )
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "cpu_details": details,
        "mem_gib": round(mem_kb / MIB, 1),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "prometheus_client": prometheus_client.__version__
        if hasattr(prometheus_client, "__version__")
        else _dist_version("prometheus_client"),
        "exporter": exporter.__version__,
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


# --- the data set ----------------------------------------------------------------------------------


def make_assets(seed: int, count: int = ASSETS) -> list[Any]:
    """`count` non-zero assets: every asset the simulator lists (priced ones included), then tokens."""
    from exporter.simulator import SimAsset, demo_assets

    rng = random.Random(seed)

    def amount() -> Decimal:
        # Up to 100,000 with the 16 fraction digits the API sends.
        return Decimal(rng.randrange(1, 10**21)).scaleb(-16)

    out = []
    listed = [(a.asset, a.name, a.precision) for a in demo_assets(seed)]
    tokens = ((f"TKN{i:03d}", f"Token {i}", 8) for i in range(count))
    for symbol, name, precision in [*listed, *tokens][:count]:
        locked = amount() if rng.random() < 0.25 else Decimal(0)
        request_fund = amount() / 100 if rng.random() < 0.05 else Decimal(0)
        out.append(SimAsset(symbol, name, amount(), locked, request_fund, precision=precision))
    return out


def account_keys(count: int = ACCOUNTS) -> list[tuple[str, str, str]]:
    """(name, public key, private key) of every benchmark account; the same in every process."""
    from exporter.simulator import generate_keypair

    return [(f"account{i:02d}", *generate_keypair(seed=i)) for i in range(1, count + 1)]


def start_simulator(accounts: int, assets: int) -> Any:
    """A simulator holding the benchmark accounts, with a balance limit that never gets in the way."""
    from exporter.simulator import Simulator

    sim = Simulator(
        host="127.0.0.1", port=0, seed=SEED, balance_limit=100_000, ticker_limit=100_000, market="live"
    )
    sim.start()
    for index, (_, public, private) in enumerate(account_keys(accounts), start=1):
        sim.add_account(public, private, make_assets(index, assets))
    return sim


# --- in process ------------------------------------------------------------------------------------


@dataclass
class Loaded:
    """The benchmark data, polled from a simulator the way the poller does it."""

    store: Any
    settings: Any
    raw_balances: bytes
    accounts: list[Any]


def load_in_process(accounts: int, assets: int) -> Loaded:
    """Poll a simulator once per account with the exporter's own client and fill a Store."""
    import requests

    from exporter.api.account import Account, Secret
    from exporter.api.client import BALANCES, Client
    from exporter.api.errors import REASONS
    from exporter.api.signing import auth_headers, decode_private_key
    from exporter.config.loader import Config
    from exporter.metrics.series import TICKER_FAILURE, Settings
    from exporter.poll.snapshot import SHARED, AccountSnapshot, PriceSnapshot, Store

    sim = start_simulator(accounts, assets)
    try:
        configured = [Account(n, pub, Secret(priv)) for n, pub, priv in account_keys(accounts)]
        config = Config(accounts=tuple(configured), api_url=sim.url, poll_interval=30.0)
        store = Store([a.name for a in configured], REASONS, [(SHARED, TICKER_FAILURE)])
        client = Client(sim.url, config.timeout, pool_size=4)
        store.set_clock_offset(client.sync_clock(lambda e, c: store.count_request(SHARED, e, c)))
        for account in configured:
            started = time.monotonic()
            balances = client.balances(account, lambda e, c, a=account.name: store.count_request(a, e, c))
            store.publish_balances(
                AccountSnapshot(account.name, balances, time.time()), time.monotonic() - started
            )
        tickers = client.ticker(lambda e, c: store.count_request(SHARED, e, c))
        store.publish_prices(PriceSnapshot(tickers, time.time()))
        first = configured[0]
        headers = auth_headers(
            first.public_key, decode_private_key(first.private_key.reveal()), client.now_ms()
        )
        response = requests.get(sim.url + BALANCES, headers=headers, timeout=10)
        response.raise_for_status()
        return Loaded(store, Settings.from_config(config), response.content, configured)
    finally:
        sim.stop()


def _rows_from_text(text: str) -> list[tuple[str, str, str, list[str], list[tuple[list[str], float]]]]:
    """(name, type, help, label names, samples) of every family in exposition text."""
    from prometheus_client.parser import text_string_to_metric_families

    rows = []
    for family in text_string_to_metric_families(text):
        labelnames = list(family.samples[0].labels) if family.samples else []
        samples = [([s.labels[k] for k in labelnames], s.value) for s in family.samples]
        rows.append((family.name, family.type, family.documentation, labelnames, samples))
    return rows


def _families(rows: Sequence[tuple[str, str, str, list[str], list[tuple[list[str], float]]]]) -> list[Any]:
    """GaugeMetricFamily (CounterMetricFamily for the few counters), as a client_python user builds them."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    out: list[Any] = []
    for name, kind, doc, labelnames, samples in rows:
        cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        family = cls(name, doc, labels=labelnames)
        for values, value in samples:
            family.add_metric(values, value)
        out.append(family)
    return out


class PrebuiltCollector:
    """Families built once per poll; a scrape only formats them (client_python's best case)."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterator[Any]:
        """Yield the prebuilt families."""
        yield from self.families


class PerScrapeCollector:
    """Families built from the data on every scrape, the usual shape of a custom collector."""

    def __init__(self, rows: list[tuple[str, str, str, list[str], list[tuple[list[str], float]]]]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Any]:
        """Build and yield every family."""
        yield from _families(self.rows)


def client_python_registry(collector: object) -> Any:
    """A registry like client_python's default one: the custom collector plus process/platform/GC."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.gc_collector import GCCollector
    from prometheus_client.platform_collector import PlatformCollector
    from prometheus_client.process_collector import ProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def repriced(tickers: Sequence[Any], step: int) -> tuple[Any, ...]:
    """Every ticker with its prices moved a little, as a new ticker poll brings them."""
    from dataclasses import replace

    factor = Decimal(1) + Decimal(step % 7 + 1).scaleb(-4)
    return tuple(replace(t, last=t.last * factor, bid=t.bid * factor, ask=t.ask * factor) for t in tickers)


def publish_price_change(store: Any, step: int) -> None:
    """What one ticker poll does to the store: count its request, then publish new prices."""
    from exporter.api.client import TICKER
    from exporter.poll.snapshot import SHARED, PriceSnapshot

    old = store.view().prices
    store.count_request(SHARED, TICKER, "200")
    store.publish_prices(PriceSnapshot(repriced(old.tickers, step), time.time()))


def bench_in_process(loaded: Loaded, quick: bool) -> dict[str, Any]:
    """Renderer.scrape against generate_latest over the same series, plus the render cost of a poll."""
    from dataclasses import replace

    from prometheus_client import generate_latest

    from exporter.api.client import BALANCES
    from exporter.metrics.renderer import Renderer
    from exporter.poll.snapshot import AccountSnapshot

    store, settings = loaded.store, loaded.settings
    start = time.perf_counter()
    renderer = Renderer(settings, store.view)
    # As the exporter runs: rendering happens on the thread that publishes (here, this one).
    renderer.attach(store)
    cold_render = time.perf_counter() - start
    start = time.perf_counter()
    plain = renderer.scrape(False)
    cold_plain = time.perf_counter() - start
    start = time.perf_counter()
    gz = renderer.scrape(True)
    cold_gzip = time.perf_counter() - start
    text = plain.decode()
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    assert gzip.decompress(gz).count(b"\n") >= series, "gzip and plain scrapes disagree"

    n_fast = 300 if quick else 2000
    ours_plain = Stats.of(timed(lambda: renderer.scrape(False), n_fast, warmup=20))
    ours_gzip = Stats.of(timed(lambda: renderer.scrape(True), n_fast, warmup=20))
    live = Stats.of(timed(lambda: renderer.live(False), n_fast, warmup=20))
    live_read = Stats.of(
        timed(lambda: generate_latest(renderer.live_metrics.registry), n_fast // 4, warmup=5)
    )

    expo = renderer.exposition(False).decode()
    rows = _rows_from_text(expo)
    prebuilt = client_python_registry(PrebuiltCollector(_families(rows)))
    per_scrape = client_python_registry(PerScrapeCollector(rows))
    n_slow = 7 if quick else 30
    theirs = timed(lambda: generate_latest(prebuilt), n_slow, warmup=2)
    their_text = generate_latest(prebuilt)
    their_series = sum(1 for line in their_text.splitlines() if line and not line.startswith(b"#"))
    theirs_built = timed(lambda: generate_latest(per_scrape), max(5, n_slow // 2), warmup=1)
    theirs_gzip = timed(lambda: gzip.compress(generate_latest(prebuilt)), max(3, n_slow // 3), warmup=1)

    # The scrape Prometheus actually makes: the first one after a poll changed the prices. The render
    # runs in publish_prices, on the publishing thread; the scrape after it is timed on its own.
    n_change = 10 if quick else 40
    publish, first_plain, first_gzip = [], [], []
    for step in range(n_change):
        start = time.perf_counter()
        publish_price_change(store, step)
        publish.append(time.perf_counter() - start)
        store.count_request("", BALANCES, "200")  # another poll's API call lands meanwhile
        gzipped = step % 2 == 1
        start = time.perf_counter()
        renderer.scrape(gzipped)
        (first_gzip if gzipped else first_plain).append(time.perf_counter() - start)

    # Render work caused by polls: everything from nothing, and one account's new snapshot.
    cold = []
    for _ in range(2 if quick else 5):
        fresh = Renderer(settings, store.view)
        start = time.perf_counter()
        fresh.exposition(False)
        fresh.exposition(True)
        cold.append(time.perf_counter() - start)
    repoll, changed = [], []
    view = store.view()
    for name in list(view.accounts)[: 5 if quick else ACCOUNTS]:
        old = store.view().snapshots[name]
        start = time.perf_counter()
        store.publish_balances(AccountSnapshot(name, old.balances, time.time()), 0.1)
        repoll.append(time.perf_counter() - start)
        first = old.balances[0]
        moved = (replace(first, free=first.free + 1, balance=first.balance + 1), *old.balances[1:])
        start = time.perf_counter()
        store.publish_balances(AccountSnapshot(name, moved, time.time()), 0.1)
        changed.append(time.perf_counter() - start)

    theirs_stats = Stats.of(theirs)
    first_plain_stats = Stats.of(first_plain)
    return {
        "series": series,
        "client_python_series": their_series,
        "plain_bytes": len(plain),
        "gzip_bytes": len(gz),
        "client_python_plain_bytes": len(their_text),
        "attach_render_ms": cold_render * 1000,
        "first_scrape_plain_ms": cold_plain * 1000,
        "first_scrape_gzip_ms": cold_gzip * 1000,
        "renderer_plain": asdict(ours_plain),
        "renderer_gzip": asdict(ours_gzip),
        "live_part": asdict(live),
        "live_read": asdict(live_read),
        "generate_latest_prebuilt": asdict(theirs_stats),
        "generate_latest_built_per_scrape": asdict(Stats.of(theirs_built)),
        "generate_latest_gzip9": asdict(Stats.of(theirs_gzip)),
        "ratio_plain": theirs_stats.median / ours_plain.median,
        "ratio_gzip": Stats.of(theirs_gzip).median / ours_gzip.median,
        "publish_price_change": asdict(Stats.of(publish)),
        "scrape_after_price_change_plain": asdict(first_plain_stats),
        "scrape_after_price_change_gzip": asdict(Stats.of(first_gzip)),
        "ratio_after_price_change": theirs_stats.median / first_plain_stats.median,
        "render_all_accounts": asdict(Stats.of(cold)),
        "render_one_account_repoll": asdict(Stats.of(repoll)),
        "render_one_account_changed": asdict(Stats.of(changed)),
        "exposition_text": expo,
    }


def bench_parsing(raw: bytes, quick: bool) -> dict[str, Any]:
    """parse_balances on one 500-asset answer, with and without json.loads."""
    from exporter.api.parsing import parse_balances

    payload = json.loads(raw)
    n = 50 if quick else 300
    loads = Stats.of(timed(lambda: json.loads(raw), n, warmup=3))
    parse = Stats.of(timed(lambda: parse_balances(payload), n, warmup=3))
    both = Stats.of(timed(lambda: parse_balances(json.loads(raw)), n, warmup=3))
    return {
        "assets": len(payload["data"]),
        "body_bytes": len(raw),
        "json_loads": asdict(loads),
        "parse_balances": asdict(parse),
        "both": asdict(both),
    }


# --- child processes -------------------------------------------------------------------------------


def child_simulator(accounts: int, assets: int) -> int:
    """Hidden mode: serve the benchmark simulator until stdin closes."""
    sim = start_simulator(accounts, assets)
    print(json.dumps({"url": sim.url}), flush=True)
    sys.stdin.read()
    sim.stop()
    return 0


def child_client_python(path: str) -> int:
    """Hidden mode: serve the exposition at `path` with client_python's own HTTP server until stdin closes."""
    from prometheus_client import start_http_server

    rows = _rows_from_text(Path(path).read_text(encoding="utf-8"))
    registry = client_python_registry(PrebuiltCollector(_families(rows)))
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    print(json.dumps({"port": server.server_port}), flush=True)
    sys.stdin.read()
    server.shutdown()
    return 0


@contextlib.contextmanager
def child(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """Run this script in a hidden mode; yields the process and the JSON line it printed first."""
    proc = subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=die_with_parent,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child {args} exited with {proc.wait(10)}")
        yield proc, json.loads(line)
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- HTTP ------------------------------------------------------------------------------------------


class Scraper:
    """One keep-alive HTTP/1.1 connection that scrapes like Prometheus."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None
        self.connects = 0

    def get(self, path: str, gzipped: bool) -> tuple[int, str, bytes]:
        """(status, Content-Encoding, body) of one GET; reconnects when the server closed the connection."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self.connects += 1
        headers = dict(PROMETHEUS_HEADERS)
        headers["Accept-Encoding"] = "gzip" if gzipped else "identity"
        try:
            self.conn.request("GET", path, headers=headers)
            response = self.conn.getresponse()
            body = response.read()
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, response.getheader("Content-Encoding", ""), body

    def close(self) -> None:
        """Drop the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def scrape_series(port: int, count: int, gzip_too: bool = True) -> tuple[list[float], list[float], int]:
    """`count` sequential scrapes on one connection, alternating plain and gzip; (plain, gzip, errors)."""
    scraper = Scraper(port)
    plain: list[float] = []
    gz: list[float] = []
    errors = 0
    for i in range(count):
        gzipped = gzip_too and i % 2 == 1
        start = time.perf_counter()
        try:
            status, encoding, body = scraper.get("/metrics", gzipped)
        except (OSError, http.client.HTTPException):
            errors += 1
            continue
        elapsed = time.perf_counter() - start
        if status != 200 or (encoding == "gzip") != gzipped or not body:
            errors += 1
            continue
        (gz if gzipped else plain).append(elapsed)
    scraper.close()
    return plain, gz, errors


def http_sizes(port: int) -> dict[str, Any]:
    """Sizes of a plain and a gzip scrape, checked to carry the same series."""
    scraper = Scraper(port)
    status, encoding, plain = scraper.get("/metrics", False)
    status_gz, encoding_gz, gz = scraper.get("/metrics", True)
    scraper.close()
    unzipped = gzip.decompress(gz)
    return {
        "plain_bytes": len(plain),
        "gzip_bytes": len(gz),
        "plain_ok": status == 200 and encoding == "",
        "gzip_ok": status_gz == 200 and encoding_gz == "gzip",
        "same_series": unzipped.count(b"\nbtcturk_") == plain.count(b"\nbtcturk_"),
    }


# --- the load test ---------------------------------------------------------------------------------


def load_worker(port: int, threads: int, seconds: float, gzipped: bool, barrier: Any, results: Any) -> None:
    """One load-generator process: `threads` keep-alive scrapers until the shared deadline."""
    go = threading.Event()
    ready = threading.Barrier(threads + 1)
    out: list[dict[str, Any]] = []
    lock = threading.Lock()
    deadline = [0.0]

    def scrape_loop() -> None:
        scraper = Scraper(port, timeout=30)
        latencies: list[float] = []
        errors: list[str] = []
        received = 0
        checked = 0
        with contextlib.suppress(OSError):
            scraper.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            scraper.conn.connect()
            scraper.connects = 1
        ready.wait()
        go.wait()
        while time.monotonic() < deadline[0]:
            start = time.perf_counter()
            try:
                status, encoding, body = scraper.get("/metrics", gzipped)
            except (OSError, http.client.HTTPException) as exc:
                errors.append(type(exc).__name__)
                continue
            elapsed = time.perf_counter() - start
            ok = status == 200 and (encoding == "gzip") == gzipped and len(body) > 0
            if ok and gzipped and len(latencies) % 200 == 0:
                # Now and then, check the whole gzip stream (decompressing every one would eat the CPU).
                ok = b"btcturk_up{" in gzip.decompress(body)
                checked += 1
            if not ok:
                errors.append(f"HTTP {status} {encoding!r} {len(body)} bytes")
                continue
            latencies.append(elapsed)
            received += len(body)
        scraper.close()
        with lock:
            out.append(
                {
                    "latencies": latencies,
                    "errors": errors,
                    "bytes": received,
                    "connects": scraper.connects,
                    "checked": checked,
                }
            )

    pool = [threading.Thread(target=scrape_loop, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    ready.wait()
    barrier.wait()
    cpu0 = time.process_time()
    start = time.monotonic()
    deadline[0] = start + seconds
    go.set()
    for thread in pool:
        thread.join(seconds + 60)
    end = time.monotonic()
    results.put(
        {
            "latencies": [x for r in out for x in r["latencies"]],
            "errors": [e for r in out for e in r["errors"]],
            "bytes": sum(r["bytes"] for r in out),
            "connects": sum(r["connects"] for r in out),
            "checked": sum(r["checked"] for r in out),
            "finished_threads": len(out),
            "elapsed": end - start,
            "cpu": time.process_time() - cpu0,
        }
    )


def load_test(
    pid: int, port: int, seconds: float, scrapers: int, procs: int, gzipped: bool
) -> dict[str, Any]:
    """`scrapers` concurrent keep-alive scrapers spread over `procs` processes, for `seconds`."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs + 1)
    results = ctx.Queue()
    shares = [scrapers // procs + (1 if i < scrapers % procs else 0) for i in range(procs)]
    workers = [
        ctx.Process(target=load_worker, args=(port, n, seconds, gzipped, barrier, results), daemon=True)
        for n in shares
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=60)
    cpu0 = cpu_seconds(pid)
    start = time.monotonic()
    peak_rss = 0.0
    peak_threads = 0
    trace: list[float] = []
    # Sample the exporter while the load runs; keep one resident size every 10 s.
    while time.monotonic() < start + seconds:
        status = proc_status(pid)
        peak_rss = max(peak_rss, status["VmRSS"] / 1024)
        peak_threads = max(peak_threads, status["Threads"])
        if time.monotonic() - start >= 10 * len(trace):
            trace.append(status["VmRSS"] / 1024)
        time.sleep(min(0.5, max(0.0, start + seconds - time.monotonic())))
    parts = [results.get(timeout=seconds + 120) for _ in workers]
    wall = time.monotonic() - start
    exporter_cpu = cpu_seconds(pid) - cpu0
    for worker in workers:
        worker.join(10)
    latencies = [x for p in parts for x in p["latencies"]]
    errors = [e for p in parts for e in p["errors"]]
    elapsed = max(p["elapsed"] for p in parts)
    return {
        "seconds": seconds,
        "scrapers": scrapers,
        "processes": procs,
        "encoding": "gzip" if gzipped else "identity",
        "requests": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
        "throughput_rps": len(latencies) / elapsed,
        "mib_per_s": sum(p["bytes"] for p in parts) / elapsed / MIB,
        "latency": asdict(Stats.of(latencies)) if latencies else None,
        "connections_opened": sum(p["connects"] for p in parts),
        "gzip_bodies_verified": sum(p["checked"] for p in parts),
        "exporter_cpu_cores": exporter_cpu / wall,
        "loadgen_cpu_cores": sum(p["cpu"] for p in parts) / elapsed,
        "exporter_peak_rss_mib": peak_rss,
        "exporter_rss_trace_mib": trace,
        "exporter_peak_threads": peak_threads,
    }


# --- bursts: many scrapers at once, right after a price change ------------------------------------


def child_exporter_core(mode: str, accounts: int, assets: int) -> int:
    """Hidden mode: the exporter's store, renderer and HTTP server over the benchmark data.

    Each `change` line on stdin publishes new prices from a thread of its own, as the ticker poller
    does, and answers `done` once the publish returned. Mode `attached` renders on publish, as the
    exporter does; `on-scrape` leaves rendering to the first scrape, as it was before.
    """
    import gc

    from exporter.metrics.renderer import Renderer
    from exporter.web.server import start_server

    loaded = load_in_process(accounts, assets)
    renderer = Renderer(loaded.settings, loaded.store.view)
    if mode == "attached":
        renderer.attach(loaded.store)
    server, _ = start_server("127.0.0.1:0", renderer, loaded.store.view)
    renderer.scrape(True)
    # Full collections stop every thread; count them and their length, to tell them from other noise.
    pauses: list[float] = []
    started = [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(watch)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    step = 0
    for line in sys.stdin:
        if line.strip() == "stats":
            print(
                json.dumps({"gen2_collections": len(pauses), "gen2_ms": [x * 1000 for x in pauses]}),
                flush=True,
            )
            continue
        if line.strip() != "change":
            continue
        poller = threading.Thread(
            target=publish_price_change, args=(loaded.store, step), name="poll ticker", daemon=True
        )
        poller.start()
        poller.join()
        step += 1
        print("done", flush=True)
    server.shutdown()
    return 0


def burst_worker(port: int, threads: int, rounds: int, gzipped: bool, barrier: Any, results: Any) -> None:
    """One process of a burst: `threads` keep-alive scrapers, each scraping once per round, together."""
    go = threading.Barrier(threads + 1)
    done = threading.Barrier(threads + 1)
    latencies: list[float] = []
    errors: list[str] = []

    def scrape_rounds(index: int) -> None:
        scraper = Scraper(port, timeout=600)
        for round_no in range(rounds):
            go.wait(600)
            start = time.perf_counter()
            try:
                status, encoding, body = scraper.get("/metrics", gzipped)
            except (OSError, http.client.HTTPException) as exc:
                errors.append(type(exc).__name__)
            else:
                elapsed = time.perf_counter() - start
                ok = status == 200 and (encoding == "gzip") == gzipped and len(body) > 0
                if ok and index == 0 and round_no == 0:
                    ok = b"btcturk_up{" in (gzip.decompress(body) if gzipped else body)
                if ok:
                    latencies.append(elapsed)
                else:
                    errors.append(f"HTTP {status} {encoding!r} {len(body)} bytes")
            done.wait(600)
        scraper.close()

    pool = [threading.Thread(target=scrape_rounds, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait(120)
    for _ in range(rounds):
        barrier.wait(120)  # the change is published
        go.wait(600)
        done.wait(600)
        barrier.wait(600)  # every scrape of the round is back
    for thread in pool:
        thread.join(10)
    results.put({"latencies": latencies, "errors": errors})


def burst_test(
    port: int, rounds: int, scrapers: int, procs: int, gzipped: bool, before_round: Callable[[], None]
) -> dict[str, Any]:
    """`rounds` times: `before_round()`, then `scrapers` scrapers (in `procs` processes) scrape at once."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs + 1)
    results = ctx.Queue()
    shares = [scrapers // procs + (1 if i < scrapers % procs else 0) for i in range(procs)]
    workers = [
        ctx.Process(target=burst_worker, args=(port, n, rounds, gzipped, barrier, results), daemon=True)
        for n in shares
    ]
    for worker in workers:
        worker.start()
    barrier.wait(120)
    round_times = []
    for _ in range(rounds):
        before_round()
        barrier.wait(120)
        start = time.perf_counter()
        barrier.wait(600)
        round_times.append(time.perf_counter() - start)
    parts = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(10)
    latencies = [x for p in parts for x in p["latencies"]]
    errors = [e for p in parts for e in p["errors"]]
    return {
        "rounds": rounds,
        "scrapers": scrapers,
        "processes": procs,
        "encoding": "gzip" if gzipped else "identity",
        "latency": asdict(Stats.of(latencies)) if latencies else None,
        "round": asdict(Stats.of(round_times)),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
    }


def bench_bursts(args: argparse.Namespace, expo_text: str, progress: Callable[[str], None]) -> dict[str, Any]:
    """50 scrapers at once after each price change: rendering on publish, on scrape, and client_python."""
    out: dict[str, Any] = {}
    rounds = 5 if args.quick else 20
    for mode in ("attached", "on-scrape"):
        progress(f"burst: {LOAD_SCRAPERS} scrapers x {rounds} price changes, rendering {mode}")
        with child("--_exporter-core", mode, str(args.accounts), str(args.assets)) as (proc, info):
            assert proc.stdin is not None and proc.stdout is not None
            stdin, stdout = proc.stdin, proc.stdout

            def change(stdin: Any = stdin, stdout: Any = stdout) -> None:
                stdin.write("change\n")
                stdin.flush()
                if stdout.readline().strip() != "done":
                    raise RuntimeError("the exporter core did not publish")

            out[mode] = burst_test(info["port"], rounds, LOAD_SCRAPERS, args.load_procs, True, change)
            stdin.write("stats\n")
            stdin.flush()
            out[mode].update(json.loads(stdout.readline()))
    if not args.quick:
        progress(f"burst: {LOAD_SCRAPERS} scrapers once against client_python's start_http_server")
        with tempfile.NamedTemporaryFile("w", suffix=".prom", delete=False, encoding="utf-8") as f:
            f.write(expo_text)
        try:
            with child("--_client-python", f.name) as (_, cp):
                out["client_python"] = burst_test(
                    cp["port"], 1, LOAD_SCRAPERS, args.load_procs, True, lambda: None
                )
        finally:
            os.unlink(f.name)
    return out


# --- the exporter process --------------------------------------------------------------------------


def baseline_rss() -> dict[str, float]:
    """Resident size of a bare interpreter and of one that imported prometheus_client."""
    probe = "import re; print(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
    out = {}
    for label, code in (
        ("python", probe),
        ("python_prometheus_client", "import prometheus_client; " + probe),
    ):
        samples = [
            int(
                subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(3)
        ]
        out[label] = statistics.median(samples) / 1024
    return out


def write_config(directory: Path, api_url: str, accounts: int) -> Path:
    """The exporter's YAML configuration for the benchmark accounts."""
    lines = [f"api_url: {api_url}", f"poll_interval: {POLL_INTERVAL}", "accounts:"]
    for name, public, private in account_keys(accounts):
        lines += [f"  - name: {name}", f"    public_key: {public}", f"    private_key: {private}"]
    path = directory / "config.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def wait_until(condition: Callable[[], bool], timeout: float, interval: float, what: str) -> float:
    """Seconds until `condition()` held (exceptions count as not yet); raises after `timeout`."""
    start = time.perf_counter()
    deadline = start + timeout
    while time.perf_counter() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if condition():
                return time.perf_counter() - start
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def get(port: int, path: str) -> tuple[int, bytes]:
    """One GET on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def bench_process(
    args: argparse.Namespace, expo_text: str, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Everything measured against the real exporter process."""
    out: dict[str, Any] = {"baseline_rss_mib": baseline_rss()}
    with (
        child("--_simulator", str(args.accounts), str(args.assets)) as (_, sim),
        tempfile.TemporaryDirectory(prefix="btcturk-bench-") as tmp,
    ):
        config = write_config(Path(tmp), sim["url"], args.accounts)
        port = free_port()
        log_path = Path(tmp) / "exporter.log"
        argv = [
            sys.executable, "-m", "exporter", "--config.file", str(config),
            "--web.listen-address", f"127.0.0.1:{port}", "--log.format", "json",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("BTCTURK_")}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env.update(item.split("=", 1) for item in args.exporter_env)
        with log_path.open("wb") as log:
            start = time.perf_counter()
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, preexec_fn=die_with_parent
            )
        try:
            progress("exporter: waiting for the first /metrics")

            def first_metrics() -> bool:
                status, body = get(port, "/metrics")
                return status == 200 and b"btcturk_up{" in body

            wait_until(first_metrics, 30, 0.002, "the first /metrics")
            out["start_to_first_metrics_s"] = time.perf_counter() - start
            out["rss_after_start_mib"] = rss_mib(proc.pid)

            def all_polled() -> bool:
                status, body = get(port, "/metrics")
                ups = [line for line in body.splitlines() if line.startswith(b"btcturk_up{")]
                every_account = len(ups) == args.accounts and all(line.endswith(b" 1") for line in ups)
                return status == 200 and every_account and b"btcturk_ticker_last{" in body

            wait_until(all_polled, 60, 0.01, "every account and the ticker to be polled")
            out["start_to_all_polled_s"] = time.perf_counter() - start
            time.sleep(0.5)
            out["rss_after_first_poll_mib"] = rss_mib(proc.pid)
            out["http"] = http_sizes(port)

            progress(f"exporter: {args.scrapes} sequential scrapes")
            rss_trace = [out["rss_after_first_poll_mib"]]
            plain: list[float] = []
            gz: list[float] = []
            errors = 0
            step = max(1, args.scrapes // 10)
            for done in range(0, args.scrapes, step):
                p, g, e = scrape_series(port, min(step, args.scrapes - done))
                plain += p
                gz += g
                errors += e
                rss_trace.append(rss_mib(proc.pid))
            out["scrapes"] = args.scrapes
            out["scrape_errors"] = errors
            out["http_plain"] = asdict(Stats.of(plain))
            out["http_gzip"] = asdict(Stats.of(gz))
            out["rss_trace_mib"] = rss_trace
            out["rss_after_scrapes_mib"] = rss_trace[-1]

            progress("client_python's start_http_server over the same series")
            with tempfile.NamedTemporaryFile("w", suffix=".prom", delete=False, encoding="utf-8") as f:
                f.write(expo_text)
            try:
                with child("--_client-python", f.name) as (_, cp):
                    n = 6 if args.quick else 20
                    cp_plain, cp_gzip, cp_errors = scrape_series(cp["port"], 2 * n)
                    out["client_python_http_plain"] = asdict(Stats.of(cp_plain))
                    out["client_python_http_gzip"] = asdict(Stats.of(cp_gzip))
                    out["client_python_http_errors"] = cp_errors
            finally:
                os.unlink(f.name)

            progress(f"load: {LOAD_SCRAPERS} scrapers for {args.load_seconds:g}s")
            out["load"] = load_test(
                proc.pid,
                port,
                args.load_seconds,
                LOAD_SCRAPERS,
                args.load_procs,
                args.load_encoding == "gzip",
            )
            time.sleep(1.0)
            status = proc_status(proc.pid)
            out["rss_after_load_mib"] = status["VmRSS"] / 1024
            out["hwm_mib"] = status["VmHWM"] / 1024
            _, body = get(port, "/metrics")
            failures = [
                float(line.rsplit(b" ", 1)[1])
                for line in body.splitlines()
                if line.startswith(b"btcturk_poll_failures_total{")
            ]
            durations = [
                float(line.rsplit(b" ", 1)[1])
                for line in body.splitlines()
                if line.startswith(b"btcturk_poll_duration_seconds{")
            ]
            out["poll_failures"] = sum(failures)
            out["poll_duration_max_s"] = max(durations) if durations else None
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                out["exit_code"] = proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out["exit_code"] = proc.wait(5)
        out["exporter_warnings"] = sum(
            1 for line in log_path.read_text(errors="replace").splitlines() if "warn" in line.lower()
        )
    return out


# --- the report ------------------------------------------------------------------------------------


def _row(label: str, s: dict[str, Any], extra: str = "") -> str:
    return f"  {label:<46} {s['n']:>6}  {s['median']:>9.3f} {s['p90']:>9.3f} {s['p99']:>9.3f}" + (
        f"  {extra}" if extra else ""
    )


def _head(title: str) -> str:
    return f"\n{title}\n  {'':<46} {'n':>6}  {'median':>9} {'p90':>9} {'p99':>9}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(r: dict[str, Any]) -> str:
    """The printed report."""
    m, ip, parse = r["machine"], r["in_process"], r["parsing"]
    lines = [
        f"btcturk-exporter {m['exporter']} benchmark — {r['when']}" + (" (--quick)" if r["quick"] else ""),
        f"machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB RAM, Linux {m['kernel']}, "
        f"{m['python']}, prometheus_client {m['prometheus_client']}",
        f"CPU as /proc/cpuinfo names it: {m['cpu_model']} ({m['cpu_details']})",
        f"load average before the run {r['loadavg_before']}, after {r['loadavg_after']} "
        "(other work on the machine shows up here)",
        "",
        f"Data set: {r['accounts']} accounts x {r['assets']} non-zero assets, valued in TRY and USDT",
        f"  {ip['series']:,} series; exposition {ip['plain_bytes']:,} bytes plain, "
        f"{ip['gzip_bytes']:,} bytes gzip ({ip['plain_bytes'] / ip['gzip_bytes']:.1f}x smaller)",
        f"  client_python renders the same {ip['client_python_series']:,} series in "
        f"{ip['client_python_plain_bytes']:,} bytes",
    ]
    lines.append(_head("Scrape, in process (ms)"))
    lines += [
        _row("Renderer.scrape, plain", ip["renderer_plain"]),
        _row("Renderer.scrape, gzip", ip["renderer_gzip"]),
        _row("  of which live process/GC metrics (cached 1 s)", ip["live_part"]),
        _row("  one read of the live process/GC metrics", ip["live_read"]),
        _row("generate_latest, families prebuilt", ip["generate_latest_prebuilt"]),
        _row("generate_latest, families built per scrape", ip["generate_latest_built_per_scrape"]),
        _row("generate_latest + gzip.compress (its server)", ip["generate_latest_gzip9"]),
    ]
    ratio_ok = ip["ratio_plain"] >= TARGET_RATIO
    median_ok = ip["renderer_plain"]["median"] < TARGET_MEDIAN_MS
    lines += [
        f"  median ratio generate_latest / Renderer.scrape: {ip['ratio_plain']:,.0f}x plain, "
        f"{ip['ratio_gzip']:,.0f}x gzip   target >= {TARGET_RATIO:g}x: {_verdict(ratio_ok)}",
        f"  Renderer.scrape median {ip['renderer_plain']['median']:.3f} ms plain, "
        f"{ip['renderer_gzip']['median']:.3f} ms gzip   target < {TARGET_MEDIAN_MS:g} ms: "
        f"{_verdict(median_ok and ip['renderer_gzip']['median'] < TARGET_MEDIAN_MS)}",
    ]
    lines.append(
        _head(
            "After a price change: the scrape Prometheus makes, the first after a poll (ms); "
            "the render runs in publish_prices, on the poller's thread"
        )
    )
    after_ok = ip["scrape_after_price_change_plain"]["median"] < TARGET_MEDIAN_MS
    after_ok = after_ok and ip["scrape_after_price_change_gzip"]["median"] < TARGET_MEDIAN_MS
    lines += [
        _row("publish_prices (count + render, poller thread)", ip["publish_price_change"]),
        _row("first scrape after it, plain", ip["scrape_after_price_change_plain"]),
        _row("first scrape after it, gzip", ip["scrape_after_price_change_gzip"]),
        _row("generate_latest, families prebuilt (above)", ip["generate_latest_prebuilt"]),
        "  median ratio generate_latest / first scrape after a change: "
        f"{ip['ratio_after_price_change']:,.0f}x"
        f"   target median < {TARGET_MEDIAN_MS:g} ms: {_verdict(after_ok)}",
    ]
    lines.append(_head("Render work per poll, on the poller's thread (ms, plain text and gzip members)"))
    lines += [
        _row("all accounts from nothing (first poll)", ip["render_all_accounts"]),
        _row("one account re-polled, nothing changed", ip["render_one_account_repoll"]),
        _row("one account re-polled, one amount changed", ip["render_one_account_changed"]),
    ]
    lines.append(
        _head(f"Parsing one balances response ({parse['assets']} assets, {parse['body_bytes']:,} bytes; ms)")
    )
    lines += [
        _row("json.loads", parse["json_loads"]),
        _row("parse_balances", parse["parse_balances"]),
        _row("json.loads + parse_balances (one account)", parse["both"]),
        f"  per poll of all {r['accounts']} accounts: {parse['both']['median'] * r['accounts']:.1f} ms CPU",
    ]
    b = r.get("bursts")
    if b:
        first = b["attached"]
        lines.append(
            _head(
                f"{first['scrapers']} scrapers at once, each the first scrape after a price change, "
                "over HTTP "
                f"({first['encoding']}, keep-alive, {first['processes']} client processes; ms)"
            )
        )
        labels = {
            "attached": f"exporter, render on publish ({first['rounds']} changes)",
            "on-scrape": f"render on scrape, as before ({b['on-scrape']['rounds']} changes)",
            "client_python": "client_python start_http_server (1 round)",
        }
        for key, label in labels.items():
            if key in b and b[key]["latency"]:
                lat = b[key]["latency"]
                lines.append(_row(label, lat, f"max {lat['max']:.1f}, errors {b[key]['errors']}"))
        for key in ("attached", "on-scrape"):
            pauses = b[key]["gen2_ms"]
            lines.append(
                f"  {key}: {len(pauses)} full GC collections in the exporter during the {b[key]['rounds']} "
                f"rounds (publishes included), longest {max(pauses, default=0):.1f} ms"
            )
        p99 = (first["latency"] or {}).get("p99", math.inf)
        lines.append(
            f"  target p99 < {TARGET_BURST_P99_MS:g} ms with render on publish: "
            f"{_verdict(p99 < TARGET_BURST_P99_MS)}"
        )
    p = r.get("process")
    if p:
        base = p["baseline_rss_mib"]
        growth = p["rss_trace_mib"][-1] - p["rss_trace_mib"][1]
        noise = max(2.0, 0.03 * p["rss_trace_mib"][1])
        lines += [
            "",
            f"Exporter process (python -m exporter, {r['accounts']} accounts, poll_interval {POLL_INTERVAL}, "
            "simulator in another process)"
            + (f"\n  exporter environment: {' '.join(r['exporter_env'])}" if r["exporter_env"] else ""),
            f"  start to first /metrics with btcturk_up:   {p['start_to_first_metrics_s'] * 1000:,.0f} ms",
            f"  start to every account and ticker polled:  {p['start_to_all_polled_s'] * 1000:,.0f} ms "
            "(includes up to 1 s of deliberate start jitter)",
            "  resident size (VmRSS):",
            f"    python -c pass                           {base['python']:7.1f} MiB",
            f"    python -c 'import prometheus_client'     {base['python_prometheus_client']:7.1f} MiB",
            f"    exporter after start (no data yet)       {p['rss_after_start_mib']:7.1f} MiB",
            f"    exporter after the first poll            {p['rss_after_first_poll_mib']:7.1f} MiB",
            f"    {'exporter after ' + format(p['scrapes'], ',') + ' scrapes':<40} "
            f"{p['rss_after_scrapes_mib']:7.1f} MiB "
            f"({p['rss_after_scrapes_mib'] - p['rss_after_first_poll_mib']:+.1f} MiB)",
            "    after each tenth of the scrapes: " + " ".join(f"{x:.1f}" for x in p["rss_trace_mib"][1:]),
            f"    growth after the first tenth (caches warm): {growth:+.1f} MiB; "
            f"no growth beyond noise (< {noise:.1f} MiB): {_verdict(growth < noise)}",
            f"    exporter after the load test             {p['rss_after_load_mib']:7.1f} MiB "
            f"(peak during load {p['load']['exporter_peak_rss_mib']:.1f}, VmHWM {p['hwm_mib']:.1f})",
            "    every 10 s of the load test: "
            + " ".join(f"{x:.1f}" for x in p["load"]["exporter_rss_trace_mib"])
            + f" (polls land every {POLL_INTERVAL})",
        ]
        h = p["http"]
        lines.append(
            _head(
                f"Scrape over HTTP: {p['scrapes']:,} scrapes, plain and gzip alternating, one client, "
                "a new keep-alive connection every tenth (ms)"
            )
        )
        lines += [
            _row("exporter /metrics, plain", p["http_plain"], f"{h['plain_bytes']:,} B"),
            _row("exporter /metrics, gzip", p["http_gzip"], f"{h['gzip_bytes']:,} B"),
            _row("client_python start_http_server, plain", p["client_python_http_plain"]),
            _row("client_python start_http_server, gzip", p["client_python_http_gzip"]),
        ]
        ok = p["http_plain"]["median"] < TARGET_MEDIAN_MS and p["http_gzip"]["median"] < TARGET_MEDIAN_MS
        ratio = ip["generate_latest_prebuilt"]["median"] / p["http_plain"]["median"]
        ratio_gz = ip["generate_latest_gzip9"]["median"] / p["http_gzip"]["median"]
        lines += [
            f"  gzip served when asked: {'yes' if h['gzip_ok'] and h['same_series'] else 'NO'}; "
            f"errors: {p['scrape_errors']}",
            f"  HTTP median vs in-process generate_latest: {ratio:,.0f}x plain, {ratio_gz:,.0f}x gzip; "
            f"vs client_python's HTTP server: "
            f"{p['client_python_http_plain']['median'] / p['http_plain']['median']:,.0f}x plain, "
            f"{p['client_python_http_gzip']['median'] / p['http_gzip']['median']:,.0f}x gzip",
            f"  target median < {TARGET_MEDIAN_MS:g} ms over HTTP: {_verdict(ok)}; "
            f">= {TARGET_RATIO:g}x: {_verdict(min(ratio, ratio_gz) >= TARGET_RATIO)}",
        ]
        load = p["load"]
        lat = load["latency"] or {}
        lines += [
            "",
            f"Load: {load['scrapers']} concurrent keep-alive scrapers ({load['processes']} processes), "
            f"{load['encoding']}, {load['seconds']:g} s",
            f"  {load['requests']:,} scrapes, {load['throughput_rps']:,.0f} scrapes/s, "
            f"{load['mib_per_s']:,.0f} MiB/s; errors: {load['errors']}"
            + (f" {load['error_kinds']}" if load["errors"] else ""),
            f"  latency ms: p50 {lat.get('median', 0):.1f}, p90 {lat.get('p90', 0):.1f}, "
            f"p99 {lat.get('p99', 0):.1f}, max {lat.get('max', 0):.1f}",
            f"  CPU: exporter {load['exporter_cpu_cores']:.2f} cores, load generator "
            f"{load['loadgen_cpu_cores']:.2f} cores, of {m['nproc']}; connections opened "
            f"{load['connections_opened']}, gzip bodies fully verified {load['gzip_bodies_verified']}",
            f"  exporter threads at peak {load['exporter_peak_threads']}; poll failures over the whole run "
            f"{p['poll_failures']:.0f}, longest last poll {p['poll_duration_max_s'] or 0:.3f} s",
            "  note: the load generator is Python on the same CPUs; with 50 scrapers on "
            f"{m['nproc']} cores the exporter",
            "  and the scrapers share the CPU, so the figures are a floor for the exporter, and latency is",
            "  mostly queueing (50 requests in flight). Prometheus scrapes once per interval, not in a loop.",
            f"  exporter exit code after SIGTERM: {p['exit_code']}; "
            f"warnings in its log: {p['exporter_warnings']}",
        ]
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything and print the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 2,000 scrapes, 10 s of load")
    parser.add_argument("--load-seconds", type=float, help="load test duration (default 60, 10 with --quick)")
    parser.add_argument("--load-procs", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument("--load-encoding", choices=("gzip", "identity"), default="gzip")
    parser.add_argument(
        "--scrapes", type=int, help="sequential scrapes for latency and memory (default 10,000)"
    )
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    parser.add_argument("--assets", type=int, default=ASSETS)
    parser.add_argument("--no-process", action="store_true", help="in-process figures only")
    parser.add_argument(
        "--key", action="store_true", help="in-process figures and the bursts only (no exporter process)"
    )
    parser.add_argument(
        "--exporter-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the exporter process, e.g. MALLOC_ARENA_MAX=2 (repeatable)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    parser.add_argument("--_simulator", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--_client-python", dest="client_python", help=argparse.SUPPRESS)
    parser.add_argument("--_exporter-core", dest="exporter_core", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._simulator:
        return child_simulator(*args._simulator)
    if args.client_python:
        return child_client_python(args.client_python)
    if args.exporter_core:
        mode, accounts, assets = args.exporter_core
        return child_exporter_core(mode, int(accounts), int(assets))
    if any("=" not in item for item in args.exporter_env):
        parser.error("--exporter-env: expected KEY=VALUE")
    if args.load_seconds is None:
        args.load_seconds = 10.0 if args.quick else 60.0
    if args.scrapes is None:
        args.scrapes = 2000 if args.quick else 10_000

    def progress(message: str) -> None:
        print(f"... {message}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": args.quick,
        "accounts": args.accounts,
        "assets": args.assets,
        "exporter_env": args.exporter_env,
        "machine": machine(),
        "loadavg_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    progress("polling the simulator in process")
    loaded = load_in_process(args.accounts, args.assets)
    progress("in-process scrape and render")
    in_process = bench_in_process(loaded, args.quick)
    expo_text = in_process.pop("exposition_text")
    results["in_process"] = in_process
    progress("parsing")
    results["parsing"] = bench_parsing(loaded.raw_balances, args.quick)
    del loaded
    if not args.no_process:
        results["bursts"] = bench_bursts(args, expo_text, progress)
    if not (args.no_process or args.key):
        results["process"] = bench_process(args, expo_text, progress)
    results["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(report(results), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
