"""Backfill: past holdings walked back from the balances, worked by hand; gaps said, never papered over."""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from support import routed

from exporter.api.records import Trade, Transfer
from exporter.backfill.timeline import MAX_STEPS, AccountHistory, Plan, Timeline, reconstruct
from exporter.backfill.writer import FAMILIES, Progress, backfill
from exporter.ledger.costbasis import compute
from exporter.ledger.counters import COUNTED, count
from exporter.ledger.openings import opening
from exporter.metrics.activity_families import ACTIVITY_FAMILIES

H = 3_600_000
T0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z, on the hour grid


def trade(id_: int, ms: int, pair: str, side: str, amount: str, price: str, fee: str, tax: str) -> Trade:
    base, quote = pair.split("/")
    return Trade(id_, None, ms, base, quote, side, D(price), D(amount), D(fee), D(tax))  # type: ignore[arg-type]


def transfer(id_: int, ms: int, asset: str | None, amount: str, kind: str = "crypto") -> Transfer:
    balance_type = "withdrawal" if amount.startswith("-") else "deposit"
    return Transfer(kind, id_, ms, balance_type, asset, D(amount))  # type: ignore[arg-type]


def btc_try_closes(base: str, quote: str, ms: int) -> D | None:
    """BTC at 50,000 TRY at T0, 1,000 more each hour; USDT at 34.5 TRY; nothing else."""
    if (base, quote) == ("BTC", "TRY"):
        return D(50_000) + (ms - T0) // H * 1000
    if (base, quote) == ("USDT", "TRY"):
        return D("34.5")
    return None


# Routed as the exporter routes: TRY in USDT is the inverse of USDT/TRY, BTC in USDT goes through TRY.
btc_try = routed(btc_try_closes, [("BTC", "TRY"), ("USDT", "TRY")])


# One account over six hourly steps (T0 .. T0+5h):
#   T0+10ms   fiat deposit 1,000 TRY
#   T0+1h+5ms buy 0.01 BTC at 50,000: pays 500 + 5 fee + 0.9 tax = 505.9 TRY
#   T0+3h     sell 0.004 BTC at 60,000: receives 240 - 2.4 - 0.432 = 237.168 TRY (exactly on a step)
#   T0+4h+1ms withdraw 0.002 BTC
# so the balances now are 0.004 BTC and 1,000 - 505.9 + 237.168 = 731.268 TRY.
TRADES = [
    trade(1, T0 + H + 5, "BTC/TRY", "buy", "0.01", "50000", "-5", "-0.9"),
    trade(2, T0 + 3 * H, "BTC/TRY", "sell", "-0.004", "60000", "-2.4", "-0.432"),
]
TRANSFERS = [
    transfer(10, T0 + 10, "TRY", "1000", "fiat"),
    transfer(11, T0 + 4 * H + 1, "BTC", "-0.002"),
]
NOW = {"BTC": D("0.004"), "TRY": D("731.268")}
PLAN = Plan(T0, T0 + 6 * H, H, ("TRY", "USDT"))


def history(
    balances: dict[str, D] | None = None,
    trades: Sequence[Trade] = TRADES,
    transfers: Sequence[Transfer] = TRANSFERS,
    balances_ms: int = T0 + 6 * H,
    complete_since_ms: int | None = None,
    account: str = "main",
) -> AccountHistory:
    return AccountHistory(account, balances or NOW, balances_ms, trades, transfers, complete_since_ms)


def written(histories: Sequence[AccountHistory], plan: Plan = PLAN, price_at=btc_try) -> str:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    backfill(out, histories, plan, price_at)
    return out.getvalue()


def points(text: str, name: str, **labels: str) -> list[tuple[float, float]]:
    """(time in s, value) of one series of an OpenMetrics text, in file order."""
    found = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                found.append((float(s.timestamp), s.value))
    return found


