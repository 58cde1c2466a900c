"""Render the store as Prometheus text exposition, once per change, with its gzip form cached too.

Balance, value and ticker series only change when a poll lands, so their text is rendered on the
thread that publishes the snapshot (Renderer.attach), from per-account fragments rendered once per
snapshot. Each fragment is also kept as its own gzip member: a gzip stream may hold several members
back to back, so a compressed scrape is a join, not a compression of megabytes. A scrape serves the
latest rendered body as it is; only the small health and counter part is rendered per store change,
and the process metrics at most once a second.
"""

from __future__ import annotations

import gzip
import math
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Context, Decimal
from functools import cached_property

from prometheus_client import CollectorRegistry
from prometheus_client.utils import floatToGoString

from exporter import __version__
from exporter.activity_render import render_activity
from exporter.activity_store import ActivityView
from exporter.config import Config
from exporter.live import LiveMetrics, live_registry
from exporter.parsing import Balance, Ticker
from exporter.snapshot import AccountSnapshot, PriceSnapshot, Store, View
from exporter.valuation import Market, market_for, pairs_for_valuation, value_balances

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TICKER_FAILURE = "ticker"

# (name, type, help) in exposition order.
BALANCE_FAMILIES = (
    ("btcturk_balance", "Total balance of the asset (free + locked), in units of the asset."),
    ("btcturk_balance_free", "Balance of the asset available for trading or withdrawal."),
    ("btcturk_balance_locked", "Balance of the asset locked in open orders or pending operations."),
    ("btcturk_balance_order_fund", "Balance of the asset held by open orders."),
    ("btcturk_balance_request_fund", "Balance of the asset held by pending withdrawal requests."),
)
VALUE_FAMILIES = (
    ("btcturk_balance_value", "Value of the asset's total balance in the valuation currency."),
    ("btcturk_balance_free_value", "Value of the asset's free balance in the valuation currency."),
    ("btcturk_balance_locked_value", "Value of the asset's locked balance in the valuation currency."),
    (
        "btcturk_portfolio_value",
        "Value of every priced asset of the account, summed, in the valuation currency.",
    ),
    (
        "btcturk_unpriced_assets",
        "Non-zero assets of the account with no price route to the valuation currency.",
    ),
)
TICKER_FAMILIES = (
    ("btcturk_ticker_last", "Last trade price of the pair, in units of the quote asset."),
    ("btcturk_ticker_bid", "Best bid price of the pair, in units of the quote asset."),
    ("btcturk_ticker_ask", "Best ask price of the pair, in units of the quote asset."),
    (
        "btcturk_ticker_volume",
        "Traded volume of the pair over the last 24 hours, in units of the base asset.",
    ),
)

# Values are products of prices; more digits than a float64 holds would only grow the scrape.
_VALUE_CONTEXT = Context(prec=17)
_FLOAT_MAX = Decimal(sys.float_info.max)


def escape_label(value: str) -> str:
    """Escape a label value for the text format."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _header(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {_escape_help(help_text)}\n# TYPE {name} {kind}\n"


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs) + "}"


def format_decimal(value: Decimal) -> str:
    """Exact decimal text; Prometheus parses it as a float64."""
    return str(value)


def format_value(value: Decimal) -> str:
    """A computed value, rounded to what a float64 can carry; beyond its range, +Inf or -Inf."""
    # Checked before rounding: plus() raises Overflow past the context's exponent limit, and Prometheus
    # refuses a whole scrape holding a number beyond float64 (amount times price can get there).
    if value.copy_abs() > _FLOAT_MAX:
        return "-Inf" if value.is_signed() else "+Inf"
    return str(_VALUE_CONTEXT.plus(value))


def format_float(value: float) -> str:
    """A float in the text format's spelling (NaN, +Inf, 1e-05)."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    return text


