"""Market status from `/api/v2/server/exchangeinfo`: which pairs trade, which assets move in and out.

Withdrawals and deposits come from `data.currencyOperationBlocks` (`withdrawalDisabled`,
`depositDisabled`) or, failing that, from switches on `data.currencies[]`. Either may be missing, and
absent means unknown (None), never enabled: a user is not told money can move when nobody said so.

A pair's `commissionFromNumerator` (boolean) says its buys pay fee and tax in the numerator, the asset
bought (api.records.Trade). Only a boolean is read: absent or anything else leaves the pair out of
`commission_from_numerator`, and such a pair follows the vendor notes' rule (fees in the denominator).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from exporter.api.parsing import BadResponse, unwrap

EXCHANGE_INFO = "/api/v2/server/exchangeinfo"

# Per-currency switches, as (field, True means enabled). The vendor's notes name no exact spelling
# for these, so the spellings clients have used are read; a block entry overrides them all.
_DEPOSIT_SWITCHES = (("depositEnabled", True), ("isDepositEnabled", True), ("depositDisabled", False))
_WITHDRAWAL_SWITCHES = (
    ("withdrawalEnabled", True),
    ("isWithdrawalEnabled", True),
    ("withdrawalDisabled", False),
)


@dataclass(frozen=True)
class MarketStatus:
    """One exchangeinfo answer: which pairs trade, which assets can move (None: unknown)."""

    fetched_s: float
    pairs: Mapping[str, tuple[str, str]]  # BTCTRY -> (BTC, TRY)
    trading: Mapping[str, bool]  # BTCTRY -> status == TRADING
    deposits: Mapping[str, bool | None]  # BTC -> enabled
    withdrawals: Mapping[str, bool | None]
    # BTCTRY -> commissionFromNumerator, only for pairs whose entry carries a boolean
    commission_from_numerator: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip() and len(value) <= 32 and value.isprintable():
        return value.strip().upper()
    return None


def _switch(entry: Mapping[str, Any], switches: tuple[tuple[str, bool], ...]) -> bool | None:
    for name, means_enabled in switches:
        value = entry.get(name)
        if isinstance(value, bool):
            return value if means_enabled else not value
    return None


def parse_exchange_info(payload: object, fetched_s: float) -> MarketStatus:
    """Parse an exchangeinfo answer (envelope included); entries without a usable name are skipped."""
    data = unwrap(payload)
    if not isinstance(data, Mapping):
        raise BadResponse(f"{EXCHANGE_INFO} data: expected an object")
    symbols = data.get("symbols")
    if not isinstance(symbols, list):
        raise BadResponse(f"{EXCHANGE_INFO} data.symbols: expected a list")
    pairs: dict[str, tuple[str, str]] = {}
    trading: dict[str, bool] = {}
    from_numerator: dict[str, bool] = {}
    for entry in symbols:
        if not isinstance(entry, Mapping):
            continue
        base, quote = _text(entry.get("numerator")), _text(entry.get("denominator"))
        name = _text(entry.get("name")) or (base + quote if base and quote else None)
        if name is None or base is None or quote is None:
            continue
        pairs[name] = (base, quote)
        trading[name] = entry.get("status") == "TRADING"
        if isinstance(entry.get("commissionFromNumerator"), bool):
            from_numerator[name] = entry["commissionFromNumerator"]
    deposits: dict[str, bool | None] = {}
    withdrawals: dict[str, bool | None] = {}
    currencies = data.get("currencies")
    for entry in currencies if isinstance(currencies, list) else ():
        symbol = _text(entry.get("symbol")) if isinstance(entry, Mapping) else None
        if symbol is not None and isinstance(entry, Mapping):
            deposits[symbol] = _switch(entry, _DEPOSIT_SWITCHES)
            withdrawals[symbol] = _switch(entry, _WITHDRAWAL_SWITCHES)
    blocks = data.get("currencyOperationBlocks")
    for entry in blocks if isinstance(blocks, list) else ():
        symbol = _text(entry.get("currencySymbol")) if isinstance(entry, Mapping) else None
        if symbol is None or not isinstance(entry, Mapping):
            continue
        if isinstance(entry.get("depositDisabled"), bool):
            deposits[symbol] = not entry["depositDisabled"]
        else:
            deposits.setdefault(symbol, None)
        if isinstance(entry.get("withdrawalDisabled"), bool):
            withdrawals[symbol] = not entry["withdrawalDisabled"]
        else:
            withdrawals.setdefault(symbol, None)
    return MarketStatus(
        fetched_s,
        MappingProxyType(pairs),
        MappingProxyType(trading),
        MappingProxyType(deposits),
        MappingProxyType(withdrawals),
        MappingProxyType(from_numerator),
    )