def test_a_record_stamped_on_a_step_is_valued_as_a_record_and_the_step_as_a_step() -> None:
    # Steps take the candle closed by them (an hour earlier here), records the one holding them, even
    # a record stamped exactly on a step, as an opening at a `since` on the hour is.
    def closed_before(asset: str, currency: str, ms: int) -> D | None:
        return btc_try(asset, currency, ms - H)

    deposit = transfer(12, T0 + 2 * H, "BTC", "0.001")
    held = history({"BTC": D("0.005"), "TRY": D("731.268")}, transfers=[*TRANSFERS, deposit])
    timeline = reconstruct(held, PLAN, btc_try, closed_before)
    assert timeline.net_deposits["TRY"][1:3] == [D(1000), D(1000) + D("0.001") * 52_000]
    assert timeline.price("BTC", "TRY", 2) == 51_000
    # Without a step price, the records' one values the steps too.
    assert reconstruct(held, PLAN, btc_try).price("BTC", "TRY", 2) == 52_000


def test_walk_gives_the_hand_computed_holdings_at_every_step() -> None:
    timeline = reconstruct(history(), PLAN, btc_try)
    assert list(timeline.steps) == [T0 + i * H for i in range(6)]
    assert timeline.holdings["BTC"] == [D(0), D(0), D("0.01"), D("0.006"), D("0.006"), D("0.004")]
    assert timeline.holdings["TRY"] == [D(0), D(1000), D("494.1"), D("731.268"), D("731.268"), D("731.268")]
    # The sale at exactly T0+3h is in the step at T0+3h; the deposit 10 ms after T0 is not in T0's.
    assert timeline.balance_from == {"BTC": 2, "TRY": 1}  # as live: a series starts once held
    assert timeline.notices == []


def test_written_balances_values_and_portfolio_match_the_walk() -> None:
    text = written([history()])
    s = T0 // 1000
    assert points(text, "btcturk_balance", account="main", asset="BTC") == [
        (s + 7200, 0.01),
        (s + 10800, 0.006),
        (s + 14400, 0.006),
        (s + 18000, 0.004),
    ]
    # BTC at T0+2h is 52,000 TRY: 0.01 x 52,000 = 520; USDT is valued by the inverse pair.
    assert points(text, "btcturk_balance_value", account="main", asset="BTC", currency="TRY")[0] == (
        s + 7200,
        520.0,
    )
    assert points(text, "btcturk_balance_value", account="main", asset="TRY", currency="USDT")[0] == (
        s + 3600,
        pytest.approx(1000 / 34.5),
    )
    # Portfolio at T0+3h: 0.006 x 53,000 + 731.268 = 1,049.268 TRY.
    portfolio = dict(points(text, "btcturk_portfolio_value", account="main", currency="TRY"))
    assert portfolio[s + 10800] == pytest.approx(1049.268)
    assert portfolio[s] == 0.0  # nothing held yet, but every holding is known: a true zero
    assert set(dict(points(text, "btcturk_unpriced_assets", account="main", currency="TRY")).values()) == {0}


def test_cost_basis_realised_profit_and_net_deposits_by_hand() -> None:
    text = written([history()])
    s = T0 // 1000
    cost = dict(points(text, "btcturk_asset_cost_basis", account="main", asset="BTC", currency="TRY"))
    # Bought at 505.9; the sale of 0.4 of it removes 202.36, the withdrawal of a third of the rest 101.18.
    assert cost == {s + 7200: 505.9, s + 10800: 303.54, s + 14400: 303.54, s + 18000: pytest.approx(202.36)}
    realised = dict(
        points(text, "btcturk_asset_realized_profit", account="main", asset="BTC", currency="TRY")
    )
    assert realised[s + 7200] == 0.0
    assert realised[s + 10800] == pytest.approx(237.168 - 202.36)
    unrealised = dict(
        points(text, "btcturk_asset_unrealized_profit", account="main", asset="BTC", currency="TRY")
    )
    assert unrealised[s + 7200] == pytest.approx(520 - 505.9)  # 0.01 x 52,000 - 505.9
    # The withdrawal (0.002 BTC at 54,000 TRY, the price at its time) leaves net deposits at 892.
    net = dict(points(text, "btcturk_net_deposits", account="main", currency="TRY"))
    assert net == {
        s: 0.0,
        s + 3600: 1000.0,
        s + 7200: 1000.0,
        s + 10800: 1000.0,
        s + 14400: 1000.0,
        s + 18000: 892.0,
    }


