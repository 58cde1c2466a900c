"""Months of seeded account history, so the demo has a past on its first start.

The account opens empty `days` ago; deposits fund it, trades at the price path's prices of the day
build its portfolio, and now and then money leaves again. Its balances are then exactly the sum of
that history (open orders only move money from free to locked).
"""

from __future__ import annotations

import dataclasses
import random

from exporter.simulator import activity
from exporter.simulator.accounts import Account
from exporter.simulator.activity import Ids
from exporter.simulator.amounts import quantize16, to_decimal
from exporter.simulator.market import Market, Pair, spread
from exporter.simulator.pricepath import PricePath

DAY_MS = 86_400_000
# What the demo portfolio trades into, when the market lists it.
PORTFOLIO = ("BTC", "ETH", "USDT", "XRP", "AVAX", "SOL", "ADA", "DOGE")


def _then(pair: Pair, path: PricePath, when_ms: int) -> Pair | None:
    """The pair as it was at `when_ms`, from the price path."""
    numerator = path.price_at(pair.numerator, when_ms / 1000)
    denominator = 1.0 if pair.denominator == "TRY" else path.price_at(pair.denominator, when_ms / 1000)
    if not numerator or not denominator:
        return None
    last = pair.q(to_decimal(numerator / denominator))
    if last <= 0:
        return None
    bid, ask = spread(last, pair.scale)
    return dataclasses.replace(pair, last=last, bid=bid, ask=ask)


def _pairs_for(account: Account, market: Market) -> list[Pair]:
    return [
        p
        for p in market.pairs.values()
        if p.numerator in PORTFOLIO and p.numerator in account.assets and p.denominator in account.assets
    ]


def pregenerate(
    account: Account, market: Market, path: PricePath, rng: random.Random, now_ms: int, days: int, ids: Ids
) -> None:
    """Fill an empty account with `days` of history ending at now_ms."""
    start = now_ms - days * DAY_MS
    pairs = _pairs_for(account, market)
    when = start + rng.randint(1, 6) * 3_600_000
    if "TRY" in account.assets:
        activity.deposit(account, "TRY", to_decimal(rng.uniform(80_000, 300_000)), when, ids)
    if "OLDTOKEN" in account.assets:  # an airdrop of a token that never got a market
        activity.deposit(account, "OLDTOKEN", to_decimal(rng.uniform(1_000, 60_000)), when + 60_000, ids)
    while True:
        # About six events a day, at random moments.
        when += int(rng.expovariate(6 / DAY_MS)) + 1
        if when >= now_ms:
            break
        _event(account, market, path, rng, pairs, when, ids)
    _open_orders(account, rng)


def _event(
    account: Account,
    market: Market,
    path: PricePath,
    rng: random.Random,
    pairs: list[Pair],
    when: int,
    ids: Ids,
) -> None:
    roll = rng.random()
    if roll < 0.85 and pairs:
        pair = _then(rng.choice(pairs), path, when)
        if pair is None:
            return
        numerator, denominator = account.assets[pair.numerator], account.assets[pair.denominator]
        if numerator.free > 0 and rng.random() < 0.4:
            amount = numerator.free * to_decimal(rng.uniform(0.1, 0.6))
            activity.trade(account, pair, "sell", amount, when, ids)
        elif denominator.free > 0:
            amount = denominator.free * to_decimal(rng.uniform(0.05, 0.3)) / pair.ask
            activity.trade(account, pair, "buy", amount, when, ids)
    elif roll < 0.93 and "TRY" in account.assets:
        activity.deposit(account, "TRY", to_decimal(rng.uniform(2_000, 40_000)), when, ids)
    elif roll < 0.96:
        held = [a for a in account.assets.values() if a.free > 0 and a.asset in PORTFOLIO]
        if held:
            asset = rng.choice(held)
            price = path.price_at(asset.asset, when / 1000)
            if price:
                activity.deposit(
                    account, asset.asset, to_decimal(rng.uniform(1_000, 20_000) / price), when, ids
                )
    else:
        held = [a for a in account.assets.values() if a.free > 0 and a.asset != "OLDTOKEN"]
        if held:
            asset = rng.choice(held)
            activity.withdraw(
                account, asset.asset, asset.free * to_decimal(rng.uniform(0.05, 0.25)), when, ids
            )


def _open_orders(account: Account, rng: random.Random) -> None:
    """Park a share of a few holdings in open orders: free becomes locked, the balance stays."""
    for asset in account.assets.values():
        if asset.free > 0 and asset.asset != "OLDTOKEN" and rng.random() < 0.4:
            moved = quantize16(asset.free * to_decimal(rng.uniform(0.0, 0.3)))
            asset.free -= moved
            asset.locked += moved
