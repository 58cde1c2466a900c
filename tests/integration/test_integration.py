"""The exporter process against the simulator over real loopback HTTP, as a user would run it."""

import base64
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from support import ExporterProcess, require_binary, sample, samples, wait_for

from exporter.api.client import BALANCES
from exporter.simulator import Fault, SimAsset, Simulator, generate_keypair

MAIN = generate_keypair(seed=11)
SAVINGS = generate_keypair(seed=12)
# A private key that is easy to spot if it ever leaks: valid base64 of a marker string.
CANARY = base64.b64encode(b"CANARY-do-not-leak-4f1c2e-private-key").decode()
CANARY_PUBLIC = "canary-public-key-0001"


def assets() -> list[SimAsset]:
    return [
        SimAsset(
            "TRY",
            "Türk Lirası",
            Decimal("27223.7283250757643288"),
            Decimal("4874.3628685722294523"),
            precision=2,
        ),
        SimAsset("BTC", "Bitcoin", Decimal("6.439241464455326"), Decimal("3.3109771999999998")),
        SimAsset("USDT", "Tether", Decimal("150.25"), Decimal("0"), request_fund=Decimal("50")),
        SimAsset("ETH", "Ethereum", Decimal("0"), Decimal("0")),
        SimAsset("XRP", "Ripple", Decimal("0"), Decimal("0")),
    ]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_account(*MAIN, assets())
        simulator.add_account(*SAVINGS, assets()[:2])
        yield simulator


INTERVAL_S, TIMEOUT_S = 1.0, 0.5  # the configured poll_interval and timeout
SKEW_S = 2.0  # the simulator's clock ahead of ours, within the ±5 s signing window


def config(sim: Simulator, **overrides: object) -> dict:
    doc: dict = {
        "api_url": sim.url,
        "poll_interval": f"{INTERVAL_S:g}s",
        "timeout": f"{TIMEOUT_S * 1000:g}ms",
        # Two accounts a second are the whole balances budget: allowed only with no headroom planned.
        "rate_limit_share": 1,
        "accounts": [
            {"name": "main", "public_key": MAIN[0], "private_key": MAIN[1]},
            {"name": "savings", "public_key": SAVINGS[0], "private_key": SAVINGS[1]},
        ],
    }
    doc.update(overrides)
    return doc


Factory = Callable[..., ExporterProcess]


def test_every_gauge_has_the_simulator_value(sim: Simulator, exporter_factory: Factory) -> None:
    sim.clock_skew = SKEW_S
    before = time.time()
    exporter = exporter_factory(config(sim))
    m = exporter.wait_metrics(
        lambda m: (
            all(sample(m, "btcturk_up", account=a) == 1 for a in ("main", "savings"))
            and {dict(labels)["account"] for labels in samples(m, "btcturk_portfolio_value")}
            == {"main", "savings"}
        ),
        what="both accounts polled and valued",
    )
    after = time.time()
    expected = {a.asset: a for a in assets()}
    for asset in ("TRY", "BTC", "USDT"):
        a = expected[asset]
        labels = {"account": "main", "asset": asset}
        assert sample(m, "btcturk_balance", **labels) == float(a.free + a.locked)
        assert sample(m, "btcturk_balance_free", **labels) == float(a.free)
        assert sample(m, "btcturk_balance_locked", **labels) == float(a.locked)
        assert sample(m, "btcturk_balance_order_fund", **labels) == float(a.locked)
        assert sample(m, "btcturk_balance_request_fund", **labels) == float(a.request_fund)
    assert sample(m, "btcturk_asset_info", asset="TRY", asset_name="Türk Lirası") == 1
    assert sample(m, "btcturk_balance", account="savings", asset="BTC") == float(
        Decimal("9.7502186644553258")
    )
    for account in ("main", "savings"):
        assert sample(m, "btcturk_up", account=account) == 1
        # Stamped on this machine's clock, by a poll made after the start and before the scrape.
        assert before <= (sample(m, "btcturk_last_success_timestamp_seconds", account=account) or 0) <= after
        # A poll's retries end by its deadline, one poll_interval after it began; the first poll measures
        # the server clock before, one request within `timeout`. Nor can it outlast what we watched.
        duration = sample(m, "btcturk_poll_duration_seconds", account=account) or 0
        assert 0 < duration < min(INTERVAL_S + TIMEOUT_S, after - before)
        assert sample(m, "btcturk_api_requests_total", account=account, endpoint=BALANCES, code="200") >= 1
    # The server's time is read somewhere within a round trip of at most `timeout`, in whole milliseconds:
    # its midpoint is off the simulator's skew by half of that at most.
    offset = sample(m, "btcturk_clock_offset_seconds")
    assert offset == pytest.approx(SKEW_S, abs=TIMEOUT_S / 2 + 0.001)
    assert samples(m, "btcturk_exporter_build_info")
    # Zero in every poll since start: not exported.
    assert sample(m, "btcturk_balance", account="main", asset="ETH") is None