def test_counters_by_hand() -> None:
    text = written([history()])
    s = T0 // 1000
    buys = points(text, "btcturk_trades_total", account="main", pair="BTCTRY", side="buy")
    assert buys == [(s + 3600 * i, v) for i, v in enumerate([0, 0, 1, 1, 1, 1])]
    fees = points(text, "btcturk_trade_fees_total", account="main", asset="TRY")
    assert [v for _, v in fees] == [0, 0, 5, 7.4, 7.4, 7.4]
    taxes = points(text, "btcturk_trade_taxes_total", account="main", asset="TRY")
    assert [v for _, v in taxes] == [0, 0, 0.9, 1.332, 1.332, 1.332]
    deposits = points(text, "btcturk_deposits_total", account="main", asset="TRY")
    assert [v for _, v in deposits] == [0, 1000, 1000, 1000, 1000, 1000]
    withdrawals = points(text, "btcturk_withdrawals_total", account="main", asset="BTC")
    assert [v for _, v in withdrawals] == [0, 0, 0, 0, 0, 0.002]


def test_steps_sit_on_the_grid_and_stop_before_until() -> None:
    assert list(Plan(T0 + 1, T0 + 3 * H + 1, H, ("TRY",)).steps()) == [T0 + H, T0 + 2 * H, T0 + 3 * H]
    assert list(Plan(T0, T0 + 3 * H, H, ("TRY",)).steps()) == [T0, T0 + H, T0 + 2 * H]


def test_nothing_is_written_after_the_balances_or_before_the_ledger_is_complete() -> None:
    timeline = reconstruct(
        history(balances_ms=T0 + 4 * H + 1800_000, complete_since_ms=T0 + H + 1), PLAN, btc_try
    )
    assert list(timeline.steps) == [T0 + 2 * H, T0 + 3 * H, T0 + 4 * H]
    # Walked from balances taken at T0+4.5h: the withdrawal at T0+4h+1ms is already in them.
    assert timeline.holdings["BTC"] == [D("0.01"), D("0.006"), D("0.006")]
    assert {n.code for n in timeline.notices} == {"incomplete_history", "after_balances"}


def test_records_newer_than_the_balances_are_not_undone() -> None:
    late = transfer(99, T0 + 7 * H, "BTC", "5")
    timeline = reconstruct(history(transfers=[*TRANSFERS, late]), PLAN, btc_try)
    assert timeline.holdings["BTC"][-1] == D("0.004")
    assert any(n.code == "after_balances" and "1 ledger records" in n.message for n in timeline.notices)


def test_a_negative_holding_is_said_and_the_series_begins_where_the_walk_is_consistent() -> None:
    # The balances show 0.001 BTC less than the ledger explains (a sale the ledger never saw). Walking back
    # from 0.003: 0.005 before the withdrawal, 0.009 before the sale, -0.001 before the buy at T0+1h+5ms.
    short = {"BTC": D("0.003"), "TRY": D("731.268")}
    timeline = reconstruct(history(short), PLAN, btc_try)
    assert timeline.holdings["BTC"][:2] == [D("-0.001"), D("-0.001")]
    assert timeline.consistent_from == {"BTC": 2, "TRY": 0}
    assert timeline.balance_from["BTC"] == 2
    assert timeline.portfolio_from == 2
    [notice] = [n for n in timeline.notices if n.code == "negative_holding"]
    assert notice.asset == "BTC" and "-0.001" in notice.message and "2025-12-01T02:00:00Z" in notice.message
    text = written([history(short)])
    s = T0 // 1000
    assert points(text, "btcturk_balance", account="main", asset="BTC")[0] == (s + 7200, 0.009)
    assert points(text, "btcturk_portfolio_value", account="main", currency="TRY")[0][0] == s + 7200
    assert min(v for _, v in points(text, "btcturk_balance", account="main", asset="BTC")) >= 0
    # TRY's own walk is consistent throughout, so its series are untouched.
    assert points(text, "btcturk_balance", account="main", asset="TRY")[0] == (s + 3600, 1000.0)


