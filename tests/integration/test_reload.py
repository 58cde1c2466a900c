"""SIGHUP re-reads the configuration, as Prometheus does: a real exporter process, real signals.

A good file swaps in the new accounts and intervals without a gap in serving; a broken one keeps the
running configuration, says why in one log line, and shows it in the reload gauges.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import yaml
from support import ExporterProcess, Scraping, parse_metrics, sample, start_exporter, wait_for

from exporter.simulator import Simulator, generate_keypair

MAIN = generate_keypair(seed=51)
OTHER = generate_keypair(seed=52)
SUCCESSFUL = "btcturk_exporter_config_last_reload_successful"
SUCCESS_TIME = "btcturk_exporter_config_last_reload_success_timestamp_seconds"
BALANCES = "/api/v1/users/balances"


@pytest.fixture
def sims() -> Iterator[tuple[Simulator, Simulator]]:
    with Simulator() as first, Simulator() as second:
        for sim in (first, second):
            sim.add_account(*MAIN)
            sim.add_account(*OTHER)
        yield first, second


def config(sim: Simulator, *accounts: tuple[str, tuple[str, str]], interval: str = "1s") -> dict[str, Any]:
    return {
        "api_url": sim.url,
        "poll_interval": interval,
        "accounts": [
            {"name": name, "public_key": pub, "private_key": priv} for name, (pub, priv) in accounts
        ],
    }


def rewrite(exporter_dir: Path, doc: dict[str, Any] | str) -> None:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    (exporter_dir / "config.yml").write_text(text, encoding="utf-8")


class Scraper(Scraping):
    """Scrapes /metrics in a loop while a test reloads, counting every answer that is not a 200."""

    def __init__(self, exporter: ExporterProcess) -> None:
        super().__init__(exporter, every=0)
        self.ok = 0
        self.failures: list[str] = []
        self.session = requests.Session()  # the thread's own

    def look(self) -> None:
        try:
            response = self.session.get(self.exporter.url + "/metrics", timeout=5)
            if response.status_code == 200 and "btcturk_up" in response.text:
                self.ok += 1
            else:
                self.failures.append(f"status {response.status_code}")
        except requests.RequestException as exc:
            self.failures.append(repr(exc))


def hup(exporter: ExporterProcess) -> None:
    exporter.proc.send_signal(signal.SIGHUP)


def test_sighup_swaps_in_new_accounts_and_interval(tmp_path: Path, sims: tuple[Simulator, Simulator]) -> None:
    first, second = sims
    exporter = start_exporter(tmp_path, config(first, ("main", MAIN)))
    try:
        before = exporter.wait_metrics(lambda m: sample(m, "btcturk_up", account="main") == 1)
        assert sample(before, SUCCESSFUL) == 1
        started_at = sample(before, SUCCESS_TIME)
        assert started_at is not None and started_at > 0

        # New API host, a second account and a longer interval: all of it must take effect.
        rewrite(tmp_path, config(second, ("main", MAIN), ("other", OTHER), interval="2s"))
        with Scraper(exporter) as scraper:
            hup(exporter)
            after = exporter.wait_metrics(
                lambda m: (
                    # Both accounts poll the new host (no carry-over across hosts), at the new interval.
                    sample(m, "btcturk_up", account="other") == 1
                    and sample(m, "btcturk_up", account="main") == 1
                    and sample(m, "btcturk_poll_interval_seconds") == 2
                ),
                what="the new configuration",
            )
            wait_for(lambda: scraper.ok >= 5, what="scrapes after the reload")
        assert scraper.failures == [], "serving must not stop during a reload"
        assert sample(after, SUCCESSFUL) == 1
        assert (sample(after, SUCCESS_TIME) or 0) > started_at
        assert exporter.proc.poll() is None

        # The old poller is gone: the first simulator sees no more balance calls, the second does.
        settled = first.count(BALANCES)
        second.wait_for_requests(BALANCES, second.count(BALANCES) + 4, timeout=15)
        assert first.count(BALANCES) == settled, "the old poller kept polling after the reload"
        records = exporter.log_records()
        assert any(r.get("msg") == "reloaded: new configuration" and r.get("accounts") == 2 for r in records)
    finally:
        assert exporter.terminate() == 0, exporter.log_text()


def test_a_broken_file_keeps_the_running_configuration(
    tmp_path: Path, sims: tuple[Simulator, Simulator]
) -> None:
    first, _ = sims
    exporter = start_exporter(tmp_path, config(first, ("main", MAIN)))
    try:
        started_at = sample(exporter.metrics(), SUCCESS_TIME)
        path = tmp_path / "config.yml"
        rewrite(tmp_path, "accounts: [\n")
        with Scraper(exporter) as scraper:
            hup(exporter)
            failed = exporter.wait_metrics(lambda m: sample(m, SUCCESSFUL) == 0, what="the failed reload")
            wait_for(lambda: scraper.ok >= 3, what="scrapes after the failed reload")
        assert scraper.failures == []
        assert sample(failed, SUCCESS_TIME) == started_at, "the last success is still the start"
        polls = first.count(BALANCES)
        first.wait_for_requests(BALANCES, polls + 2, timeout=15)
        assert sample(exporter.metrics(), "btcturk_up", account="main") == 1, "the running config still polls"

        errors = [r for r in exporter.log_records() if r.get("level") == "error"]
        assert len(errors) == 1, errors
        assert errors[0]["msg"] == "reload failed, keeping the running configuration"
        assert f"{path}: invalid YAML at line 2, column 1" in errors[0]["err"]

        # A repeated key and an unknown variable are refused on reload as at start.
        rewrite(tmp_path, yaml.safe_dump(config(first, ("main", MAIN))) + "poll_interval: 2s\n")
        hup(exporter)
        wait_for(
            lambda: len([r for r in exporter.log_records() if r.get("level") == "error"]) == 2,
            what="the second failed reload",
        )
        assert "duplicate key 'poll_interval'" in exporter.log_records()[-1].get("err", "")
        assert sample(exporter.metrics(), "btcturk_poll_interval_seconds") == 1

        # Fixed: the next SIGHUP succeeds.
        rewrite(tmp_path, config(first, ("main", MAIN), interval="2s"))
        hup(exporter)
        fixed = exporter.wait_metrics(
            lambda m: sample(m, SUCCESSFUL) == 1 and sample(m, "btcturk_poll_interval_seconds") == 2,
            what="the good reload",
        )
        assert (sample(fixed, SUCCESS_TIME) or 0) > (started_at or 0)
    finally:
        assert exporter.terminate() == 0, exporter.log_text()


def test_a_bad_since_on_sighup_is_one_line_with_its_key(
    tmp_path: Path, sims: tuple[Simulator, Simulator]
) -> None:
    first, _ = sims
    exporter = start_exporter(tmp_path, config(first, ("main", MAIN)))
    try:
        # Unquoted, as the README writes dates: YAML alone made 2025-13-01 a ValueError traceback.
        base = yaml.safe_dump(config(first, ("main", MAIN)))
        rewrite(tmp_path, base + "activity:\n  since: 2025-13-01\n")
        hup(exporter)
        exporter.wait_metrics(lambda m: sample(m, SUCCESSFUL) == 0, what="the failed reload")
        errors = [r for r in exporter.log_records() if r.get("level") == "error"]
        assert [(r["msg"], r.get("err")) for r in errors] == [
            (
                "reload failed, keeping the running configuration",
                "activity.since: not a date on the calendar (YYYY-MM-DD), got '2025-13-01'",
            )
        ]
        assert "Traceback" not in exporter.log_text()

        rewrite(tmp_path, base + "activity:\n  since: 2025-01-31\n")
        hup(exporter)
        exporter.wait_metrics(lambda m: sample(m, SUCCESSFUL) == 1, what="the good reload")
    finally:
        assert exporter.terminate() == 0, exporter.log_text()


def test_sighup_with_an_unchanged_file_keeps_polling(
    tmp_path: Path, sims: tuple[Simulator, Simulator]
) -> None:
    first, _ = sims
    exporter = start_exporter(tmp_path, config(first, ("main", MAIN)))
    try:
        unchanged = "reloaded: configuration unchanged, polling continues"
        for count in range(1, 4):
            # One at a time: signals sent together may arrive as one.
            hup(exporter)
            wait_for(
                lambda n=count: sum(r.get("msg") == unchanged for r in exporter.log_records()) == n,
                what=f"reload {count}",
            )
        polls = first.count(BALANCES)
        first.wait_for_requests(BALANCES, polls + 2, timeout=15)
        assert sample(exporter.metrics(), SUCCESSFUL) == 1
    finally:
        assert exporter.terminate() == 0, exporter.log_text()


def test_sighup_in_the_demo_keeps_the_demo(tmp_path: Path) -> None:
    exporter = start_exporter(tmp_path, None, "--demo", "--demo.poll-interval", "1s")
    try:
        hup(exporter)
        wait_for(lambda: any(r.get("msg", "").startswith("reloaded") for r in exporter.log_records()))
        metrics = exporter.metrics()
        assert sample(metrics, SUCCESSFUL) == 1
        assert sample(metrics, "btcturk_exporter_demo") == 1
        assert exporter.proc.poll() is None
    finally:
        assert exporter.terminate() == 0, exporter.log_text()


def test_sighup_re_reads_the_web_config(tmp_path: Path, sims: tuple[Simulator, Simulator]) -> None:
    first, _ = sims
    web = tmp_path / "web.yml"

    def users(password: bytes) -> str:
        return f"basic_auth_users:\n  prometheus: '{bcrypt.hashpw(password, bcrypt.gensalt(4)).decode()}'\n"

    web.write_text(users(b"old"), encoding="utf-8")
    exporter = start_exporter(tmp_path, config(first, ("main", MAIN)), "--web.config.file", str(web))
    try:
        assert exporter.get("/metrics", auth=("prometheus", "old")).status_code == 200
        web.write_text(users(b"new"), encoding="utf-8")
        hup(exporter)
        wait_for(
            lambda: exporter.get("/metrics", auth=("prometheus", "new")).status_code == 200,
            what="the new password",
        )
        assert exporter.get("/metrics", auth=("prometheus", "old")).status_code == 401

        # A broken web config keeps the running one, and counts as a failed reload.
        web.write_text("basic_auth_users:\n  a: x\n  a: y\n", encoding="utf-8")
        hup(exporter)
        wait_for(
            lambda: sample(_scrape(exporter, "new"), SUCCESSFUL) == 0,
            what="the failed reload",
        )
        assert exporter.get("/metrics", auth=("prometheus", "new")).status_code == 200
        [error] = [r for r in exporter.log_records() if r.get("level") == "error"]
        assert f"{web}: invalid YAML: line 3, column 3: duplicate key 'a' (first at line 2)" in error["err"]
    finally:
        assert exporter.terminate() == 0, exporter.log_text()


def _scrape(exporter: ExporterProcess, password: str) -> dict:
    response = exporter.get("/metrics", auth=("prometheus", password))
    response.raise_for_status()
    return parse_metrics(response.text)
