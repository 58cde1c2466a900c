"""Helpers shared by the tests: external binaries (required in CI, optional locally), waiting with a deadline,
parsed /metrics, exporter processes, and the simulator's signing test vector and clock."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.api.signing import auth_headers, decode_private_key
from exporter.ledger.costbasis import PriceAt
from exporter.pricing.routes import price_of_route, table_of
from exporter.simulator import BALANCES_PATH, Simulator


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
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("BTCTURK_")}
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


# The signing test vector from btcturk-api-notes.md.
VECTOR_PUBLIC = "test-public-key"
VECTOR_PRIVATE = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz"
VECTOR_STAMP = 1735689600000
VECTOR_SIGNATURE = "7gyFGcOS+qnq46h/rl83VtpaEAsh8Th3Z3lQrF7g2I0="
TIMEOUT = 5.0


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


# --- prices ----------------------------------------------------------------------------------------


def routed(closes: Callable[[str, str, int], Decimal | None], pairs: Iterable[tuple[str, str]]) -> PriceAt:
    """A price_at over listed (base, quote) pairs, routed as the exporter routes (pricing.routes).

    `closes(base, quote, ms)` is a pair's price at a time, None where it has none.
    """
    table = table_of(pairs)

    def price_at(asset: str, currency: str, ms: int) -> Decimal | None:
        return price_of_route(table, asset, currency, lambda leg: closes(leg.base, leg.quote, ms))

    return price_at
