"""What happens to a simulated account over time: trades, deposits and withdrawals, each one recorded.

These functions are the only writers of a simulated balance after an account is opened; each moves
exactly what its record says, rounded to the asset's precision.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal

from exporter.simulator.accounts import Account, SimAsset
from exporter.simulator.amounts import WIDE, ZERO, round_down, to_decimal
from exporter.simulator.ledger import FIRST_TRADE_ID, Pending, Trade, Transfer
from exporter.simulator.market import Market, Pair

# Chances per account and drift step; with the demo's 5 s steps a withdrawal comes every few minutes.
TRADE_CHANCE = 0.3
DEPOSIT_CHANCE = 0.03
WITHDRAWAL_CHANCE = 0.015
PENDING_CHANCE = 0.6
# A pending withdrawal waits this long (ms) in requestFund: longer than the alert's 1m `for:`.
PENDING_MS = (120_000, 420_000)
FEE_RATE = Decimal("0.0012")
TAX_RATE = Decimal("0.2")  # of the fee (BSMV-like)
FEE_PLACES = 8


@dataclass
class Ids:
    """Increasing record ids, shared by every account of one simulator."""

    trades: itertools.count[int] = field(default_factory=lambda: itertools.count(FIRST_TRADE_ID))
    orders: itertools.count[int] = field(default_factory=lambda: itertools.count(90_000_001))
    transfers: itertools.count[int] = field(default_factory=lambda: itertools.count(5_000_001))


def _places(account: Account, symbol: str) -> int:
    return account.assets[symbol].precision


def _cost(value: Decimal, places: int) -> Decimal:
    """Round a charge up, so rounding never leaves the account richer than the exact amount."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_UP, context=WIDE)


def trade(account: Account, pair: Pair, side: str, amount: Decimal, now_ms: int, ids: Ids) -> Trade | None:
    """Fill `amount` (numerator units, positive) at the pair's price; None if the account cannot afford it."""
    numerator, denominator = account.assets[pair.numerator], account.assets[pair.denominator]
    amount = round_down(amount, numerator.precision)
    if amount <= 0:
        return None
    price = pair.ask if side == "buy" else pair.bid
    # What the denominator moves is amount x price exactly (that is how balances get 16 digits); fee
    # and tax are rounded up to 8 places, so a client can rebuild the move from the item's fields.
    gross = amount * price
    # A buy on a pair with commissionFromNumerator pays in the asset bought, at its precision.
    in_numerator = side == "buy" and pair.commission_from_numerator
    places = min(FEE_PLACES, numerator.precision) if in_numerator else FEE_PLACES
    fee = -_cost((amount if in_numerator else gross) * FEE_RATE, places)
    tax = -_cost(-fee * TAX_RATE, places)
    if side == "buy":
        if in_numerator and (denominator.free < gross or amount + fee + tax <= 0):
            return None
        if not in_numerator and denominator.free < gross - fee - tax:
            return None
        total, signed = -gross, amount
    else:
        if numerator.free < amount or gross + fee + tax <= 0:
            return None
        total, signed = gross, -amount
    record = Trade(
        next(ids.trades), next(ids.orders), now_ms, pair.numerator, pair.denominator, side, price,
        signed, total, fee, tax, in_numerator,
    )  # fmt: skip
    moved_numerator, moved_denominator = record.moved
    numerator.free += moved_numerator
    denominator.free += moved_denominator
    account.history.trades.append(record)
    return record


def deposit(account: Account, symbol: str, amount: Decimal, now_ms: int, ids: Ids) -> Transfer | None:
    """Credit a deposit, rounded to the asset's precision."""
    amount = round_down(amount, _places(account, symbol))
    if amount <= 0:
        return None
    record = Transfer(next(ids.transfers), now_ms, "deposit", symbol, amount)
    account.assets[symbol].free += amount
    account.history.transfers.append(record)
    return record


