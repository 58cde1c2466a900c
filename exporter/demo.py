"""The --demo mode: the bundled simulator with made-up accounts, and a configuration that polls it."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from exporter.api.account import Account, Secret
from exporter.api.budget import DEFAULT_SHARE, format_seconds, per_instance, shortest_interval
from exporter.config.activity_settings import ActivitySettings
from exporter.config.loader import BALANCE_CALLS_PER_MINUTE, Config, ConfigError
from exporter.simulator import Simulator, demo_assets, generate_keypair
from exporter.simulator.backfill import PORTFOLIO

NAMES = ("main", "savings", "trading", "fund", "family")
MAX_ACCOUNTS = 20
# Months of seeded trades, deposits and withdrawals behind each demo balance, from the first start.
HISTORY_DAYS = 100
# The second account ("savings") opened earlier than the demo's activity.since: what it held then
# enters its ledger as opening positions (ledger/openings.py), as for any account older than since.
OLDER_ACCOUNT, OLDER_HISTORY_DAYS = 1, 270
# Between syncs of the demo's history (5 minutes by default): the unit value waits for two reads that
# agree with the balances, so the demo's returns would take over ten minutes to appear.
ACTIVITY_INTERVAL = 20.0
# What the demo's first account lists: the assets its history trades into, all priced (the others
# also list a token with no market, and every other asset at zero, which their live trading reaches).
PRICED = ("TRY", *PORTFOLIO)


@dataclass
class Demo:
    """A running demo simulator and the thread that makes its numbers drift."""

    simulator: Simulator
    drift_stop: threading.Event

    def stop(self) -> None:
        """Stop drifting and serving."""
        self.drift_stop.set()
        self.simulator.stop()


def default_accounts(poll_interval: float) -> int:
    """Three accounts, or as many as the planned share of the rate limit allows at this interval."""
    return max(1, min(3, per_instance(poll_interval, BALANCE_CALLS_PER_MINUTE, DEFAULT_SHARE)))


def start_demo(accounts: int | None, poll_interval: float) -> tuple[Config, Demo]:
    """Start the simulator on a free loopback port and return a configuration that polls it."""
    if accounts is None:
        accounts = default_accounts(poll_interval)
    if not 1 <= accounts <= MAX_ACCOUNTS:
        raise ConfigError([f"--demo.accounts: must be between 1 and {MAX_ACCOUNTS}, got {accounts}"])
    # The simulator enforces the real per-IP budget: the demo plans within the same share of it as a
    # real configuration, leaving the headroom that keeps retries from running into 429s.
    shortest = shortest_interval(accounts, BALANCE_CALLS_PER_MINUTE, DEFAULT_SHARE)
    if poll_interval < shortest:
        who = "1 account needs" if accounts == 1 else f"{accounts} accounts need"
        problem = (
            f"--demo.poll-interval: {who} at least {format_seconds(shortest)} "
            f"(rate_limit_share {DEFAULT_SHARE:g} of the API's per-IP limit)"
        )
        raise ConfigError([problem])
    sim = Simulator(host="127.0.0.1", port=0, seed=1).start()
    configured = []
    for index in range(accounts):
        public, private = generate_keypair(seed=index + 1)
        # The first account's unit value, and so the dashboards' returns, is known: every holding is
        # priced, and its live trading stays within assets its history holds, which the ledger has
        # reconciled (an asset newly held waits for two reads of the history that agree on it).
        days = OLDER_HISTORY_DAYS if index == OLDER_ACCOUNT else HISTORY_DAYS
        assets = None if index else [a for a in demo_assets(index + 1) if a.asset in PRICED]
        sim.add_account(public, private, assets, history_days=days, seed=index + 1)
        name = NAMES[index] if index < len(NAMES) else f"demo{index + 1}"
        configured.append(Account(name=name, public_key=public, private_key=Secret(private)))
    config = Config(
        accounts=tuple(configured),
        api_url=sim.url,
        poll_interval=poll_interval,
        timeout=min(5.0, poll_interval / 2),
        max_staleness=10 * poll_interval,
        # The simulator serves the graph-api too; its history starts HISTORY_DAYS ago (one account's
        # earlier), so the first backfill reads from just before that, not two years of empty windows.
        # Read often (ACTIVITY_INTERVAL): the demo's drift makes new records, the unit value waits for
        # two reads that agree, and the older account's openings follow the second reconciled read.
        activity=ActivitySettings(
            since=f"{HISTORY_DAYS + 1}d", graph_api_url=sim.url, interval=ACTIVITY_INTERVAL
        ),
    )
    stop = threading.Event()

    def drift() -> None:
        while not stop.wait(poll_interval):
            sim.drift()

    threading.Thread(target=drift, name="demo drift", daemon=True).start()
    return config, Demo(sim, stop)
