"""The ledger checked against the balances: what its records add up to per asset, against what is held.

Every balance change is a record (trades, deposits, withdrawals; open orders and pending withdrawals
only move money from free to locked), so the records up to the moment of a balance poll add up to that
poll's balance. Walking the history back from the balance, a holding can never go below zero.

- `match`: the records add up to the balance.
- `mismatch`: they add up to more than is held, or walking back drives a holding negative: records
  are missing or wrong, whatever happened before `since`.
- `incomplete`: less than is held, and walking back stays at or above zero: what is missing may be
  held since before `activity.since` (history the ledger was never asked for), or missing deposits.

With the history complete since `since`, an `incomplete` asset's difference is what was held at
`since`: it enters the ledger as an opening (ledger/openings.py), and against it the asset matches.

Only a balance poll the ledger has been read past is compared (records newer than the poll left out),
and a difference must hold on two polls in a row: a record stamped before a poll can show up after it
(a withdrawal recorded when it settles).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Walk:
    """One asset walked back from a balance: `gap`, what the history before the first record must have
    held (balance minus the records' sum), and `lowest`, the lowest running sum of the records (<= 0)."""

    gap: Decimal
    lowest: Decimal


def walk_back(
    trades: Sequence[Trade], transfers: Sequence[Transfer], balances: Sequence[Balance], at_ms: int
) -> dict[str, Walk]:
    """Each asset's walk: the records up to `at_ms` against the balances polled at `at_ms`."""
    totals: dict[str, Decimal] = {}
    lowest: dict[str, Decimal] = {}
    for stamp, asset, amount in _moves(trades, transfers):
        if stamp > at_ms:
            break
        totals[asset] = totals.get(asset, Decimal(0)) + amount
        lowest[asset] = min(lowest.get(asset, Decimal(0)), totals[asset])
    held = {b.asset: b.balance for b in balances}
    zero = Decimal(0)
    return {
        asset: Walk(held.get(asset, zero) - totals.get(asset, zero), lowest.get(asset, zero))
        for asset in sorted(set(totals) | {a for a, v in held.items() if v})
    }


def state_of(walk: Walk, opening: Decimal = Decimal(0)) -> State:
    """The asset's state, with `opening` (>= 0) held before the first record."""
    gap = walk.gap - opening
    lowest = min(Decimal(0), walk.lowest + opening)  # the opening comes first: it lifts every running sum
    if opening > 0 and lowest < -TOLERANCE:
        return "mismatch"  # the records give away more than even the opening held
    if abs(gap) <= TOLERANCE:
        return "match"
    if gap < 0 or lowest + gap < -TOLERANCE:
        return "mismatch"
    return "incomplete"


def opening_quantities(walks: Mapping[str, Walk]) -> dict[str, Decimal]:
    """What was held before the first record, per asset whose walk says so (`incomplete` without one):
    an asset whose records the balances contradict (`mismatch`) gets none, its shortfall stays shown."""
    return {asset: w.gap for asset, w in walks.items() if state_of(w) == "incomplete"}


def compare(
    trades: Sequence[Trade], transfers: Sequence[Transfer], balances: Sequence[Balance], at_ms: int
) -> dict[str, State]:
    """Each asset's state: the records up to `at_ms` against the balances polled at `at_ms`."""
    return {asset: state_of(w) for asset, w in walk_back(trades, transfers, balances, at_ms).items()}


def confirmed(previous: Mapping[str, State] | None, current: Mapping[str, State]) -> dict[str, State]:
    """The states two checks in a row agree on (an asset they disagree on is left out)."""
    if previous is None:
        return {}
    return {asset: s for asset, s in current.items() if previous.get(asset) == s}
