"""The series the exporter publishes: family definitions, the samples of each, and their assembly."""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from exporter import __version__
from exporter.api.parsing import Balance, Ticker
from exporter.config.loader import Config
from exporter.metrics.exposition import (
    Chunk,
    Sample,
    chunks,
    escape_label,
    format_decimal,
    format_float,
    format_value,
    header,
    labels,
)
from exporter.metrics.families import BALANCE_FAMILIES, TICKER_FAMILIES, VALUE_FAMILIES
from exporter.poll.snapshot import AccountSnapshot, PriceSnapshot, View
from exporter.pricing.valuation import Market, market_for, pairs_for_valuation, value_balances

TICKER_FAILURE = "ticker"


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


def _balance_samples(account: str, balances: Sequence[Balance]) -> Iterator[Sample]:
    acct = escape_label(account)
    for b in balances:
        tags = f'{{account="{acct}",asset="{escape_label(b.asset)}"}}'
        yield "btcturk_balance", tags, format_decimal(b.balance)
        yield "btcturk_balance_free", tags, format_decimal(b.free)
        yield "btcturk_balance_locked", tags, format_decimal(b.locked)
        yield "btcturk_balance_order_fund", tags, format_decimal(b.order_fund)
        yield "btcturk_balance_request_fund", tags, format_decimal(b.request_fund)


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
        tags = f'{{account="{acct}",asset="{escape_label(v.asset)}",currency="{escape_label(v.currency)}"}}'
        yield "btcturk_balance_value", tags, format_value(v.balance)
        yield "btcturk_balance_free_value", tags, format_value(v.free)
        yield "btcturk_balance_locked_value", tags, format_value(v.locked)
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


def balance_chunks(account: str, balances: Sequence[Balance]) -> dict[str, Chunk]:
    """The balance families of one account, one Chunk per family."""
    return chunks(BALANCE_FAMILIES, _balance_samples(account, balances))


def value_chunks(
    account: str, balances: Sequence[Balance], index: PriceIndex, settings: Settings
) -> dict[str, Chunk]:
    """The value families of one account, one Chunk per family."""
    return chunks(VALUE_FAMILIES, _value_samples(account, balances, index, settings))


def _ticker_samples(tickers: Iterable[Ticker]) -> Iterator[Sample]:
    for t in tickers:
        pair = labels((("pair", t.pair), ("base", t.base), ("quote", t.quote)))
        yield "btcturk_ticker_last", pair, format_decimal(t.last)
        yield "btcturk_ticker_bid", pair, format_decimal(t.bid)
        yield "btcturk_ticker_ask", pair, format_decimal(t.ask)
        yield "btcturk_ticker_volume", pair, format_decimal(t.volume)


def health_text(view: View, settings: Settings) -> str:
    """The health and counter families of a store view."""
    parts: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, str]]) -> None:
        parts.append(header(name, kind, help_text))
        parts.extend(f"{name}{tags} {value}\n" for tags, value in samples)

    accounts = view.accounts
    family(
        "btcturk_up",
        "gauge",
        "1 if the last poll of the account's balances succeeded, 0 otherwise.",
        ((labels([("account", a)]), "1" if view.health[a].up else "0") for a in accounts),
    )
    family(
        "btcturk_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful balance poll of the account.",
        (
            (labels([("account", a)]), format_float(h.last_success))
            for a in accounts
            if (h := view.health[a]).last_success is not None
        ),
    )
    family(
        "btcturk_poll_duration_seconds",
        "gauge",
        "Duration of the last balance poll of the account, retries included.",
        (
            (labels([("account", a)]), format_float(h.poll_duration))
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
            (labels([("account", a), ("endpoint", e), ("code", c)]), str(n))
            for (a, e, c), n in sorted(view.requests.items())
        ),
    )
    family(
        "btcturk_poll_failures_total",
        "counter",
        "Polls that failed after retries, by account (empty for the shared ticker) and reason.",
        ((labels([("account", a), ("reason", r)]), str(n)) for (a, r), n in sorted(view.failures.items())),
    )
    family(
        "btcturk_api_oddities_total",
        "counter",
        "Oddities in API answers that the exporter worked around, by endpoint and kind "
        "(duplicate_pair: a ticker row for a pair already listed, left out).",
        ((labels([("endpoint", e), ("kind", k)]), str(n)) for (e, k), n in sorted(view.oddities.items())),
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
        ((labels([("version", __version__), ("python_version", platform.python_version())]), "1"),),
    )
    return "".join(parts)


# Header chunks are the same in every body; their gzip members are compressed once per process.
_HEADERS = {
    name: Chunk(header(name, "gauge", help_text).encode())
    for name, help_text in (*BALANCE_FAMILIES, *VALUE_FAMILIES, *TICKER_FAMILIES)
}


def asset_names(accounts: Iterable[AccountSnapshot]) -> dict[str, str]:
    """Every asset of the snapshots, with its name as the first snapshot holding it spells it."""
    names: dict[str, str] = {}
    for snapshot in accounts:
        for b in snapshot.balances:
            names.setdefault(b.asset, b.asset_name)
    return names


def ticker_chunks(
    settings: Settings, prices: PriceSnapshot, index: PriceIndex, assets: frozenset[str]
) -> dict[str, Chunk]:
    """The ticker families: every pair, or only those that could value `assets` unless export_all_pairs."""
    tickers: Iterable[Ticker] = prices.tickers
    if not settings.export_all_pairs:
        wanted = pairs_for_valuation(assets, settings.value_currencies, index)
        tickers = [t for t in prices.tickers if t.pair in wanted]
    return chunks(TICKER_FAMILIES, _ticker_samples(tickers))


def assemble(
    per_account: Sequence[dict[str, Chunk]], names: Mapping[str, str], tickers: dict[str, Chunk] | None
) -> tuple[bytes, bytes]:
    """Join cached chunks family by family (plain text, and gzip members); tickers None means no prices."""
    joined: list[Chunk] = []

    def emit(families: Sequence[tuple[str, str]], sources: Sequence[dict[str, Chunk]]) -> None:
        for name, _ in families:
            parts = [src[name] for src in sources if src[name].raw]
            if parts:
                joined.append(_HEADERS[name])
                joined.extend(parts)

    emit(BALANCE_FAMILIES, per_account)
    if names:
        info = "".join(
            f"btcturk_asset_info{labels((('asset', a), ('asset_name', n)))} 1\n"
            for a, n in sorted(names.items())
        )
        info_header = header("btcturk_asset_info", "gauge", "Asset symbols and their names; always 1.")
        joined.append(Chunk((info_header + info).encode()))
    if tickers is not None:
        emit(VALUE_FAMILIES, per_account)
        emit(TICKER_FAMILIES, [tickers])
    return b"".join(c.raw for c in joined), b"".join(c.gz for c in joined)