def test_zero_assets_appear_once_non_zero_and_stay(sim: Simulator, exporter_factory: Factory) -> None:
    exporter = exporter_factory(config(sim))
    exporter.wait_metrics(
        lambda m: sample(m, "btcturk_balance", account="main", asset="BTC"), what="first poll"
    )
    assert sample(exporter.metrics(), "btcturk_balance", account="main", asset="ETH") is None
    changed = assets()
    changed[3] = SimAsset("ETH", "Ethereum", Decimal("2.5"), Decimal("0"))
    sim.set_assets(MAIN[0], changed)
    exporter.wait_metrics(
        lambda m: sample(m, "btcturk_balance", account="main", asset="ETH") == 2.5, what="ETH"
    )
    sim.set_assets(MAIN[0], assets())
    m = exporter.wait_metrics(
        lambda m: sample(m, "btcturk_balance", account="main", asset="ETH") == 0, what="0"
    )
    assert sample(m, "btcturk_balance_free", account="main", asset="ETH") == 0
    assert sample(m, "btcturk_balance", account="main", asset="XRP") is None


def test_vanished_asset_disappears(sim: Simulator, exporter_factory: Factory) -> None:
    exporter = exporter_factory(config(sim))
    exporter.wait_metrics(lambda m: sample(m, "btcturk_balance", account="main", asset="USDT"), what="USDT")
    sim.remove_asset(MAIN[0], "USDT")
    m = exporter.wait_metrics(
        lambda m: sample(m, "btcturk_balance", account="main", asset="USDT") is None, what="USDT to vanish"
    )
    assert sample(m, "btcturk_balance", account="main", asset="BTC") is not None


def test_5xx_then_recovery_keeps_balances(sim: Simulator, exporter_factory: Factory) -> None:
    exporter = exporter_factory(config(sim))
    exporter.wait_metrics(lambda m: sample(m, "btcturk_up", account="main") == 1)
    sim.inject(Fault("status", status=503, body=b"busy"), endpoint=BALANCES)
    m = exporter.wait_metrics(lambda m: sample(m, "btcturk_up", account="main") == 0, what="up to drop")
    assert sample(m, "btcturk_balance", account="main", asset="BTC") is not None, "graphs must not gap"
    m = exporter.wait_metrics(
        lambda m: sample(m, "btcturk_poll_failures_total", account="main", reason="server_error") >= 1
    )
    assert sample(m, "btcturk_api_requests_total", account="main", endpoint=BALANCES, code="503") >= 1
    sim.clear_faults()
    exporter.wait_metrics(lambda m: sample(m, "btcturk_up", account="main") == 1, what="recovery")


def test_429_retry_after_is_honoured_by_every_account(sim: Simulator, exporter_factory: Factory) -> None:
    exporter = exporter_factory(config(sim))
    sim.inject(Fault("rate_limit", retry_after=3), endpoint=BALANCES, times=1)
    sim.wait_for_requests(BALANCES, 1, status=429)
    limited_at = time.monotonic()
    ok_before = sim.count(BALANCES, 200)
    # The other account's request may already be in flight when the 429 lands and succeed right
    # after it; any further success must wait for the pause to end.
    wait_for(lambda: sim.count(BALANCES, 200) > ok_before + 1, 15, what="polls to resume")
    assert time.monotonic() - limited_at >= 2.5
    m = exporter.metrics()
    codes = samples(m, "btcturk_api_requests_total")
    assert any(dict(labels)["code"] == "429" for labels in codes)