class Chunk:
    """A piece of exposition text and, computed on first use, its gzip member."""

    __slots__ = ("__dict__", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    @cached_property
    def gz(self) -> bytes:
        """This chunk as one gzip member; members concatenate into a valid gzip stream."""
        # mtime=0 keeps the bytes reproducible.
        return gzip.compress(self.raw, compresslevel=6, mtime=0)


EMPTY = Chunk(b"")


@dataclass(frozen=True)
class Settings:
    """What the metrics layer needs from the configuration."""

    poll_interval: float
    max_staleness: float
    value_currencies: tuple[str, ...]
    value_price: str
    export_all_pairs: bool
    # True in --demo: every number comes from the built-in simulator's made-up accounts.
    demo: bool = False

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        """Take the rendering settings from a loaded configuration."""
        return cls(
            poll_interval=config.poll_interval,
            max_staleness=config.max_staleness,
            value_currencies=config.value_currencies,
            value_price=config.value_price,
            export_all_pairs=config.export_all_pairs,
        )


@dataclass(frozen=True)
class _AccountChunks:
    balances: tuple[Balance, ...]
    prices: PriceSnapshot | None
    families: dict[str, Chunk]


# One sample to render: family name, rendered label set, value text.
Sample = tuple[str, str, str]


def _chunks(families: Sequence[tuple[str, str]], samples: Iterable[Sample]) -> dict[str, Chunk]:
    """Group samples by family, one Chunk per family (empty when it has none)."""
    lines: dict[str, list[str]] = {name: [] for name, _ in families}
    for name, labels, value in samples:
        lines[name].append(f"{name}{labels} {value}\n")
    return {name: Chunk("".join(text).encode()) for name, text in lines.items()}


def _balance_samples(account: str, balances: Sequence[Balance]) -> Iterator[Sample]:
    acct = escape_label(account)
    for b in balances:
        labels = f'{{account="{acct}",asset="{escape_label(b.asset)}"}}'
        yield "btcturk_balance", labels, format_decimal(b.balance)
        yield "btcturk_balance_free", labels, format_decimal(b.free)
        yield "btcturk_balance_locked", labels, format_decimal(b.locked)
        yield "btcturk_balance_order_fund", labels, format_decimal(b.order_fund)
        yield "btcturk_balance_request_fund", labels, format_decimal(b.request_fund)


# A ticker snapshot indexed for valuation, with its routes cached per set of pairs.
PriceIndex = Market


def price_index(prices: PriceSnapshot) -> PriceIndex:
    """The ticker snapshot indexed for valuation; built once per snapshot and shared by every account."""
    return market_for(prices.tickers)


def _value_samples(
    account: str, balances: Sequence[Balance], index: PriceIndex, settings: Settings
) -> Iterator[Sample]:
    acct = escape_label(account)
    valuation = value_balances(balances, index, settings.value_currencies, settings.value_price)
    for v in valuation.values:
        labels = f'{{account="{acct}",asset="{escape_label(v.asset)}",currency="{escape_label(v.currency)}"}}'
        yield "btcturk_balance_value", labels, format_value(v.balance)
        yield "btcturk_balance_free_value", labels, format_value(v.free)
        yield "btcturk_balance_locked_value", labels, format_value(v.locked)
    for currency, total in valuation.totals:
        yield (
            "btcturk_portfolio_value",
            f'{{account="{acct}",currency="{escape_label(currency)}"}}',
            format_value(total),
        )
    for currency, count in valuation.unpriced:
        yield (
            "btcturk_unpriced_assets",
            f'{{account="{acct}",currency="{escape_label(currency)}"}}',
            str(count),
        )


def _ticker_samples(tickers: Iterable[Ticker]) -> Iterator[Sample]:
    for t in tickers:
        labels = _labels((("pair", t.pair), ("base", t.base), ("quote", t.quote)))
        yield "btcturk_ticker_last", labels, format_decimal(t.last)
        yield "btcturk_ticker_bid", labels, format_decimal(t.bid)
        yield "btcturk_ticker_ask", labels, format_decimal(t.ask)
        yield "btcturk_ticker_volume", labels, format_decimal(t.volume)


def _health_text(view: View, settings: Settings) -> str:
    parts: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, str]]) -> None:
        parts.append(_header(name, kind, help_text))
        parts.extend(f"{name}{labels} {value}\n" for labels, value in samples)

    accounts = view.accounts
    family(
        "btcturk_up",
        "gauge",
        "1 if the last poll of the account's balances succeeded, 0 otherwise.",
        ((_labels([("account", a)]), "1" if view.health[a].up else "0") for a in accounts),
    )
    family(
        "btcturk_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful balance poll of the account.",
        (
            (_labels([("account", a)]), format_float(h.last_success))
            for a in accounts
            if (h := view.health[a]).last_success is not None
        ),
    )
    family(
        "btcturk_poll_duration_seconds",
        "gauge",
        "Duration of the last balance poll of the account, retries included.",
        (
            (_labels([("account", a)]), format_float(h.poll_duration))
            for a in accounts
            if (h := view.health[a]).poll_duration is not None
        ),
    )
    family(
        "btcturk_api_requests_total",
        "counter",
        "HTTP requests made to the BTCTurk API, by account (empty for shared calls), endpoint and "
        "status code (or timeout/connection when there was no answer).",
        (
            (_labels([("account", a), ("endpoint", e), ("code", c)]), str(n))
            for (a, e, c), n in sorted(view.requests.items())
        ),
    )
    family(
        "btcturk_poll_failures_total",
        "counter",
        "Polls that failed after retries, by account (empty for the shared ticker) and reason.",
        ((_labels([("account", a), ("reason", r)]), str(n)) for (a, r), n in sorted(view.failures.items())),
    )
    family(
        "btcturk_api_oddities_total",
        "counter",
        "Oddities in API answers that the exporter worked around, by endpoint and kind "
        "(duplicate_pair: a ticker row for a pair already listed, left out).",
        ((_labels([("endpoint", e), ("kind", k)]), str(n)) for (e, k), n in sorted(view.oddities.items())),
    )
    if view.clock_offset is not None:
        family(
            "btcturk_clock_offset_seconds",
            "gauge",
            "Offset of the API server's clock from the local clock (server minus local), as last measured.",
            (("", format_float(view.clock_offset)),),
        )
    if view.prices is not None:
        family(
            "btcturk_ticker_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful ticker poll.",
            (("", format_float(view.prices.taken_at)),),
        )
    family(
        "btcturk_poll_interval_seconds",
        "gauge",
        "Configured interval between polls of each account.",
        (("", format_float(settings.poll_interval)),),
    )
    family(
        "btcturk_exporter_demo",
        "gauge",
        "1 if the exporter serves made-up demo accounts from its built-in simulator (--demo), 0 otherwise.",
        (("", "1" if settings.demo else "0"),),
    )
    family(
        "btcturk_exporter_build_info",
        "gauge",
        "Version of the exporter and of Python it runs on; always 1.",
        ((_labels([("version", __version__), ("python_version", platform.python_version())]), "1"),),
    )
    return "".join(parts)


