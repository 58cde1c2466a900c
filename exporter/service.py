"""The running exporter: the pipeline behind the HTTP server, and its replacement when SIGHUP reloads.

A pipeline is one configuration's store, renderer, client and poller. A reload builds a new pipeline
from the re-read files and swaps it in under the running server, which never stops serving; a file
that fails to load leaves the running pipeline untouched and says why in the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.activity.store import ActivityStore
from exporter.activity.sync import ActivitySync
from exporter.api.client import ODDITIES, Client
from exporter.api.errors import REASONS
from exporter.api.records import KINDS, RECORD_ODDITIES
from exporter.api.transactions import ActivityClient
from exporter.config.loader import Config, ConfigError
from exporter.ledger import counters as ledger_counters
from exporter.ledger.cursors import LIVE_SINCE
from exporter.ledger.replay import Counting
from exporter.ledger.schema import LedgerError
from exporter.ledger.store import Ledger
from exporter.metrics.process import live_registry as process_registry
from exporter.metrics.renderer import Renderer
from exporter.metrics.series import TICKER_FAILURE, Settings
from exporter.poll.poller import Poller
from exporter.poll.snapshot import SHARED, Store
from exporter.web.config import WebConfigError
from exporter.web.server import ExporterServer

log = logging.getLogger(__name__)

# Validates the web configuration and returns what applies it to the server; raises on a bad file.
WebLoader = Callable[[], Callable[[], None]]


class ReloadStatus(Collector):
    """Whether the last (re)load of the configuration worked, as Prometheus itself reports it."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.successful = True
        self.success_time = clock()

    def succeeded(self) -> None:
        """Record a successful reload now."""
        with self._lock:
            self.successful, self.success_time = True, self._clock()

    def failed(self) -> None:
        """Record a failed reload; the time of the last success stays."""
        with self._lock:
            self.successful = False

    def collect(self) -> Iterator[Metric]:
        """The two reload gauges."""
        with self._lock:
            successful, success_time = self.successful, self.success_time
        yield GaugeMetricFamily(
            "btcturk_exporter_config_last_reload_successful",
            "1 if the last configuration reload succeeded (the start counts as one), 0 if it failed.",
            value=1 if successful else 0,
        )
        yield GaugeMetricFamily(
            "btcturk_exporter_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load, at start or on SIGHUP.",
            value=success_time,
        )


def live_registry(status: ReloadStatus) -> CollectorRegistry:
    """The live part of every scrape: process and runtime metrics, and the reload status."""
    registry = process_registry()
    registry.register(status)
    return registry


@dataclass(frozen=True)
class Pipeline:
    """What one configuration runs: the store the poller fills and the renderer serves, and beside the
    poller the activity sync (None when activity is off or there is no ledger)."""

    config: Config
    store: Store
    renderer: Renderer
    poller: Poller
    activity: ActivitySync | None = None
    activity_store: ActivityStore | None = None

    def start(self) -> None:
        """Start the balance poller and, on their own threads, the activity sync and market poll."""
        self.poller.start()
        if self.activity is not None:
            self.activity.start()

    def stop(self, timeout: float) -> None:
        """Stop polling and syncing."""
        self.poller.stop(timeout=timeout)
        if self.activity is not None:
            self.activity.stop(timeout=timeout)


def _record_live_since(store: Store, ledger: Ledger) -> None:
    """Record in the ledger when live polling began (the first successful balance poll), once per file."""
    done = threading.Event()
    recorded_in = [ledger.rebuilds]

    def listener() -> None:
        if done.is_set() and recorded_in[0] == ledger.rebuilds:
            return
        view = store.view()
        first = [h.last_success for h in view.health.values() if h.last_success is not None]
        if first:
            rebuilds = ledger.rebuilds
            try:
                ledger.set_state(LIVE_SINCE, str(round(min(first) * 1000)), keep_existing=True)
            except LedgerError:
                return  # the activity sync says what is wrong with the ledger, once; tried again next poll
            recorded_in[0] = rebuilds
            done.set()  # after the write: a failed one is tried again on the next publish

    store.on_publish(listener)


def _count(ledger: Ledger) -> Callable[[str], ledger_counters.Totals | None]:
    # Per account, the counters kept between counts: a new record is counted onto them.
    kept: dict[str, tuple[int, Counting]] = {}
    lock = threading.Lock()  # one count at a time: a Counting is fed in order

    def count(account: str) -> ledger_counters.Totals | None:
        # Only a whole history, read from one file: a file rebuilt under the count (or not yet read
        # back to `since`) would make every counter fall, which Prometheus takes for a reset.
        rebuilds = ledger.rebuilds
        if not all(ledger.cursor(account, kind).backfill_complete for kind in KINDS):
            return None
        with lock:
            made_in, counting = kept.get(account, (rebuilds, Counting()))
            if made_in != rebuilds:
                counting = Counting()
            totals = counting.update(ledger, account)
            if ledger.rebuilds != rebuilds:
                kept.pop(account, None)
                return None
            kept[account] = (rebuilds, counting)
            return totals

    return count


