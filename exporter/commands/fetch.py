"""The one-shot activity sync the subcommands fetch through: `backfill`'s records and balances, and the
past prices a ledger reader given --config.file lacks (common.price_source).

Apart from common.py because it brings in the API client and the activity pipeline (requests,
tenacity, prometheus_client): a ledger read without --config.file never fetches, and never imports it.
"""

from __future__ import annotations

from collections.abc import Callable

from exporter.activity.sync import ActivitySync
from exporter.api.client import Client
from exporter.api.ratelimit import Gates
from exporter.api.transactions import ActivityClient
from exporter.config.activity_settings import ActivitySettings
from exporter.config.loader import Config
from exporter.ledger.store import Ledger


def make_sync(
    config: Config,
    settings: ActivitySettings,
    ledger: Ledger,
    on_request: Callable[[str, str, str], None] | None = None,
) -> ActivitySync:
    """A one-shot activity sync of every configured account, its price history on the ledger's cache."""
    rest = Client(config.api_url, config.timeout)
    client = ActivityClient(rest, Client(settings.graph_api_url, config.timeout))
    sync = ActivitySync(
        settings,
        config.accounts,
        client,
        ledger,
        gates=Gates(),
        on_snapshot=lambda _: None,
        on_request=on_request,
    )
    sync.publisher.fetch.ask_gaps_at_once = True
    return sync