def test_a_negative_holding_before_the_range_changes_nothing() -> None:
    plan = Plan(T0 + 2 * H, T0 + 6 * H, H, ("TRY",))
    timeline = reconstruct(history({"BTC": D("0.003"), "TRY": D("731.268")}), plan, btc_try)
    assert timeline.consistent_from["BTC"] == 0
    assert not [n for n in timeline.notices if n.code == "negative_holding"]


def test_cost_basis_is_left_out_where_the_ledger_does_not_account_for_the_whole_holding() -> None:
    # One BTC held from before the ledger's first record: its quantity is known, its cost is not.
    extra = {"BTC": D("1.004"), "TRY": D("731.268")}
    text = written([history(extra)])
    assert points(text, "btcturk_balance", account="main", asset="BTC")[0][1] == 1.0
    assert points(text, "btcturk_asset_cost_basis", account="main", asset="BTC", currency="TRY") == []
    assert points(text, "btcturk_asset_unrealized_profit", account="main", asset="BTC", currency="TRY") == []
    # What the ledger did record is still true: the sale realised its profit against the cost it knew.
    assert points(text, "btcturk_asset_realized_profit", account="main", asset="BTC", currency="TRY")
    assert points(text, "btcturk_asset_cost_basis", account="main", asset="TRY", currency="TRY")
    timeline = reconstruct(history(extra), PLAN, btc_try)
    partial = [n for n in timeline.notices if n.code == "partial_cost_basis"]
    assert {(n.asset, "in TRY" in n.message) for n in partial} == {("BTC", True), ("BTC", False)}
    assert "accounts for 0 of the 1.000 held" in partial[0].message


def test_an_opening_accounts_for_what_was_held_before_the_first_record() -> None:
    # The same BTC held from before the first record, now in the ledger as an opening at T0 (50,000).
    extra = {"BTC": D("1.004"), "TRY": D("731.268")}
    held = history(extra, transfers=[opening("BTC", T0, D(1)), *TRANSFERS])
    timeline = reconstruct(held, PLAN, btc_try)
    assert not [n for n in timeline.notices if n.code == "partial_cost_basis"]
    text = written([held])
    cost = points(text, "btcturk_asset_cost_basis", account="main", asset="BTC", currency="TRY")
    assert cost[0] == (T0 / 1000, 50_000.0)
    # The opening is the first flow: 50,000 units at 1, so the unit value is known from T0.
    assert points(text, "btcturk_portfolio_unit_value", account="main", currency="TRY")[0] == (T0 / 1000, 1.0)


