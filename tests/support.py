"""Helpers shared by the tests: external binaries (required in CI, optional locally), waiting with a deadline,
parsed /metrics, exporter processes and their configs against the simulator, a Prometheus server holding
a backfilled past and live scrapes, the dashboards' panels and variables as Grafana resolves them, the
simulator's signing test vector and clock, and the renderer's inputs (balances, tickers, snapshots)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.api.parsing import Balance, Ticker
from exporter.api.signing import auth_headers, decode_private_key
from exporter.ledger.costbasis import PriceAt
from exporter.metrics.series import Settings
from exporter.poll.snapshot import AccountSnapshot, PriceSnapshot
from exporter.pricing.routes import price_of_route, table_of
from exporter.simulator import BALANCES_PATH, Simulator, demo_assets, generate_keypair
from exporter.simulator.ledger import History
from tools.grafana_query import substitute

ROOT = Path(__file__).resolve().parents[1]


def require_binary(name: str) -> str:
    """Return the path of `name`; skip the test locally when absent, fail it in CI (CI=true)."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found on PATH (apt-get install -y prometheus provides prometheus and promtool)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


# --- running the exporter as a user would ------------------------------------------------------


T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = "") -> T:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
        except Exception as exc:  # the condition may fail until the thing is up
            last_error = exc
        else:
            if result:
                return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}: {last_error}")


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse exposition text into {(sample name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def sample(metrics: dict, name: str, **labels: str) -> float | None:
    """The value of one sample, or None when absent."""
    return metrics.get((name, tuple(sorted(labels.items()))))


def samples(metrics: dict, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of one name, keyed by its labels."""
    return {labels: value for (n, labels), value in metrics.items() if n == name}


@dataclass
class ExporterProcess:
    """The exporter started as a user would, with its log captured."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0
    scheme: str = "http"
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_records(self) -> list[dict]:
        records = []
        for line in self.log_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"msg": line})
        return records

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.get(self.url + path, timeout=5, **kwargs)

    def metrics(self) -> dict:
        response = self.get("/metrics")
        response.raise_for_status()
        return parse_metrics(response.text)

    def wait_metrics(
        self, condition: Callable[[dict], object], timeout: float = 15.0, what: str = ""
    ) -> dict:
        """Scrape until `condition(metrics)` holds; return those metrics."""

        def check() -> dict | None:
            m = self.metrics()
            return m if condition(m) else None

        return wait_for(check, timeout, what=what)

    def terminate(self, timeout: float = 5.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def _environ() -> dict[str, str]:
    """The environment without BTCTURK_* variables. Copied again if it changed while being read: a
    thread starting exporters (test_faults.py runs cases at once) reads it while pytest's own thread
    sets and deletes PYTEST_CURRENT_TEST, and iterating os.environ then raises KeyError."""
    while True:
        try:
            return {k: v for k, v in os.environ.items() if not k.startswith("BTCTURK_")}
        except KeyError:
            continue


def start_exporter(
    tmp_path: Path,
    config: dict | None,
    *args: str,
    env: dict[str, str] | None = None,
    ready: bool = True,
) -> ExporterProcess:
    """Start `python -m exporter` on a free loopback port with `config` written to a file."""
    argv = [sys.executable, "-m", "exporter", "--web.listen-address", "127.0.0.1:0", "--log.format", "json"]
    if config is not None:
        path = tmp_path / "config.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        argv += ["--config.file", str(path)]
    argv += list(args)
    if "--demo" not in args and not any(a.startswith("--storage.path") for a in args):
        # Each exporter its own ledger: the default data/ would be shared by every test (and the repo).
        # (The demo's default is a temporary directory of its own.)
        argv += ["--storage.path", str(tmp_path / f"storage-{time.monotonic_ns()}")]
    log_path = tmp_path / f"exporter-{time.monotonic_ns()}.log"
    base_env = _environ()
    base_env.update(env or {})
    log_file = log_path.open("wb")
    proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=base_env)
    log_file.close()
    exporter = ExporterProcess(proc, log_path)

    def started() -> int | None:
        if proc.poll() is not None:
            raise AssertionError(f"exporter exited with {proc.returncode}:\n{exporter.log_text()}")
        for record in exporter.log_records():
            if record.get("msg") == "btcturk-exporter started":
                return int(record["port"])
        return None

    try:
        exporter.port = wait_for(started, 20, what="the exporter to start")
        if ready:
            wait_for(lambda: exporter.get("/ready").status_code == 200, 20, what="/ready")
    except BaseException:
        exporter.terminate()
        raise
    return exporter


def activity_config(
    sim: Simulator,
    accounts: Mapping[str, tuple[str, str]],
    *,
    since: str | None = "21d",
    interval: str | None = "1s",
    poll_interval: str = "1s",
    **activity: object,
) -> dict[str, Any]:
    """An exporter's config against `sim` for both hosts (the API and graph-api), with activity settings.

    `accounts` maps each account's name to its (public, private) keys; `activity` adds to the activity
    section. A setting given as None is left out, so the exporter's default holds.
    """
    settings = {"since": since, "interval": interval, **activity}
    return {
        "api_url": sim.url,
        "graph_api_url": sim.url,
        "poll_interval": poll_interval,
        "activity": {key: value for key, value in settings.items() if value is not None},
        "accounts": [{"name": n, "public_key": k[0], "private_key": k[1]} for n, k in accounts.items()],
    }


S = TypeVar("S", bound="Scraping")


class Scraping:
    """Scrapes /metrics in a thread while in a `with`, every `every` seconds: a subclass's `look` is one
    scrape and what it notes."""

    def __init__(self, exporter: ExporterProcess, every: float) -> None:
        self.exporter = exporter
        self.every = every
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self: S) -> S:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.look()

    def look(self) -> None:
        raise NotImplementedError