def build_pipeline(
    config: Config, live: CollectorRegistry, *, demo: bool = False, ledger: Ledger | None = None
) -> Pipeline:
    """Wire store, renderer, client, poller and activity sync for `config`; nothing runs until start().

    `ledger` is the process's one open ledger (it outlives reloads); None runs without activity.
    """
    enabled = config.activity.enabled and ledger is not None
    oddities = (*ODDITIES, *(RECORD_ODDITIES if enabled else ()))
    store = Store([a.name for a in config.accounts], REASONS, [(SHARED, TICKER_FAILURE)], oddities)
    settings = replace(Settings.from_config(config), demo=demo)
    activity_store = ActivityStore(
        [a.name for a in config.accounts], enabled, _count(ledger) if ledger is not None else None
    )
    renderer = Renderer(settings, store.view, live=live, activity=activity_store.view)
    renderer.attach(store)
    # The activity sync's four threads share the poller's client (and its clock offset).
    pool = len(config.accounts) + 2 + (4 if enabled else 0)
    client = Client(config.api_url, config.timeout, pool_size=pool, on_oddity=store.count_oddity)
    poller = Poller(config, client, store)
    sync = None
    if enabled and ledger is not None:
        _record_live_since(store, ledger)
        sync = ActivitySync(
            config.activity,
            config.accounts,
            ActivityClient.connect(client, config.activity.graph_api_url),
            ledger,
            gates=poller.gates,
            on_snapshot=activity_store.publish_snapshot,
            on_market=activity_store.publish_market,
            on_request=store.count_request,
            on_clock_offset=store.set_clock_offset,
            on_oddity=store.count_oddity,
            balances=lambda name: store.view().snapshots.get(name),
        )
    return Pipeline(config, store, renderer, poller, sync, activity_store)


def _carry_over_activity(old: Pipeline, new: Pipeline) -> None:
    """Hand unchanged accounts' activity state to the new sync, so activity_up and counters do not blink.

    Same key, same API, same activity settings; the carried cost basis is recomputed on the first pass.
    """
    if old.activity is None or new.activity is None or new.activity_store is None:
        return
    if old.config.activity != new.config.activity or old.config.api_url != new.config.api_url:
        return
    kept = set(old.config.accounts)
    view = old.activity_store.view() if old.activity_store is not None else None
    for account in new.config.accounts:
        health = old.activity.health.get(account.name)
        if account not in kept or health is None:
            continue
        health.changed = True
        new.activity.health[account.name] = health
        if view is not None and (snapshot := view.snapshots.get(account.name)) is not None:
            new.activity_store.publish_snapshot(snapshot)
    if view is not None and view.market is not None:
        new.activity_store.publish_market(view.market)


def _carry_over(old: Pipeline, new: Pipeline) -> None:
    """Seed the new store with what the old one knew of unchanged accounts, so nothing gaps or blinks.

    Only healthy accounts polled with the same key from the same API: a failing one starts as down.
    """
    if old.config.api_url != new.config.api_url:
        return
    view = old.store.view()
    kept = set(old.config.accounts)
    for account in new.config.accounts:
        snapshot, health = view.snapshots.get(account.name), view.health.get(account.name)
        if account in kept and snapshot is not None and health is not None and health.up:
            new.store.publish_balances(snapshot, health.poll_duration or 0.0)
    if view.prices is not None:
        new.store.publish_prices(view.prices)


class Service:
    """The HTTP server and the pipeline it serves; reload() swaps in a re-read configuration."""

    def __init__(
        self,
        server: ExporterServer,
        pipeline: Pipeline,
        status: ReloadStatus,
        live: CollectorRegistry,
        *,
        load: Callable[[], Config] | None = None,
        load_web: WebLoader | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.server = server
        self.ledger = ledger
        self.pipeline = pipeline
        self.status = status
        self._live = live
        # None in --demo: the demo's configuration is built in, there is no file to re-read.
        self._load = load
        self._load_web = load_web

    def start(self) -> None:
        """Start polling."""
        self.pipeline.start()

    def reload(self) -> bool:
        """Re-read the configuration and the web configuration; on any error keep both running ones."""
        try:
            config = self._load() if self._load is not None else self.pipeline.config
            apply_web = self._load_web() if self._load_web is not None else None
        except (ConfigError, WebConfigError) as exc:
            self._failed("; ".join(exc.problems))
            return False
        except Exception as exc:  # a bug must not take down a running exporter: keep serving
            log.error("reload failed unexpectedly", exc_info=exc)
            self._failed(f"unexpected {type(exc).__name__}")
            return False
        for warning in config.warnings if config is not self.pipeline.config else ():
            log.warning(warning)
        if apply_web is not None:
            apply_web()
        if config == self.pipeline.config:
            log.info("reloaded: configuration unchanged, polling continues")
        else:
            self._swap(config)
            log.info(
                "reloaded: new configuration",
                extra={"accounts": len(config.accounts), "api_url": config.api_url},
            )
        self.status.succeeded()
        # The live part is cached for a second; the reload gauges must show this outcome at once.
        self.pipeline.renderer.live_metrics.invalidate()
        return True

    def _failed(self, why: str) -> None:
        log.error("reload failed, keeping the running configuration", extra={"err": why})
        self.status.failed()
        self.pipeline.renderer.live_metrics.invalidate()

    def _swap(self, config: Config) -> None:
        old = self.pipeline
        new = build_pipeline(config, self._live, demo=old.renderer.settings.demo, ledger=self.ledger)
        _carry_over(old, new)
        # The old poller stops before the new one starts: both at once would double the API calls.
        old.stop(timeout=1.0)
        _carry_over_activity(old, new)
        self.server.renderer = new.renderer
        self.server.view = new.store.view
        self.pipeline = new
        new.start()

    def stop(self) -> None:
        """Stop serving and polling."""
        self.server.shutdown()
        self.server.server_close()
        self.pipeline.stop(timeout=0.5)