def test_30s_clock_skew_is_survived(sim: Simulator, exporter_factory: Factory) -> None:
    sim.clock_skew = 30.0
    exporter = exporter_factory(config(sim))
    m = exporter.wait_metrics(lambda m: sample(m, "btcturk_up", account="main") == 1)
    assert sample(m, "btcturk_clock_offset_seconds") == pytest.approx(30, abs=1)
    # The skew changes under a running exporter: one 401, a fresh offset, and polls work again.
    sim.clock_skew = -40.0
    exporter.wait_metrics(lambda m: sample(m, "btcturk_clock_offset_seconds") == pytest.approx(-40, abs=1))
    exporter.wait_metrics(lambda m: sample(m, "btcturk_up", account="main") == 1)


def test_secrets_never_leak(sim: Simulator, exporter_factory: Factory) -> None:
    sim.add_account(CANARY_PUBLIC, CANARY)
    cfg = config(sim)
    cfg["accounts"] = [{"name": "canary", "public_key": CANARY_PUBLIC, "private_key": CANARY}]
    exporter = exporter_factory(cfg, "--log.level", "debug")
    exporter.wait_metrics(lambda m: sample(m, "btcturk_up", account="canary") == 1)
    sim.inject(Fault("auth"), endpoint=BALANCES)
    exporter.wait_metrics(
        lambda m: sample(m, "btcturk_poll_failures_total", account="canary", reason="auth") >= 1
    )
    sim.inject(Fault("reset"), endpoint=BALANCES)
    exporter.wait_metrics(lambda m: sample(m, "btcturk_up", account="canary") == 0)
    body = exporter.get("/metrics").text + exporter.get("/").text + exporter.get("/ready").text
    assert exporter.terminate() == 0
    logs = exporter.log_text()
    assert "auth" in logs, "the failure was logged"
    for text in (body, logs):
        assert CANARY not in text
        assert "CANARY-do-not-leak" not in text


def test_check_config_masks_secrets(sim: Simulator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sys

    import yaml

    cfg = config(sim)
    cfg["accounts"][0]["private_key"] = CANARY
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump(cfg))
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--check-config", "--config.file", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "main" in result.stdout
    assert CANARY not in result.stdout + result.stderr


def test_ready_flips_when_every_account_has_polled(sim: Simulator, exporter_factory: Factory) -> None:
    sim.inject(Fault("status", status=500), endpoint=BALANCES)
    exporter = exporter_factory(config(sim), ready=False)
    wait_for(lambda: sim.count(BALANCES, 500) >= 2, what="failing polls")
    response = exporter.get("/ready")
    assert response.status_code == 503
    assert exporter.get("/healthz").status_code == 200
    assert exporter.get("/metrics").status_code == 200
    sim.clear_faults()
    wait_for(lambda: exporter.get("/ready").status_code == 200, what="/ready to flip")


def test_landing_page_links_to_metrics(sim: Simulator, exporter_factory: Factory) -> None:
    exporter = exporter_factory(config(sim))
    page = exporter.get("/")
    assert page.status_code == 200
    assert 'href="metrics"' in page.text
    assert exporter.get("/nope").status_code == 404


def test_sigterm_and_sigint_exit_cleanly_without_waiting_for_a_hanging_poll(
    sim: Simulator, exporter_factory: Factory
) -> None:
    hang = 30.0
    for sig in (signal.SIGTERM, signal.SIGINT):
        exporter = exporter_factory(config(sim))
        # Even with a poll hanging upstream: the exit must not wait for it to end.
        sim.inject(Fault("latency", seconds=hang), endpoint=BALANCES)
        started = time.monotonic()
        exporter.proc.send_signal(sig)
        assert exporter.proc.wait(hang) == 0
        assert time.monotonic() - started < hang / 2
        sim.clear_faults()


def test_promtool_check_metrics_on_live_output(sim: Simulator, exporter_factory: Factory) -> None:
    promtool = require_binary("promtool")
    exporter = exporter_factory(config(sim))
    exporter.wait_metrics(lambda m: samples(m, "btcturk_portfolio_value"))
    body = exporter.get("/metrics").content
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_gzip_is_served_when_asked(sim: Simulator, exporter_factory: Factory) -> None:
    exporter = exporter_factory(config(sim))
    response = exporter.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert "btcturk_up" in response.text  # requests decodes the gzip members
    plain = exporter.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
