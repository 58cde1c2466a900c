"""The README's backfill recipe against a live exporter scraped by a real Prometheus: one series, not two.

A real exporter polls the simulator and a real Prometheus scrapes it under the bundled job name. The
backfill command then reads the live series' `job` and `instance`, and where their samples begin, from
that Prometheus (`--prometheus.url`); promtool turns its file into blocks; Prometheus restarts on the same
data directory. A range query over past and present then returns, per asset, one series whose labels
are the live ones, with the backfilled samples before the first live one and none after it.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from support import ExporterProcess, require_binary, start_exporter, wait_for

from exporter.simulator import Simulator, generate_keypair

HOUR = 3600
KEYS = generate_keypair(seed=73)
JOB = "btcturk"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Prometheus:
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

    def query(self, path: str, **params: str) -> list[dict]:
        answer = requests.get(f"{self.url}{path}", params=params, timeout=10)
        answer.raise_for_status()
        return list(answer.json()["data"]["result"])


@dataclass
class Joined:
    prometheus: Prometheus
    exporter: ExporterProcess
    stderr: str
    instance: str
    first_live_s: float


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Joined]:
    promtool, binary = require_binary("promtool"), require_binary("prometheus")
    work = tmp_path_factory.mktemp("backfill-joins-live")
    with Simulator("127.0.0.1", 0, seed=5) as sim:
        sim.add_account(*KEYS, history_days=4, seed=6)
        config = {
            "api_url": sim.url,
            "graph_api_url": sim.url,
            "value_currencies": ["TRY"],
            "accounts": [{"name": "main", "public_key": KEYS[0], "private_key": KEYS[1]}],
        }
        storage = work / "data"
        exporter = start_exporter(work, {**config, "poll_interval": "2s"}, f"--storage.path={storage}")
        try:
            instance = f"127.0.0.1:{exporter.port}"
            prom_config = work / "prometheus.yml"
            prom_config.write_text(
                f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: {JOB}\n"
                f"    static_configs:\n      - targets: ['{instance}']\n",
                encoding="utf-8",
            )
            prometheus = Prometheus(binary, prom_config, work / "tsdb", free_port(), work / "prometheus.log")
            prometheus.start()
            try:
                yield _backfill_into(prometheus, exporter, promtool, work, instance)
            finally:
                prometheus.stop()
        finally:
            exporter.terminate(15)


def _backfill_into(
    prometheus: Prometheus, exporter: ExporterProcess, promtool: str, work: Path, instance: str
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
        query=f'min_over_time(timestamp(btcturk_exporter_build_info{{job="{JOB}"}})[1h:1s])',
    )
    # The first live sample, to the scrape: what the backfill must stop before.
    first_live_s = float(first[0]["value"][1])
    prometheus.stop()
    made = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=1458h", str(out),
         str(prometheus.data)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    prometheus.start()
    return Joined(prometheus, exporter, result.stderr, instance, first_live_s)


def test_the_backfill_reads_job_and_instance_from_prometheus(joined: Joined) -> None:
    assert f"job={JOB}, instance={joined.instance}" in joined.stderr
    assert "(where Prometheus's live series begin)" in joined.stderr


def test_past_and_live_are_one_series_per_asset_with_the_live_labels(joined: Joined) -> None:
    prometheus = joined.prometheus
    end = float(prometheus.query("/api/v1/query", query="time()")[0])

    def ranged() -> list[dict] | None:
        # As a dashboard asks: a range query over the last 3 days, at a 1h step.
        result = prometheus.query(
            "/api/v1/query_range",
            query='last_over_time(btcturk_balance{account="main"}[1h])',
            start=str(end - 3 * 24 * HOUR),
            end=str(end),
            step="3600",
        )
        live = [s for s in result if float(s["values"][-1][0]) > joined.first_live_s]
        return result if live else None

    series = wait_for(ranged, 60, interval=0.5, what="the live samples after the restart")
    assert series, "no btcturk_balance series over the range"
    by_asset: dict[str, list[dict]] = {}
    for s in series:
        by_asset.setdefault(s["metric"]["asset"], []).append(s)
    for asset, found in by_asset.items():
        assert len(found) == 1, f"{asset}: {len(found)} series where the past and live should be one"
        labels = found[0]["metric"]
        assert labels["job"] == JOB and labels["instance"] == joined.instance, labels
    # The past is there: points from the backfill before the first live sample, on the same series.
    assert any(float(s["values"][0][0]) < joined.first_live_s - 24 * HOUR for s in series)


def test_no_backfilled_sample_lies_at_or_after_the_first_live_one(joined: Joined) -> None:
    prometheus = joined.prometheus
    # Raw samples of every balance series over the two hours up to just after the first live scrape:
    # those before it are the backfill's hourly steps, and none of those is at or after it.
    result = prometheus.query(
        "/api/v1/query",
        query='btcturk_balance{account="main"}[2h]',
        time=str(joined.first_live_s + 5),
    )
    assert result
    for s in result:
        times = [float(t) for t, _ in s["values"]]
        before = [t for t in times if t < joined.first_live_s]
        assert before, "no backfilled sample before the first live one"
        assert all(t % HOUR == 0 for t in before), (s["metric"], before)
        assert max(before) < joined.first_live_s


def test_the_profit_recording_rule_is_filled_over_the_past(joined: Joined) -> None:
    prometheus = joined.prometheus
    at = str((int(joined.first_live_s) // HOUR - 30) * HOUR)  # a backfilled step, 30 hours before live
    rule = "account_currency:btcturk_portfolio_profit:value_minus_net_deposits"
    recorded = prometheus.query("/api/v1/query", query=f'{rule}{{account="main"}}', time=at)
    computed = prometheus.query(
        "/api/v1/query", query='btcturk_portfolio_value{account="main"} - btcturk_net_deposits', time=at
    )
    assert computed, "no profit to compare with at that step"
    assert recorded, f"{rule} has no value at a backfilled step"
    written = {r["metric"]["currency"]: float(r["value"][1]) for r in recorded}
    evaluated = {c["metric"]["currency"]: float(c["value"][1]) for c in computed}
    assert written.keys() == evaluated.keys()
    for currency, value in written.items():
        # The file holds the exact decimal; the rule subtracts two floats.
        assert math.isclose(value, evaluated[currency], rel_tol=1e-12), (currency, value, evaluated[currency])