# Header chunks are the same in every body; their gzip members are compressed once per process.
_HEADERS = {
    name: Chunk(_header(name, "gauge", help_text).encode())
    for name, help_text in (*BALANCE_FAMILIES, *VALUE_FAMILIES, *TICKER_FAMILIES)
}


@dataclass(frozen=True, eq=False)
class _Body:
    """The snapshot-derived part of a scrape for one set of fresh snapshots, plain and gzip."""

    accounts: tuple[AccountSnapshot, ...]
    families: tuple[dict[str, Chunk], ...]  # per account, in the order of accounts
    prices: PriceSnapshot | None
    index: PriceIndex | None
    plain: bytes
    gz: bytes
    # Monotonic time after which one of its snapshots is stale and the body must not be served.
    fresh_until: float
    # For a body cut down because snapshots went stale: the body it was cut from.
    source: _Body | None = None


_EMPTY_BODY = _Body((), (), None, None, b"", b"", math.inf)


def _fresh_until(
    accounts: Sequence[AccountSnapshot], prices: PriceSnapshot | None, max_staleness: float
) -> float:
    taken = [s.taken_mono for s in accounts]
    if prices is not None:
        taken.append(prices.taken_mono)
    return min(taken, default=math.inf) + max_staleness


def _asset_names(accounts: Iterable[AccountSnapshot]) -> dict[str, str]:
    names: dict[str, str] = {}
    for snapshot in accounts:
        for b in snapshot.balances:
            names.setdefault(b.asset, b.asset_name)
    return names