def write_config(directory: Path, text: str, name: str = "web.yml") -> str:
    """Write a config file (a web config unless named otherwise); its path."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- a real Prometheus holding a backfilled past and the live scrapes -----------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrometheusServer:
    """A `prometheus` process on a loopback port, restartable on the same data directory."""

    binary: str
    config: Path
    data: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.data}",
                 "--storage.tsdb.retention.time=10y", f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(ready, 60, interval=0.2, what="prometheus to be ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def api(self, path: str, **params: str) -> Any:
        """The `data` of an answer from /api/v1/<path>."""
        answer = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        answer.raise_for_status()
        return answer.json()["data"]

    def query(self, path: str, **params: str) -> list[dict]:
        """The `result` of /api/v1/<path> (path with its /api/v1 prefix)."""
        return list(self.api(path.removeprefix("/api/v1/"), **params)["result"])


@dataclass
class Joined:
    """A live exporter scraped by Prometheus, with the README's backfill loaded before its first scrape."""

    prometheus: PrometheusServer
    exporter: ExporterProcess
    stderr: str  # the backfill command's
    instance: str
    first_live_s: float  # the first live scrape
    backfill: Path  # the OpenMetrics file loaded
    scrape_s: float
    restarted_s: float  # Prometheus back up with the blocks: live scrapes without a break from here
    history: History  # the simulator's record of the account's trades and transfers


BACKFILL_KEYS = generate_keypair(seed=73)
BACKFILL_JOB = "btcturk"
# Longer than the 30-day picker, so it shows backfilled data only, and the 1-year one ends in it;
# a year of history would take the simulator, the sync and promtool minutes rather than seconds.
BACKFILL_HISTORY_DAYS = 40
# The demo account without its token that has no market: every holding priced, so the unit value
# and the returns have a value, past and present.
UNPRICED = "OLDTOKEN"


@contextmanager
def joined_stack(work: Path) -> Iterator[Joined]:
    """Simulator, exporter, Prometheus (scraping every second, evaluating rules.yml), then the backfill."""
    promtool, binary = require_binary("promtool"), require_binary("prometheus")
    with Simulator("127.0.0.1", 0, seed=5) as sim:
        priced = [a for a in demo_assets(6) if a.asset != UNPRICED]
        sim.add_account(*BACKFILL_KEYS, priced, history_days=BACKFILL_HISTORY_DAYS, seed=6)
        # The live unit value waits for two reconciled reads of the history: soon, not in 5 minutes.
        config = activity_config(sim, {"main": BACKFILL_KEYS}, since=None, interval="2s", poll_interval="2s")
        config["value_currencies"] = ["TRY", "USDT"]
        exporter = start_exporter(work, config, f"--storage.path={work / 'data'}")
        try:
            instance = f"127.0.0.1:{exporter.port}"
            prom_config = work / "prometheus.yml"
            prom_config.write_text(
                yaml.safe_dump(
                    {
                        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                        "rule_files": [str(ROOT / "prometheus" / "rules.yml")],
                        "scrape_configs": [
                            {"job_name": BACKFILL_JOB, "static_configs": [{"targets": [instance]}]}
                        ],
                    }
                ),
                encoding="utf-8",
            )
            prometheus = PrometheusServer(
                binary, prom_config, work / "tsdb", free_port(), work / "prometheus.log"
            )
            prometheus.start()
            try:
                joined = _backfill_into(prometheus, exporter, promtool, work, instance)
                yield dataclasses.replace(joined, history=sim.history(BACKFILL_KEYS[0]))
            finally:
                prometheus.stop()
        finally:
            exporter.terminate(15)


def _backfill_into(
    prometheus: PrometheusServer, exporter: ExporterProcess, promtool: str, work: Path, instance: str
) -> Joined:
    def scraped_balances() -> list[dict]:
        return prometheus.query("/api/v1/query", query='btcturk_balance{account="main"}')

    wait_for(scraped_balances, 60, interval=0.5, what="Prometheus to scrape the exporter's balances")
    out = work / "backfill.om"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTCTURK_")}
    # The README's recipe, with this test's paths: the config and ledger of the running exporter.
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "backfill", f"--config.file={work / 'config.yml'}",
         f"--storage.path={work / 'data'}", f"--prometheus.url={prometheus.url}", f"--out={out}"],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first = prometheus.query(
        "/api/v1/query",
        query=f'min_over_time(timestamp(btcturk_exporter_build_info{{job="{BACKFILL_JOB}"}})[1h:1s])',
    )
    first_live_s = float(first[0]["value"][1])
    prometheus.stop()
    made = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=1458h", str(out),
         str(prometheus.data)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    prometheus.start()
    return Joined(
        prometheus, exporter, result.stderr, instance, first_live_s, out, 1.0, time.time(), History()
    )


