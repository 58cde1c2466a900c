"""What both sides of the activity sync share: the endpoint loops (endpoints.py) and the publisher."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exporter.activity.calls import Calls
from exporter.activity.ledger_watch import LedgerWatch
from exporter.activity.state import SyncHealth
from exporter.api.account import Account
from exporter.api.transactions import ActivityClient
from exporter.config.activity_settings import ActivitySettings
from exporter.ledger.store import Ledger


@dataclass(frozen=True)
class SyncContext:
    """The settings, accounts, API client, ledger, call gate and clocks of one ActivitySync.

    `health` is the sync's own mapping, shared and not copied: a reload may put a carried-over
    account's health in it, and both sides must see it.
    """

    settings: ActivitySettings
    accounts: tuple[Account, ...]
    client: ActivityClient
    ledger: Ledger
    calls: Calls
    health: Mapping[str, SyncHealth]
    watch: LedgerWatch
    clock: Callable[[], float]
    monotonic: Callable[[], float]
