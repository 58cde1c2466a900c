"""The ledger checked against the balances: what its records add up to per asset, against what is held.

Every balance change is a record (trades, deposits, withdrawals; open orders and pending withdrawals
only move money from free to locked), so the records up to the moment of a balance poll add up to that
poll's balance. Walking the history back from the balance, a holding can never go below zero.

- `match`: the records add up to the balance.
- `mismatch`: they add up to more than is held, or walking back drives a holding negative: records
  are missing or wrong, whatever happened before `since`.
- `incomplete`: less than is held, and walking back stays at or above zero: what is missing may be
  held since before `activity.since` (history the ledger was never asked for), or missing deposits.

Only a balance poll the ledger has been read past is compared (records newer than the poll left out),
and a difference must hold on two polls in a row: a record stamped before a poll can show up after it
(a withdrawal recorded when it settles).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Literal

from exporter.api.parsing import Balance
from exporter.api.records import Trade, Transfer

State = Literal["match", "mismatch", "incomplete"]
STATES: tuple[State, ...] = ("match", "mismatch", "incomplete")
# Balances carry up to 16 fraction digits; records the same amounts exactly.
TOLERANCE = Decimal("1e-12")


def _moves(trades: Iterable[Trade], transfers: Iterable[Transfer]) -> list[tuple[int, str, Decimal]]:
    moves: list[tuple[int, str, Decimal]] = []
    for t in trades:
        base, quote = t.moves()  # fee and tax off the asset the pair takes them from
        moves.append((t.timestamp_ms, t.base, base))
        moves.append((t.timestamp_ms, t.quote, quote))
    for r in transfers:
        if r.currency is not None:
            net = r.amount + (r.fee or Decimal(0)) + (r.tax or Decimal(0))
            moves.append((r.timestamp_ms, r.currency, net))
    moves.sort(key=lambda m: m[0])
    return moves


def compare(
    trades: Sequence[Trade], transfers: Sequence[Transfer], balances: Sequence[Balance], at_ms: int
) -> dict[str, State]:
    """Each asset's state: the records up to `at_ms` against the balances polled at `at_ms`."""
    totals: dict[str, Decimal] = {}
    lowest: dict[str, Decimal] = {}
    for stamp, asset, amount in _moves(trades, transfers):
        if stamp > at_ms:
            break
        totals[asset] = totals.get(asset, Decimal(0)) + amount
        lowest[asset] = min(lowest.get(asset, Decimal(0)), totals[asset])
    held = {b.asset: b.balance for b in balances}
    states: dict[str, State] = {}
    for asset in sorted(set(totals) | {a for a, v in held.items() if v}):
        balance, total = held.get(asset, Decimal(0)), totals.get(asset, Decimal(0))
        gap = balance - total  # what the history before the ledger's first record would have to hold
        if abs(gap) <= TOLERANCE:
            states[asset] = "match"
        elif gap < 0 or lowest.get(asset, Decimal(0)) + gap < -TOLERANCE:
            states[asset] = "mismatch"
        else:
            states[asset] = "incomplete"
    return states


def confirmed(previous: Mapping[str, State] | None, current: Mapping[str, State]) -> dict[str, State]:
    """The states two checks in a row agree on (an asset they disagree on is left out)."""
    if previous is None:
        return {}
    return {asset: s for asset, s in current.items() if previous.get(asset) == s}
