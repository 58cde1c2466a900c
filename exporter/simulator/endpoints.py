"""The answers of the public and signed API endpoints, built from the simulator's state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from exporter.simulator.accounts import Account
from exporter.simulator.amounts import WIDE, ZERO, format_amount
from exporter.simulator.market import Listing, Market, Pair


def balance_rows(account: Account, stamp: int | None, comma: bool) -> list[dict[str, Any]]:
    """`data` of /api/v1/users/balances; older deployments send no `timestamp` (stamp None)."""
    rows = [
        {
            "asset": a.asset,
            "assetname": a.name,
            "balance": format_amount(a.free + a.locked, comma),
            "locked": format_amount(a.locked, comma),
            "free": format_amount(a.free, comma),
            "orderFund": format_amount(max(ZERO, a.locked - a.request_fund), comma),
            "requestFund": format_amount(a.request_fund, comma),
            "precision": a.precision,
        }
        for a in account.assets.values()
    ]
    if stamp is not None:
        for row in rows:
            row["timestamp"] = stamp
    return rows


def server_time(now: float) -> dict[str, Any]:
    """/api/v2/server/time: not wrapped in the envelope."""
    iso = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="microseconds")
    return {"serverTime": round(now * 1000), "serverTime2": iso}


def ticker_row(pair: Pair, stamp: int) -> dict[str, Any]:
    """One row of /api/v2/ticker; prices are JSON numbers there."""
    daily = pair.last - pair.open
    percent = (daily / pair.open * 100).quantize(Decimal("0.01"), context=WIDE) if pair.open else ZERO
    average = pair.q((pair.high + pair.low + pair.last) / 3)
    return {
        "pair": pair.name,
        "pairNormalized": f"{pair.numerator}_{pair.denominator}",
        "timestamp": stamp,
        "last": float(pair.last),
        "high": float(pair.high),
        "low": float(pair.low),
        "bid": float(pair.bid),
        "ask": float(pair.ask),
        "open": float(pair.open),
        "volume": float(pair.volume),
        "average": float(average),
        "daily": float(daily),
        "dailyPercent": float(percent),
        "denominatorSymbol": pair.denominator,
        "numeratorSymbol": pair.numerator,
        "order": pair.order,
    }


def exchange_info(
    market: Market, accounts: Iterable[Account], stamp: int, blocks: Mapping[str, tuple[bool, bool]] | None
) -> dict[str, Any]:
    """`data` of /api/v2/server/exchangeinfo: every pair, every currency listed or held, and (unless
    blocks is None) each currency's withdrawal and deposit switches."""
    pairs = list(market.pairs.values())
    currencies: dict[str, tuple[str, int, bool]] = {
        listing.symbol: (listing.name, listing.precision, listing.fiat) for listing in market.catalog
    }
    for account in accounts:
        for a in account.assets.values():
            currencies.setdefault(a.asset, (a.name, a.precision, False))
    for pair in pairs:
        for symbol in (pair.numerator, pair.denominator):
            currencies.setdefault(symbol, (symbol, 8, False))
    info: dict[str, Any] = {
        "timeZone": "UTC",
        "serverTime": stamp,
        "symbols": [_symbol_entry(i, p, market.listings.get(p.numerator)) for i, p in enumerate(pairs, 1)],
        "currencies": [
            {
                "id": i,
                "symbol": symbol,
                "name": name,
                "precision": precision,
                "currencyType": "FIAT" if fiat else "CRYPTO",
                "minWithdrawal": 0,
                "minDeposit": 0,
                "isAddressRenewable": False,
                "getAutoAddressDisabled": False,
                "isPartialWithdrawalEnabled": False,
                "isNew": False,
            }
            for i, (symbol, (name, precision, fiat)) in enumerate(currencies.items(), start=1)
        ],
    }
    if blocks is not None:
        info["currencyOperationBlocks"] = [
            {
                "currencySymbol": symbol,
                "withdrawalDisabled": blocks.get(symbol, (False, False))[0],
                "depositDisabled": blocks.get(symbol, (False, False))[1],
            }
            for symbol in currencies
        ]
    return info


def _symbol_entry(index: int, pair: Pair, listing: Listing | None) -> dict[str, Any]:
    return {
        "id": index,
        "name": pair.name,
        "nameNormalized": f"{pair.numerator}_{pair.denominator}",
        "status": "TRADING",
        "numerator": pair.numerator,
        "denominator": pair.denominator,
        "numeratorScale": listing.precision if listing else 8,
        "denominatorScale": pair.scale,
        "hasFraction": pair.scale > 0,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": format_amount(pair.tick),
                "maxPrice": format_amount(pair.q(pair.last * 10)),
                "tickSize": format_amount(pair.tick),
                "minExchangeValue": "100" if pair.denominator == "TRY" else "10",
                "minAmount": None,
                "maxAmount": None,
            }
        ],
        "orderMethods": ["MARKET", "LIMIT", "STOP_MARKET", "STOP_LIMIT"],
        "displayFormat": "#,###" if pair.scale == 0 else "#,###." + "#" * pair.scale,
        "commissionFromNumerator": pair.commission_from_numerator,
        "order": pair.order,
        "priceRounding": False,
        "isNew": False,
    }
