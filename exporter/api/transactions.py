"""The network side of account activity: signed transaction reads, exchangeinfo and graph-api history.

Every method makes one HTTP attempt through the shared Client (signing, clock correction, capped bodies,
ApiError reasons); retries, gates and pacing are the caller's (exporter.activity.sync).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from exporter.api.account import Account
from exporter.api.candles import DAILY, Candle, parse_klines, parse_ohlcs
from exporter.api.client import Client, RequestHook
from exporter.api.market import EXCHANGE_INFO, MarketStatus, parse_exchange_info
from exporter.api.records import ENDPOINTS, Kind, Skipped, Trade, Transfer, parse_trades, parse_transfers

KLINES = "/v1/klines/history"
OHLCS = "/v1/ohlcs"

Record = Trade | Transfer


def _trades(payload: Any, skipped: list[Skipped] | None) -> Sequence[Record]:
    return parse_trades(payload, skipped)


def _crypto(payload: Any, skipped: list[Skipped] | None) -> Sequence[Record]:
    return parse_transfers(payload, "crypto", skipped)


def _fiat(payload: Any, skipped: list[Skipped] | None) -> Sequence[Record]:
    return parse_transfers(payload, "fiat", skipped)


_PARSERS: dict[Kind, Callable[[Any, list[Skipped] | None], Sequence[Record]]] = {
    "trade": _trades,
    "crypto": _crypto,
    "fiat": _fiat,
}


class ActivityClient:
    """Reads for the activity sync: `rest` talks to api_url, `graph` to graph_api_url."""

    def __init__(self, rest: Client, graph: Client) -> None:
        self.rest = rest
        self.graph = graph

    @classmethod
    def connect(cls, rest: Client, graph_api_url: str) -> ActivityClient:
        """Share the poller's REST client (its clock offset signs these reads too); graph-api apart."""
        return cls(rest, Client(graph_api_url, rest.total_timeout))

    def records(
        self,
        account: Account,
        kind: Kind,
        start_ms: int,
        end_ms: int,
        hook: RequestHook | None = None,
        deadline: float | None = None,
        skipped: list[Skipped] | None = None,
    ) -> Sequence[Record]:
        """One account's trades or transfers with timestamps in [start_ms, end_ms] (one signed GET).

        With `skipped`, items that cannot be parsed are left out and listed there (records.parse_*).
        """
        query = urlencode({"startDate": start_ms, "endDate": end_ms})

        def parse(payload: Any) -> Sequence[Record]:
            found: list[Skipped] = []
            records = _PARSERS[kind](payload, None if skipped is None else found)
            if skipped is not None:  # only an answer that parsed: a retried attempt adds nothing twice
                skipped.extend(found)
            return records

        return self.rest.get_json(
            ENDPOINTS[kind], parse, query=query, account=account, hook=hook, deadline=deadline
        )

    def market(
        self, now_s: float, hook: RequestHook | None = None, deadline: float | None = None
    ) -> MarketStatus:
        """The public exchangeinfo, as pairs that trade and assets that can be deposited or withdrawn."""

        def parse(payload: Any) -> MarketStatus:
            return parse_exchange_info(payload, now_s)

        return self.rest.get_json(EXCHANGE_INFO, parse, hook=hook, deadline=deadline)

    def candles(
        self,
        base: str,
        quote: str,
        resolution: str,
        from_s: int,
        to_s: int,
        hook: RequestHook | None = None,
        deadline: float | None = None,
    ) -> Sequence[Candle]:
        """Closes of `base`/`quote` candles starting in [from_s, to_s]: hourly (`60`) or daily (`1D`)."""
        if resolution == DAILY:
            query = urlencode({"pair": base + quote, "from": from_s, "to": to_s})
            return self.graph.get_json(OHLCS, parse_ohlcs, query=query, hook=hook, deadline=deadline)
        query = urlencode({"symbol": f"{base}_{quote}", "resolution": resolution, "from": from_s, "to": to_s})
        return self.graph.get_json(KLINES, parse_klines, query=query, hook=hook, deadline=deadline)