# --- the dashboards as Grafana reads them ---------------------------------------------------------


def dashboard_panels(board: dict) -> Iterator[dict]:
    """Every panel of a dashboard's JSON, those inside collapsed rows included."""
    for item in board["panels"]:
        if item["type"] == "row":
            yield from item.get("panels", [])
        else:
            yield item


def dashboard_variables(api: Callable[..., Any], board: dict, timeout: float) -> dict[str, str]:
    """Each variable as Grafana sets it by default: All (its allValue) or the first value offered.

    `api(path, **params)` answers Prometheus's /api/v1/<path> with the answer's data.
    """
    values: dict[str, str] = {}
    for var in board["templating"]["list"]:
        if var["type"] == "datasource":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", substitute(query, values))
        assert match, f"{var['name']}: unsupported variable query {query!r}"
        selector, label = match.groups()

        def offered(selector: str = selector, label: str = label) -> list[str]:
            return sorted(api(f"label/{label}/values", **{"match[]": selector}))

        options = wait_for(offered, timeout, interval=0.5, what=f"values of ${var['name']}")
        values[var["name"]] = var["allValue"] if var.get("includeAll") else options[0]
    return values


# The signing test vector from btcturk-api-notes.md.
VECTOR_PUBLIC = "test-public-key"
VECTOR_PRIVATE = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz"
VECTOR_STAMP = 1735689600000
VECTOR_SIGNATURE = "7gyFGcOS+qnq46h/rl83VtpaEAsh8Th3Z3lQrF7g2I0="
TIMEOUT = 5.0


class Later:
    """time.monotonic, moved on at will: the sync's waits between price retries pass at once."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.ahead

    def skip(self, seconds: float) -> None:
        self.ahead += seconds


class FakeClock:
    """A settable clock, so windows and stamp checks are deterministic."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signed_get(
    sim: Simulator,
    offset_ms: int = 0,
    public: str = VECTOR_PUBLIC,
    private: str = VECTOR_PRIVATE,
    path: str = BALANCES_PATH,
    params: dict[str, str | list[str]] | None = None,
) -> requests.Response:
    """A GET signed with the simulator's own clock (plus offset_ms)."""
    stamp = round(sim.clock() * 1000) + offset_ms
    headers = auth_headers(public, decode_private_key(private), stamp)
    return requests.get(sim.url + path, headers=headers, params=params, timeout=TIMEOUT)


def assert_bearer_401(response: requests.Response) -> None:
    """Today's 401: empty body and a Bearer challenge."""
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


# --- what the renderer is given (tests/metrics) ----------------------------------------------------


NOW = 1_800_000_000.0
SETTINGS = Settings(
    poll_interval=30.0,
    max_staleness=300.0,
    value_currencies=("TRY", "USDT"),
    value_price="last",
    export_all_pairs=False,
)


def balance(asset: str, free: str, locked: str = "0", name: str | None = None, request: str = "0") -> Balance:
    f, lk = Decimal(free), Decimal(locked)
    return Balance(asset, name or asset, f + lk, f, lk, lk, Decimal(request))


def ticker(
    pair: str, base: str, quote: str, last: str, bid: str | None = None, ask: str | None = None
) -> Ticker:
    return Ticker(pair, base, quote, Decimal(last), Decimal(bid or last), Decimal(ask or last), Decimal(10))


TICKERS = (
    ticker("BTCTRY", "BTC", "TRY", "3500000"),
    ticker("USDTTRY", "USDT", "TRY", "40"),
    ticker("BTCUSDT", "BTC", "USDT", "87500"),
    ticker("ETHUSDT", "ETH", "USDT", "3000"),
    ticker("DOGEUSDT", "DOGE", "USDT", "0.2"),
)


def snap(account: str, balances: tuple[Balance, ...], at: float = NOW) -> AccountSnapshot:
    """A snapshot taken at `at` by both clocks (the fake monotonic clock runs on the wall's scale)."""
    return AccountSnapshot(account, balances, at, taken_mono=at)


def quotes(tickers: tuple[Ticker, ...], at: float = NOW) -> PriceSnapshot:
    return PriceSnapshot(tickers, at, taken_mono=at)


# --- prices ----------------------------------------------------------------------------------------


def routed(closes: Callable[[str, str, int], Decimal | None], pairs: Iterable[tuple[str, str]]) -> PriceAt:
    """A price_at over listed (base, quote) pairs, routed as the exporter routes (pricing.routes).

    `closes(base, quote, ms)` is a pair's price at a time, None where it has none.
    """
    table = table_of(pairs)

    def price_at(asset: str, currency: str, ms: int) -> Decimal | None:
        return price_of_route(table, asset, currency, lambda leg: closes(leg.base, leg.quote, ms))

    return price_at