def test_unpriced_assets_are_left_out_of_values_and_counted() -> None:
    dust = history({**NOW, "XYZ": D(7)})
    text = written([dust])
    assert points(text, "btcturk_balance", account="main", asset="XYZ")[0][1] == 7
    assert points(text, "btcturk_balance_value", account="main", asset="XYZ", currency="TRY") == []
    assert {v for _, v in points(text, "btcturk_unpriced_assets", account="main", currency="TRY")} == {1}
    portfolio = dict(points(text, "btcturk_portfolio_value", account="main", currency="TRY"))
    assert portfolio[T0 // 1000 + 3600] == 1000.0  # the priced part only, as the live exporter sums
    timeline = reconstruct(dust, PLAN, btc_try)
    assert any(n.code == "unpriced" and n.asset == "XYZ" for n in timeline.notices)


def records_until(
    ms: int, trades: Sequence[Trade], transfers: Sequence[Transfer]
) -> tuple[list[Trade], list[Transfer]]:
    return [t for t in trades if t.timestamp_ms <= ms], [t for t in transfers if t.timestamp_ms <= ms]


@pytest.mark.parametrize("method", ["average", "fifo"])
def test_positions_at_each_step_are_what_compute_gives_over_the_records_so_far(method: str) -> None:
    trades = [
        *TRADES,
        trade(3, T0 + 2 * H, "USDT/TRY", "buy", "10", "34", "-0.34", "-0.0612"),
        trade(4, T0 + 4 * H + 7, "BTC/USDT", "buy", "0.001", "1500", "-0.0015", "0"),
        trade(5, T0 + 5 * H, "BTC/TRY", "sell", "-0.0035", "56000", "-1", "-0.18"),
    ]
    now = {"BTC": D("0.0015"), "TRY": D(0), "USDT": D(0)}
    walked = {"TRY": D(0), "BTC": D(0), "USDT": D(0)}
    plan = Plan(T0, T0 + 6 * H, H, ("TRY", "USDT"), method)  # type: ignore[arg-type]
    timeline = reconstruct(history(now, trades), plan, btc_try)
    for i, ms in enumerate(timeline.steps):
        some_trades, some_transfers = records_until(ms, trades, TRANSFERS)
        for currency in ("TRY", "USDT"):
            basis = compute(some_trades, some_transfers, currency, btc_try, method)  # type: ignore[arg-type]
            assert timeline.net_deposits[currency][i] == basis.net_deposits
            for asset in walked:
                expected = basis.positions.get(asset)
                got = timeline.positions[asset, currency][i]
                if expected is None:
                    assert got is None
                else:
                    assert got == (expected.quantity, expected.cost, expected.realised), (asset, currency, i)


def test_counters_agree_with_compute_at_the_last_step() -> None:
    timeline = reconstruct(history(), PLAN, btc_try)
    totals = count([*TRADES, *TRANSFERS])
    for counted in COUNTED:
        assert {k: v[-1] for k, v in timeline.counters[counted].items()} == totals[counted], counted


amounts = st.decimals(min_value=D("0.001"), max_value=D(5), places=3)
record_specs = st.lists(
    st.tuples(
        st.integers(0, 20 * H),
        st.sampled_from(["buy", "sell", "deposit", "withdrawal"]),
        st.sampled_from(["BTC", "USDT"]),
        amounts,
        amounts,
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(record_specs)
def test_counters_never_decrease(specs: list[tuple[int, str, str, D, D]]) -> None:
    trades: list[Trade] = []
    transfers: list[Transfer] = []
    for n, (ms, kind, asset, amount, fee) in enumerate(specs):
        if kind in ("buy", "sell"):
            signed = amount if kind == "buy" else -amount
            trades.append(trade(n, T0 + ms, f"{asset}/TRY", kind, str(signed), "100", str(-fee), "-0.01"))
        else:
            transfers.append(transfer(n, T0 + ms, asset, str(amount if kind == "deposit" else -amount)))
    plan = Plan(T0, T0 + 21 * H, H, ("TRY",))
    timeline = reconstruct(
        history({"BTC": D(100), "TRY": D(10_000)}, trades, transfers, T0 + 21 * H), plan, btc_try
    )
    for counted in COUNTED:
        for key, values in timeline.counters[counted].items():
            assert all(a <= b for a, b in itertools.pairwise(values)), (counted, key)
            assert len(values) == len(timeline.steps)


def test_the_file_is_strict_openmetrics_with_only_the_promised_families_and_labels() -> None:
    text = written([history(), history(account="second")])
    assert text.endswith("# EOF\n")
    families = list(text_string_to_metric_families(text))  # the strict parser: grouping, order, EOF
    assert [f.name for f in families] == [f.name for f in FAMILIES]
    labels = {f.name: f.labels for f in FAMILIES}
    kinds = {f.name: f.kind for f in FAMILIES}
    for family in families:
        assert family.type == kinds[family.name]
        for s in family.samples:
            assert s.name == family.name + ("_total" if family.type == "counter" else "")
            assert tuple(s.labels) == labels[family.name] or set(s.labels) == set(labels[family.name])
    assert "btcturk_up" not in text and "btcturk_api_requests" not in text
    # Both accounts' series sit inside one contiguous family, the first account's first.
    balance = families[0].samples
    accounts = [s.labels["account"] for s in balance]
    assert accounts == sorted(accounts) and set(accounts) == {"main", "second"}
    assert {f.name for f in ACTIVITY_FAMILIES} <= {f.name for f in families}


def test_progress_lines_and_the_summary() -> None:
    seen: list[Progress] = []
    out = io.StringIO()
    summary = backfill(out, [history(), history(account="b")], PLAN, btc_try, seen.append)
    assert [str(p) for p in seen[:2]] == [
        "backfill: reconstructed account b (1/2)",
        "backfill: reconstructed account main (2/2)",
    ]
    assert [p.name for p in seen[2:]] == [f.name for f in FAMILIES]
    assert seen[-1].samples == summary.samples
    parsed = [s for f in text_string_to_metric_families(out.getvalue()) for s in f.samples]
    assert summary.samples == len(parsed)
    assert summary.series == len({(s.name, tuple(sorted(s.labels.items()))) for s in parsed})
    assert (summary.first_ms, summary.last_ms) == (T0, T0 + 5 * H)
    assert summary.accounts == 2 and summary.families == len(FAMILIES)


def test_output_is_written_series_by_series_not_built_whole() -> None:
    class Recorder(io.StringIO):
        chunks: list[int]

        def write(self, text: str) -> int:
            self.chunks.append(len(text))
            return super().write(text)

    out = Recorder()
    out.chunks = []
    backfill(out, [history()], Plan(T0, T0 + 200 * H, H, ("TRY", "USDT")), btc_try)
    assert len(out.chunks) > 30
    assert max(out.chunks) < len(out.getvalue()) / 10


def test_account_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="account 'main' given twice"):
        backfill(io.StringIO(), [history(), history()], PLAN, btc_try)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((T0, T0 + H, 0, ("TRY",)), "step: must be positive"),
        ((T0, T0, H, ("TRY",)), "since .* must be before until"),
        ((T0, T0 + H, H, ()), "currencies"),
        ((T0, T0 + (MAX_STEPS + 1) * 1000, 1000, ("TRY",)), "more than"),
    ],
)
def test_bad_plans_are_refused_with_one_line(args: tuple, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        Plan(*args)


def test_a_bad_method_is_refused() -> None:
    with pytest.raises(ValueError, match="method"):
        Plan(T0, T0 + H, H, ("TRY",), "lofi")  # type: ignore[arg-type]


def test_an_empty_range_writes_an_empty_valid_file() -> None:
    timeline: Timeline = reconstruct(history(balances_ms=T0 - 1), PLAN, btc_try)
    assert len(timeline.steps) == 0 and any(n.code == "empty" for n in timeline.notices)
    out = io.StringIO()
    summary = backfill(out, [history(balances_ms=T0 - 1)], PLAN, btc_try)
    assert out.getvalue() == "# EOF\n" and summary.samples == 0


# --- unit value (issue 17) ---


def test_the_unit_value_by_hand_at_every_step() -> None:
    """1,000 TRY in at T0+10ms buys 1,000 units; the withdrawal of 0.002 BTC at T0+4h+1ms (BTC at
    54,000: 1,055.268 held, a unit worth 1.055268) redeems 108 TRY of them; trades issue none."""
    text = written([history()])
    s = T0 // 1000
    units_after = D(1000) * D("947.268") / D("1055.268")
    expected = {
        s + 3600: 1.0,
        s + 7200: 1.0141,  # 0.01 BTC x 52,000 + 494.1 TRY
        s + 10800: 1.049268,
        s + 14400: 1.055268,
        s + 18000: float(D("951.268") / units_after),  # 0.004 x 55,000 + 731.268 over the units left
    }
    found = dict(points(text, "btcturk_portfolio_unit_value", account="main", currency="TRY"))
    assert found == pytest.approx(expected, rel=1e-12), "no unit before the first deposit: T0 absent"
    # USDT/TRY never moves here, so a unit is worth the same in USDT
    usdt = dict(points(text, "btcturk_portfolio_unit_value", account="main", currency="USDT"))
    assert usdt == pytest.approx(expected, rel=1e-12)


def test_no_unit_value_where_the_ledger_does_not_add_up_to_the_holdings() -> None:
    """0.001 BTC more than the records explain: held from before the ledger, value with no units."""
    text = written([history({"BTC": D("0.005"), "TRY": D("731.268")})])
    assert points(text, "btcturk_portfolio_unit_value", account="main", currency="TRY") == []
    assert points(text, "btcturk_portfolio_value", account="main", currency="TRY"), "the value is still known"
