"""Property-based tests of the activity pieces: parsing never fails with a foreign exception, the
ledger round-trips any record exactly, and the cost-basis replay conserves cost whatever the history.
"""

from __future__ import annotations

import tempfile
from decimal import Context, Decimal, localcontext
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.api.parsing import BadResponse
from exporter.api.records import Trade, Transfer, parse_trades, parse_transfers
from exporter.ledger.costbasis import compute
from exporter.ledger.store import Ledger

PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

amounts = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1000000"), places=8)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.decimals(allow_nan=True),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
field_names = st.sampled_from(
    [
        *("id", "orderId", "timestamp", "price", "numeratorSymbol", "denominatorSymbol", "orderType"),
        *("amount", "fee", "tax", "balanceType", "currencySymbol", "funds"),
    ]
)


@PROFILE
@given(st.dictionaries(field_names, json_values), st.sampled_from([0, "0", "SUCCESS", "", 1]))
def test_parsing_any_item_fails_only_with_bad_response(item: dict[str, Any], code: object) -> None:
    payload = {"success": True, "code": code, "data": [item]}
    for parse in (parse_trades, lambda p: parse_transfers(p, "crypto")):
        try:
            parse(payload)
        except BadResponse as exc:
            assert "\n" not in str(exc)


trades = st.builds(
    Trade,
    id=st.integers(min_value=0, max_value=10**29),
    order_id=st.none() | st.integers(min_value=0, max_value=10**20),
    timestamp_ms=st.integers(min_value=1, max_value=4_000_000_000_000),
    base=st.sampled_from(["BTC", "ETH", "USDT"]),
    quote=st.sampled_from(["TRY", "USDT"]),
    side=st.sampled_from(["buy", "sell"]),
    price=amounts,
    amount=amounts,
    fee=amounts.map(lambda a: -a),
    tax=st.just(Decimal("-0E-8")) | amounts.map(lambda a: -a),
    # The pair's flag, not the record's: the ledger sets it on reading (no pair is flagged here).
    commission_from_numerator=st.just(False),
).map(lambda t: t if t.side == "buy" else t._replace(amount=-t.amount))
transfers = st.builds(
    Transfer,
    kind=st.sampled_from(["crypto", "fiat"]),
    id=st.integers(min_value=0, max_value=10**29),
    timestamp_ms=st.integers(min_value=1, max_value=4_000_000_000_000),
    balance_type=st.just("deposit"),
    currency=st.none() | st.sampled_from(["BTC", "TRY", "Türk"]),
    amount=amounts,
    fee=st.none() | amounts.map(lambda a: -a),
    tax=st.none(),
    funds=st.none() | amounts,
)


@PROFILE
@given(st.lists(trades, max_size=12), st.lists(transfers, max_size=6))
def test_ledger_round_trips_every_record_exactly(many: list[Trade], moves: list[Transfer]) -> None:
    unique_trades = list({t.id: t for t in many}.values())
    # A transfer is one record by its id, whichever endpoint answered it: the first one stored stays.
    unique_moves = list({t.id: t for t in reversed(moves)}.values())
    with tempfile.TemporaryDirectory() as storage, Ledger.open(storage) as ledger:
        ledger.upsert_trades("a", unique_trades)
        ledger.upsert_transfers("a", unique_moves)
        assert ledger.trades("a") == sorted(unique_trades, key=lambda t: (t.timestamp_ms, t.id))
        assert ledger.transfers("a") == sorted(unique_moves, key=lambda t: (t.timestamp_ms, t.kind, t.id))
        assert ledger.upsert_trades("a", unique_trades) == 0


def prices(asset: str, currency: str, when_ms: int) -> Decimal | None:
    return {"BTC": Decimal("2000000.5"), "ETH": Decimal("90000"), "USDT": Decimal("34.25")}.get(asset)


@PROFILE
@given(st.lists(trades, max_size=30), st.lists(transfers, max_size=8), st.sampled_from(["average", "fifo"]))
def test_replay_conserves_cost_and_never_goes_negative(
    many: list[Trade], moves: list[Transfer], method: str
) -> None:
    """Cost held = value deposited + profit realised + proceeds left out as unmatched (no withdrawals)."""
    basis = compute(many, moves, "TRY", prices, method)  # type: ignore[arg-type]
    for position in basis.positions.values():
        assert position.cost >= 0 and position.quantity >= 0
        assert position.unmatched_proceeds >= 0
        assert (position.shortfalls == 0) == (position.shortfall_quantity == 0)
    with localcontext(Context(prec=60)):
        held = sum((p.cost for p in basis.positions.values()), Decimal(0))
        unmatched = sum((p.unmatched_proceeds for p in basis.positions.values()), Decimal(0))
        gap = held - (basis.net_deposits + basis.realised + unmatched)
    assert abs(gap) < Decimal("1e-40")
    assert basis.unattributed == sum(1 for m in moves if m.currency is None)
