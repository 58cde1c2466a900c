"""The reload machinery in process: pipelines swapped under a real server polling a real simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests
from support import parse_metrics, sample, wait_for

from exporter.api.account import Account, Secret
from exporter.config.loader import Config, ConfigError
from exporter.service import Pipeline, ReloadStatus, Service, build_pipeline, live_registry
from exporter.simulator import Simulator, generate_keypair
from exporter.web.config import WebConfigError
from exporter.web.server import start_server

MAIN = generate_keypair(seed=61)
OTHER = generate_keypair(seed=62)


def account(name: str, keys: tuple[str, str]) -> Account:
    return Account(name, keys[0], Secret(keys[1]))


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_account(*MAIN)
        simulator.add_account(*OTHER)
        yield simulator


def make_config(sim: Simulator, *accounts: Account, interval: float = 1.0) -> Config:
    return Config(accounts=accounts, api_url=sim.url, poll_interval=interval, timeout=0.5)


class Running:
    """A Service on a loopback port whose next load() returns (or raises) what the test sets."""

    def __init__(self, config: Config, load_web: Callable[[], Callable[[], None]] | None = None) -> None:
        self.next: Config | Exception = config
        self.status = ReloadStatus()
        live = live_registry(self.status)
        pipeline = build_pipeline(config, live)
        server, _ = start_server("127.0.0.1:0", pipeline.renderer, pipeline.store.view)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.service = Service(server, pipeline, self.status, live, load=self._load, load_web=load_web)
        self.service.start()

    def _load(self) -> Config:
        if isinstance(self.next, Exception):
            raise self.next
        return self.next

    def metrics(self) -> dict:
        return parse_metrics(requests.get(self.url + "/metrics", timeout=5).text)

    @property
    def pipeline(self) -> Pipeline:
        return self.service.pipeline


@pytest.fixture
def running(sim: Simulator) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def factory(config: Config, **kwargs: object) -> Running:
        started.append(Running(config, **kwargs))  # type: ignore[arg-type]
        return started[-1]

    yield factory
    for item in started:
        item.service.stop()


def up(run: Running, name: str) -> bool:
    return sample(run.metrics(), "btcturk_up", account=name) == 1


def test_the_reload_gauges_start_at_success() -> None:
    status = ReloadStatus(clock=lambda: 1234.5)
    families = {f.name: f.samples[0].value for f in status.collect()}
    assert families == {
        "btcturk_exporter_config_last_reload_successful": 1,
        "btcturk_exporter_config_last_reload_success_timestamp_seconds": 1234.5,
    }


def test_a_failed_reload_keeps_the_last_success_time() -> None:
    times = iter([10.0, 20.0, 30.0])
    status = ReloadStatus(clock=lambda: next(times))
    status.failed()
    assert (status.successful, status.success_time) == (False, 10.0)
    status.succeeded()
    assert (status.successful, status.success_time) == (True, 20.0)


def test_a_new_configuration_replaces_the_pipeline(sim: Simulator, running: Callable[..., Running]) -> None:
    run = running(make_config(sim, account("main", MAIN)))
    wait_for(lambda: up(run, "main"), what="main up")
    old = run.pipeline
    run.next = make_config(sim, account("main", MAIN), account("other", OTHER), interval=2.0)
    assert run.service.reload()
    assert run.pipeline is not old
    # The unchanged healthy account is carried over: up at once, before the new poller's first poll.
    first = run.metrics()
    assert sample(first, "btcturk_up", account="main") == 1
    assert sample(first, "btcturk_poll_interval_seconds") == 2
    wait_for(lambda: up(run, "other"), what="other up")
    assert old.poller._loops.stopping, "the old poller was stopped"


def test_a_changed_key_is_not_carried_over(sim: Simulator, running: Callable[..., Running]) -> None:
    run = running(make_config(sim, account("main", MAIN)))
    wait_for(lambda: up(run, "main"), what="main up")
    run.next = make_config(sim, account("main", OTHER))
    assert run.service.reload()
    view = run.pipeline.store.view()
    assert "main" not in view.snapshots, "another key's balances must not show under the old name"


def test_an_unchanged_configuration_keeps_the_pipeline(
    sim: Simulator, running: Callable[..., Running]
) -> None:
    config = make_config(sim, account("main", MAIN))
    run = running(config)
    old = run.pipeline
    assert run.service.reload()
    assert run.pipeline is old and not old.poller._loops.stopping


@pytest.mark.parametrize(
    "error",
    [ConfigError(["poll_interval: bad", "timeout: bad"]), WebConfigError(["web.yml: bad"]), OSError("boom")],
    ids=["config", "web-config", "unexpected"],
)
def test_a_failed_reload_keeps_everything(
    sim: Simulator, running: Callable[..., Running], error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    run = running(make_config(sim, account("main", MAIN)))
    old = run.pipeline
    run.next = error
    assert not run.service.reload()
    assert run.pipeline is old and not old.poller._loops.stopping
    assert sample(run.metrics(), "btcturk_exporter_config_last_reload_successful") == 0
    [record] = [r for r in caplog.records if r.msg == "reload failed, keeping the running configuration"]
    if isinstance(error, ConfigError):
        assert record.err == "poll_interval: bad; timeout: bad"  # type: ignore[attr-defined]


def test_the_web_configuration_is_applied_only_when_both_files_load(
    sim: Simulator, running: Callable[..., Running]
) -> None:
    applied: list[int] = []
    outcome: list[Exception | None] = [None]

    def load_web() -> Callable[[], None]:
        if outcome[0] is not None:
            raise outcome[0]
        return lambda: applied.append(1)

    run = running(make_config(sim, account("main", MAIN)), load_web=load_web)
    assert run.service.reload() and applied == [1]
    run.next = ConfigError(["x: bad"])
    assert not run.service.reload() and applied == [1], "a bad config file must not apply the web config"
    run.next = make_config(sim, account("main", MAIN))
    outcome[0] = WebConfigError(["web.yml: bad"])
    assert not run.service.reload() and applied == [1]


def test_demo_marking_follows_the_pipeline(sim: Simulator) -> None:
    status = ReloadStatus()
    pipeline = build_pipeline(make_config(sim, account("main", MAIN)), live_registry(status), demo=True)
    text = pipeline.renderer.scrape().decode()
    assert sample(parse_metrics(text), "btcturk_exporter_demo") == 1
    plain = build_pipeline(make_config(sim, account("main", MAIN)), live_registry(ReloadStatus()))
    assert sample(parse_metrics(plain.renderer.scrape().decode()), "btcturk_exporter_demo") == 0


def test_the_landing_page_carries_the_demo_banner(sim: Simulator) -> None:
    for demo in (True, False):
        pipeline = build_pipeline(
            make_config(sim, account("main", MAIN)), live_registry(ReloadStatus()), demo=demo
        )
        server, _ = start_server("127.0.0.1:0", pipeline.renderer, pipeline.store.view)
        try:
            page = requests.get(f"http://127.0.0.1:{server.server_address[1]}/", timeout=5).text
        finally:
            server.shutdown()
            server.server_close()
        assert ("DEMO DATA: made-up accounts from the built-in simulator" in page) is demo


def test_the_reload_gauges_show_a_reload_at_once(sim: Simulator, running: Callable[..., Running]) -> None:
    """The live part is cached for a second; a reload's outcome must not wait for that to run out."""
    run = running(make_config(sim, account("main", MAIN)))
    assert sample(run.metrics(), "btcturk_exporter_config_last_reload_successful") == 1  # now cached
    run.next = ConfigError(["poll_interval: bad"])
    assert not run.service.reload()
    assert sample(run.metrics(), "btcturk_exporter_config_last_reload_successful") == 0