def request_withdrawal(
    account: Account, symbol: str, amount: Decimal, fee: Decimal, now_ms: int, due_ms: int
) -> Pending | None:
    """Hold `amount` (fee included) in requestFund until `due_ms`; it is recorded when it completes."""
    asset = account.assets[symbol]
    amount = round_down(amount, asset.precision)
    if amount <= 0 or amount > asset.free or amount <= -fee:
        return None
    # Held money stays part of the balance: it moves from free to locked, and shows in requestFund.
    asset.free -= amount
    asset.locked += amount
    asset.request_fund += amount
    pending = Pending(symbol, amount, fee, due_ms)
    account.history.pending.append(pending)
    return pending


def settle(account: Account, now_ms: int, ids: Ids) -> list[Transfer]:
    """Complete every pending withdrawal that is due, and record it."""
    done: list[Transfer] = []
    for pending in [p for p in account.history.pending if p.due <= now_ms]:
        account.history.pending.remove(pending)
        asset = account.assets[pending.currency]
        asset.locked -= pending.amount
        asset.request_fund -= pending.amount
        sent = -(pending.amount + pending.fee)
        record = Transfer(next(ids.transfers), pending.due, "withdrawal", pending.currency, sent, pending.fee)
        account.history.transfers.append(record)
        done.append(record)
    return done


def withdraw(account: Account, symbol: str, amount: Decimal, now_ms: int, ids: Ids) -> Transfer | None:
    """A withdrawal that completes at once."""
    if request_withdrawal(account, symbol, amount, ZERO, now_ms, now_ms) is None:
        return None
    return settle(account, now_ms, ids)[-1]


def step(account: Account, market: Market, rng: random.Random, now_ms: int, ids: Ids) -> None:
    """One random moment of an account's life: maybe a trade, a deposit or a withdrawal request."""
    settle(account, now_ms, ids)
    roll = rng.random()
    if roll < TRADE_CHANCE:
        _random_trade(account, market, rng, now_ms, ids)
    elif roll < TRADE_CHANCE + DEPOSIT_CHANCE:
        _random_deposit(account, market, rng, now_ms, ids)
    elif roll < TRADE_CHANCE + DEPOSIT_CHANCE + WITHDRAWAL_CHANCE:
        _random_withdrawal(account, rng, now_ms, ids)


def _held(account: Account) -> list[SimAsset]:
    return [a for a in account.assets.values() if a.free > 0]


def _random_trade(account: Account, market: Market, rng: random.Random, now_ms: int, ids: Ids) -> None:
    held = {a.asset for a in _held(account)}
    pairs = [
        p
        for p in market.pairs.values()
        if p.numerator in account.assets
        and p.denominator in account.assets
        and (p.numerator in held or p.denominator in held)
        and p.bid > 0
    ]
    if not pairs:
        return
    pair = rng.choice(pairs)
    side = (
        "sell" if pair.numerator in held and (pair.denominator not in held or rng.random() < 0.5) else "buy"
    )
    share = to_decimal(rng.uniform(0.01, 0.1))
    if side == "sell":
        amount = account.assets[pair.numerator].free * share
    else:
        amount = account.assets[pair.denominator].free * share / pair.ask
    trade(account, pair, side, amount, now_ms, ids)


def _random_deposit(account: Account, market: Market, rng: random.Random, now_ms: int, ids: Ids) -> None:
    if rng.random() < 0.5 and "TRY" in account.assets:
        deposit(account, "TRY", to_decimal(rng.uniform(1_000, 20_000)), now_ms, ids)
        return
    priced = [s for s in account.assets if s != "TRY" and market.try_price(s)]
    if priced:
        symbol = rng.choice(priced)
        price = market.try_price(symbol) or Decimal(1)
        deposit(account, symbol, to_decimal(rng.uniform(500, 10_000)) / price, now_ms, ids)


def _random_withdrawal(account: Account, rng: random.Random, now_ms: int, ids: Ids) -> None:
    held = _held(account)
    if not held:
        return
    asset = rng.choice(held)
    amount = asset.free * to_decimal(rng.uniform(0.05, 0.3))
    fee = ZERO if asset.asset == "TRY" else -round_down(amount * Decimal("0.001"), asset.precision)
    if rng.random() < PENDING_CHANCE:
        request_withdrawal(account, asset.asset, amount, fee, now_ms, now_ms + rng.randint(*PENDING_MS))
    elif request_withdrawal(account, asset.asset, amount, fee, now_ms, now_ms) is not None:
        settle(account, now_ms, ids)