def _ticker_chunks(
    settings: Settings, prices: PriceSnapshot, index: PriceIndex, assets: frozenset[str]
) -> dict[str, Chunk]:
    tickers: Iterable[Ticker] = prices.tickers
    if not settings.export_all_pairs:
        wanted = pairs_for_valuation(assets, settings.value_currencies, index, settings.value_price)
        tickers = [t for t in prices.tickers if t.pair in wanted]
    return _chunks(TICKER_FAMILIES, _ticker_samples(tickers))


def _assemble(
    per_account: Sequence[dict[str, Chunk]], names: Mapping[str, str], tickers: dict[str, Chunk] | None
) -> tuple[bytes, bytes]:
    """Join cached chunks family by family (plain text, and gzip members); tickers None means no prices."""
    chunks: list[Chunk] = []

    def emit(families: Sequence[tuple[str, str]], sources: Sequence[dict[str, Chunk]]) -> None:
        for name, _ in families:
            parts = [src[name] for src in sources if src[name].raw]
            if parts:
                chunks.append(_HEADERS[name])
                chunks.extend(parts)

    emit(BALANCE_FAMILIES, per_account)
    if names:
        info = "".join(
            f"btcturk_asset_info{_labels((('asset', a), ('asset_name', n)))} 1\n"
            for a, n in sorted(names.items())
        )
        header = _header("btcturk_asset_info", "gauge", "Asset symbols and their names; always 1.")
        chunks.append(Chunk((header + info).encode()))
    if tickers is not None:
        emit(VALUE_FAMILIES, per_account)
        emit(TICKER_FAMILIES, [tickers])
    return b"".join(c.raw for c in chunks), b"".join(c.gz for c in chunks)


def _same(old: object, new: tuple[object, object, tuple[object, ...]]) -> bool:
    """Whether a cache key matches by identity: views and snapshots are immutable, and new when changed."""
    if not isinstance(old, tuple) or len(old) != 3 or len(old[2]) != len(new[2]):
        return False
    return old[0] is new[0] and old[1] is new[1] and all(a is b for a, b in zip(old[2], new[2], strict=True))


