"""The resumable replay (ledger/replay.py) gives exactly the full replay's figures, however it is fed,
and knows when it cannot go on: a record behind its cursor, a price it missed that is known now."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.api.records import Trade, Transfer
from exporter.config.activity_settings import COST_METHODS, CostMethod
from exporter.ledger.costbasis import compute, order
from exporter.ledger.counters import count
from exporter.ledger.replay import Counting, ReplayState, tail
from exporter.ledger.returns import UnitTrack
from exporter.ledger.store import Ledger

PROFILE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HOUR_MS = 3_600_000
T0 = 486_111 * HOUR_MS  # on an hour, as the price buckets are
ASSETS = ("BTC", "ETH", "USDT", "TRY")
CURRENCIES = ("TRY", "USDT")


class Prices:
    """Hourly prices in TRY (USDT by TRY/USDT), some hours missing: a record there is unpriced."""

    def __init__(self, missing: frozenset[int]) -> None:
        self.missing = set(missing)

    def __call__(self, asset: str, currency: str, when_ms: int) -> Decimal | None:
        hour = (when_ms - T0) // HOUR_MS
        if hour in self.missing:
            return None
        in_try = {"BTC": Decimal(2_000_000 + 1000 * hour), "ETH": Decimal(80_000 + 7 * hour)}
        in_try.update({"USDT": Decimal(34) + Decimal(hour % 13) / 10, "TRY": Decimal(1)})
        if asset not in in_try or currency not in in_try:
            return None
        if currency == "TRY":
            return in_try[asset]
        with localcontext(Context(prec=34)):  # its own precision, as pricing.routes: not the caller's
            return in_try[asset] / in_try[currency]


amounts = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("50"), places=3)
# Few distinct times, so same-millisecond records of every kind meet (the ordering's ties).
times = st.integers(min_value=0, max_value=40).map(lambda n: T0 + n * HOUR_MS // 4)


@st.composite
def histories(draw: st.DrawFn) -> list[Trade | Transfer]:
    records: list[Trade | Transfer] = []
    for n in range(draw(st.integers(min_value=1, max_value=40))):
        when = draw(times)
        if draw(st.booleans()):
            base = draw(st.sampled_from(["BTC", "ETH", "USDT"]))
            quote = draw(st.sampled_from([q for q in ("TRY", "USDT") if q != base]))
            side = draw(st.sampled_from(["buy", "sell"]))
            quantity = draw(amounts)
            fee = draw(amounts) / 100
            records.append(
                Trade(
                    n,
                    None,
                    when,
                    base,
                    quote,
                    side,
                    draw(amounts) * 1000,
                    quantity if side == "buy" else -quantity,
                    -fee,
                    -fee / 5,
                )
            )
        else:
            deposit = draw(st.booleans())
            quantity = draw(amounts) * (1000 if deposit else 1)
            currency = draw(st.sampled_from([*ASSETS, None]))
            records.append(
                Transfer(
                    draw(st.sampled_from(["crypto", "fiat"])),
                    n,
                    when,
                    "deposit" if deposit else "withdrawal",
                    currency,
                    quantity if deposit else -quantity,
                    fee=draw(st.none() | amounts.map(lambda a: -a / 100)),
                )
            )
    return records


def full(records: list[Trade | Transfer], prices: Prices, method: CostMethod) -> tuple[object, ...]:
    """The figures of a full replay, by the pure functions the live exporter used before."""
    trades = [r for r in records if isinstance(r, Trade)]
    transfers = [r for r in records if isinstance(r, Transfer)]
    bases = {c: compute(trades, transfers, c, prices, method) for c in CURRENCIES}
    units = {}
    for currency in CURRENCIES:
        track = UnitTrack(currency, prices)
        for record in order(records):
            track.apply(record)
        units[currency] = track.units
    return bases, units


@PROFILE
@given(
    histories(),
    st.lists(st.integers(min_value=0, max_value=40), max_size=4),
    st.frozensets(st.integers(min_value=0, max_value=10), max_size=3),
    st.sampled_from(COST_METHODS),
)
def test_fed_in_parts_is_the_full_replay_to_the_digit(
    records: list[Trade | Transfer], cuts: list[int], missing: frozenset[int], method: CostMethod
) -> None:
    prices = Prices(missing)
    ordered = order(records)
    state = ReplayState(CURRENCIES, prices, method)
    at = 0
    handed_out = []
    for cut in sorted({min(c, len(ordered)) for c in cuts} | {len(ordered)}):
        state.feed(ordered[at:cut][::-1])  # any order within a part: feed() orders it
        at = cut
        figures = state.figures()
        bases, units = full(ordered[:cut], prices, method)
        # repr: the same digits and exponents, not only equal values (1.0 == 1.00).
        assert repr(dict(figures.cost_basis)) == repr(bases)
        assert repr(dict(figures.units)) == repr(units)
        handed_out.append((figures, repr(figures)))
    assert state.cursor.fed == len(records)
    for figures, shown in handed_out:
        assert repr(figures) == shown, "figures handed out must not change as the replay goes on"


def test_a_record_at_or_before_the_last_fed_is_refused() -> None:
    prices = Prices(frozenset())
    deposit = Transfer("fiat", 1, T0, "deposit", "TRY", Decimal(1000))
    trade = Trade(
        2, None, T0, "BTC", "TRY", "buy", Decimal(2_000_000), Decimal("0.0001"), Decimal(0), Decimal(0)
    )
    state = ReplayState(CURRENCIES, prices)
    state.feed([trade])
    before = state.figures()
    # A deposit in the same millisecond comes before a trade in replay order: behind the cursor.
    with pytest.raises(ValueError, match="not after the last one fed"):
        state.feed([deposit])
    with pytest.raises(ValueError, match="not after the last one fed"):
        state.feed([trade])
    assert state.figures() == before
    assert state.cursor.fed == 1


def test_a_missing_price_known_now_is_noticed() -> None:
    prices = Prices(frozenset({0}))
    state = ReplayState(CURRENCIES, prices, bucket_ms=HOUR_MS)
    state.feed([Transfer("crypto", 1, T0 + 5, "deposit", "BTC", Decimal(1))])
    assert state.figures().cost_basis["TRY"].unpriced == 1
    assert not state.priced_since()
    prices.missing.clear()
    assert state.priced_since()


def _ledger_with(tmp_path: Path, records: list[Trade | Transfer]) -> Ledger:
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.upsert_trades("main", [r for r in records if isinstance(r, Trade)])
    ledger.upsert_transfers("main", [r for r in records if isinstance(r, Transfer)])
    return ledger


def test_tail_gives_what_is_new_and_none_for_a_record_behind(tmp_path: Path) -> None:
    first = Transfer("fiat", 1, T0, "deposit", "TRY", Decimal(1000))
    buy = Trade(
        2, None, T0 + 10, "BTC", "TRY", "buy", Decimal(2_000_000), Decimal("0.0001"), Decimal(0), Decimal(0)
    )
    with _ledger_with(tmp_path, [first, buy]) as ledger:
        state = ReplayState(CURRENCIES, Prices(frozenset()))
        new = tail(ledger, "main", state.cursor)
        assert new == [first, buy]
        state.feed(new)
        assert tail(ledger, "main", state.cursor) == []
        later = Trade(
            3,
            None,
            T0 + 10,
            "BTC",
            "TRY",
            "sell",
            Decimal(2_000_000),
            Decimal("-0.00005"),
            Decimal(0),
            Decimal(0),
        )
        ledger.upsert_trades("main", [later])  # the same millisecond, a higher id: after the cursor
        assert tail(ledger, "main", state.cursor) == [later]
        state.feed([later])
        # The same millisecond as the last trade, but a deposit: before it in replay order.
        ledger.upsert_transfers("main", [Transfer("fiat", 4, T0 + 10, "deposit", "TRY", Decimal(5))])
        assert tail(ledger, "main", state.cursor) is None


def test_counting_on_equals_counting_everything(tmp_path: Path) -> None:
    records: list[Trade | Transfer] = [
        Transfer("fiat", 1, T0 + 100, "deposit", "TRY", Decimal(1000)),
        Trade(
            2,
            None,
            T0 + 200,
            "BTC",
            "TRY",
            "buy",
            Decimal(2_000_000),
            Decimal("0.0001"),
            Decimal(-1),
            Decimal(0),
        ),
    ]
    with _ledger_with(tmp_path, records[:1]) as ledger:
        counting = Counting()
        assert counting.update(ledger, "main") == count(records[:1])
        ledger.upsert_trades("main", [records[1]])  # after the cursor: counted on
        totals = counting.update(ledger, "main")
        assert totals == count(records)
        behind = Transfer("crypto", 3, T0, "withdrawal", "TRY", Decimal(-10))
        ledger.upsert_transfers("main", [behind])  # behind the cursor: counted again from the start
        assert counting.update(ledger, "main") == count([*records, behind])
        assert totals == count(records), "a total handed out must not change as counting goes on"


def test_counting_again_when_the_commission_flags_change(tmp_path: Path) -> None:
    fee = Decimal("-0.0000001")
    buy = Trade(
        2, None, T0 + 200, "BTC", "TRY", "buy", Decimal(2_000_000), Decimal("0.0001"), fee, Decimal(0)
    )
    with _ledger_with(tmp_path, [buy]) as ledger:
        counting = Counting()
        assert counting.update(ledger, "main")["trade_fees"] == {("TRY",): -fee}
        # exchangeinfo now says BTCTRY takes a buy's fee from the numerator: the fee was paid in BTC.
        ledger.remember_commission({"BTCTRY": True})
        totals = counting.update(ledger, "main")
        assert totals == count(ledger.trades("main"))
        assert totals["trade_fees"] == {("BTC",): -fee}