class Renderer:
    """Turns store views into exposition bytes.

    The big part (balances, values, tickers) is rendered by refresh(), which attach() has the store
    call on the thread that publishes a snapshot; a scrape takes the latest rendered body as it is and
    never waits for a render in progress. Without attach(), a scrape refreshes first (tests, tools).
    """

    def __init__(
        self,
        settings: Settings,
        view: Callable[[], View],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        live: CollectorRegistry | None = None,
        activity: Callable[[], ActivityView] | None = None,
    ) -> None:
        self.settings = settings
        self._view = view
        self._activity_view = activity
        self._activity: tuple[object, Chunk] | None = None
        self._activity_lock = threading.Lock()
        self._monotonic = monotonic
        self.live_metrics = LiveMetrics(live if live is not None else live_registry(), monotonic=monotonic)
        self._attached = False
        # One render at a time (several poller threads publish); once attached, scrapes never take it.
        self._render_lock = threading.Lock()
        # One cut-down body at a time when snapshots go stale between publishes.
        self._trim_lock = threading.Lock()
        # One health render per store change, however many scrapes arrive right after it.
        self._health_lock = threading.Lock()
        self._accounts: dict[str, _AccountChunks] = {}
        self._index: tuple[PriceSnapshot, PriceIndex] | None = None
        self._tickers: tuple[PriceSnapshot, frozenset[str] | None, dict[str, Chunk]] | None = None
        self._body = _EMPTY_BODY
        self._trimmed: _Body | None = None
        self._health: tuple[View, Chunk] | None = None

    def attach(self, store: Store) -> None:
        """Render on every publish into `store`, on the publishing thread, starting now."""
        store.on_publish(self.refresh)
        self._attached = True
        self.refresh()

    def _fresh(self, taken_mono: float, now: float) -> bool:
        return now - taken_mono <= self.settings.max_staleness

    # --- rendering, on the publishing thread ------------------------------------------------------

    def _price_index(self, prices: PriceSnapshot) -> PriceIndex:
        if self._index is None or self._index[0] is not prices:
            self._index = (prices, price_index(prices))
        return self._index[1]

    def _account_chunks(
        self, snapshot: AccountSnapshot, prices: PriceSnapshot | None, index: PriceIndex | None
    ) -> dict[str, Chunk]:
        # Keyed on the balances tuple, not the snapshot: the poller hands back the same tuple when
        # nothing changed, so an unchanged account costs no rendering however often it is polled.
        cached = self._accounts.get(snapshot.account)
        same_balances = cached is not None and cached.balances is snapshot.balances
        if cached and same_balances and cached.prices is prices:
            return cached.families
        families = (
            dict(cached.families)
            if cached and same_balances
            else _chunks(BALANCE_FAMILIES, _balance_samples(snapshot.account, snapshot.balances))
        )
        if prices is not None and index is not None:
            families.update(
                _chunks(
                    VALUE_FAMILIES, _value_samples(snapshot.account, snapshot.balances, index, self.settings)
                )
            )
        else:
            families.update({name: EMPTY for name, _ in VALUE_FAMILIES})
        for chunk in families.values():
            chunk.gz  # noqa: B018  # compressed here, on the publishing thread, not by a scrape
        self._accounts[snapshot.account] = _AccountChunks(snapshot.balances, prices, families)
        return families

    def _cached_ticker_chunks(
        self, prices: PriceSnapshot, index: PriceIndex, assets: frozenset[str]
    ) -> dict[str, Chunk]:
        wanted = None if self.settings.export_all_pairs else assets
        cached = self._tickers
        # Identity for the snapshot: comparing hundreds of tickers by value would cost a render's worth.
        if cached is None or cached[0] is not prices or cached[1] != wanted:
            cached = (prices, wanted, _ticker_chunks(self.settings, prices, index, assets))
            self._tickers = cached
        return cached[2]

    def _render(self, fresh: tuple[AccountSnapshot, ...], prices: PriceSnapshot | None) -> _Body:
        index = self._price_index(prices) if prices is not None else None
        families = tuple(self._account_chunks(s, prices, index) for s in fresh)
        names = _asset_names(fresh)
        tickers = None
        if prices is not None and index is not None:
            tickers = self._cached_ticker_chunks(prices, index, frozenset(names))
        plain, gz = _assemble(families, names, tickers)
        # Forget accounts that are no longer rendered so their text can be freed.
        for name in set(self._accounts) - {s.account for s in fresh}:
            del self._accounts[name]
        fresh_until = _fresh_until(fresh, prices, self.settings.max_staleness)
        return _Body(fresh, families, prices, index, plain, gz, fresh_until)

    def refresh(self) -> None:
        """Render the body for the store's current fresh snapshots, unless that is the body already."""
        with self._render_lock:
            view = self._view()
            now = self._monotonic()
            snapshots = (view.snapshots.get(a) for a in view.accounts)
            fresh = tuple(s for s in snapshots if s is not None and self._fresh(s.taken_mono, now))
            prices = view.prices
            if prices is not None and not self._fresh(prices.taken_mono, now):
                prices = None
            body = self._body
            if body.prices is prices and len(body.accounts) == len(fresh):
                pairs = list(zip(body.accounts, fresh, strict=True))
                if all(old is new for old, new in pairs):
                    return
                if all(old.account == new.account and old.balances is new.balances for old, new in pairs):
                    # Re-polled, nothing changed: the same text, with the new snapshots' ages.
                    until = _fresh_until(fresh, prices, self.settings.max_staleness)
                    self._body = replace(body, accounts=fresh, fresh_until=until, source=None)
                    return
            self._body = self._render(fresh, prices)

    # --- serving, on the scrape's thread ----------------------------------------------------------

    def _trim(self, body: _Body, now: float) -> _Body:
        """`body` without the snapshots that went stale since it was rendered: a join of cached chunks."""
        with self._trim_lock:
            trimmed = self._trimmed
            if trimmed is not None and trimmed.source is body and now <= trimmed.fresh_until:
                return trimmed
            kept = [
                (s, f)
                for s, f in zip(body.accounts, body.families, strict=True)
                if self._fresh(s.taken_mono, now)
            ]
            accounts = tuple(s for s, _ in kept)
            families = tuple(f for _, f in kept)
            prices, index = body.prices, body.index
            if prices is None or index is None or not self._fresh(prices.taken_mono, now):
                prices = index = None
            names = _asset_names(accounts)
            tickers = None
            if prices is not None and index is not None:
                tickers = _ticker_chunks(self.settings, prices, index, frozenset(names))
            plain, gz = _assemble(families, names, tickers)
            until = _fresh_until(accounts, prices, self.settings.max_staleness)
            trimmed = _Body(accounts, families, prices, index, plain, gz, until, source=body)
            self._trimmed = trimmed
            return trimmed

    def _current(self) -> _Body:
        if not self._attached:
            self.refresh()
        body = self._body
        now = self._monotonic()
        if now <= body.fresh_until:
            return body
        return self._trim(body, now)

    def body(self, gzipped: bool = False) -> bytes:
        """The balance, value and ticker series as last rendered (plain, or as gzip members)."""
        body = self._current()
        return body.gz if gzipped else body.plain

    def health(self, gzipped: bool = False) -> bytes:
        """The health and counter series, rendered once per store generation."""
        view = self._view()
        cached = self._health
        if cached is None or cached[0] is not view:
            with self._health_lock:
                cached = self._health
                if cached is None or cached[0] is not view:
                    chunk = Chunk(_health_text(view, self.settings).encode())
                    chunk.gz  # noqa: B018  # once, under the lock, not once per waiting scrape
                    cached = (view, chunk)
                    self._health = cached
        return cached[1].gz if gzipped else cached[1].raw

    def activity(self, gzipped: bool = False) -> bytes:
        """The activity families, rendered once per activity change or newly rendered balance body."""
        if self._activity_view is None:
            return b""
        view = self._activity_view()
        body = self._current()
        key = (view, body.prices, tuple(s.balances for s in body.accounts))
        with self._activity_lock:
            cached = self._activity
            if cached is None or not _same(cached[0], key):
                balances = {s.account: s for s in body.accounts}
                text = render_activity(
                    view, balances, body.index, self.settings.value_currencies, self.settings.value_price
                )
                cached = (key, Chunk(text.encode()))
                self._activity = cached
        return cached[1].gz if gzipped else cached[1].raw

    def live(self, gzipped: bool = False) -> bytes:
        """Process and runtime metrics, read at most once per LIVE_TTL."""
        return self.live_metrics.get(gzipped)

    def exposition(self, gzipped: bool = False) -> bytes:
        """The store's series, body and health joined (plain, or as gzip members)."""
        return self.body(gzipped) + self.health(gzipped) + self.activity(gzipped)

    def scrape_parts(self, gzipped: bool = False) -> tuple[bytes, bytes, bytes]:
        """A whole /metrics answer as body, health and live part, to be written one after the other.

        Writing them separately spares every scrape copying megabytes into a fresh buffer, which
        also kept that much freed memory resident in the malloc arena of every connection's thread.
        """
        return self.body(gzipped), self.health(gzipped) + self.activity(gzipped), self.live(gzipped)

    def scrape(self, gzipped: bool = False) -> bytes:
        """A whole /metrics answer."""
        return b"".join(self.scrape_parts(gzipped))
