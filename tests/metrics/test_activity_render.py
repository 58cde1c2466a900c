"""The activity families' text: counters only after the backfill, unknown market state absent,
unrealised profit from the live valuation, disabled means nothing; and the renderer joins it."""

from __future__ import annotations

import gzip
from decimal import Decimal
from types import MappingProxyType

from costbasis_example import Prices, trade, transfer
from support import parse_metrics, sample, samples

from exporter.activity.state import ActivitySnapshot
from exporter.activity.store import ActivityStore, ActivityView
from exporter.api.market import MarketStatus
from exporter.api.parsing import Balance, Ticker
from exporter.ledger.costbasis import CostBasis, Position, compute
from exporter.ledger.counters import Totals
from exporter.metrics.activity_render import render_activity
from exporter.metrics.renderer import Renderer
from exporter.metrics.series import Settings
from exporter.poll.snapshot import AccountSnapshot, PriceSnapshot, Store
from exporter.pricing.valuation import market_for

D = Decimal
DONE = MappingProxyType({"trade": True, "crypto": True, "fiat": True})
HALF = MappingProxyType({"trade": True, "crypto": False, "fiat": True})
RECORDS = MappingProxyType({"trade": 3, "crypto": 1, "fiat": 0})


def basis() -> CostBasis:
    return CostBasis(
        currency="TRY",
        method="average",
        positions={"BTC": Position("BTC", D("0.5"), D("1000000"), D("25000.5"))},
        net_deposits=D("900000"),
        unpriced=0,
        unattributed=0,
    )


def snapshot(complete: MappingProxyType = DONE, **overrides: object) -> ActivitySnapshot:
    values: dict = {
        "account": "main",
        "up": True,
        "permitted": True,
        "last_sync_s": 1_700_000_100.0,
        "failures": MappingProxyType({("/api/v1/users/transactions/trade", "timeout"): 2}),
        "records": RECORDS,
        "backfill_complete": complete,
        "cost_basis": MappingProxyType({"TRY": basis()}) if complete is DONE else MappingProxyType({}),
        "last_trade_ms": 1_700_000_000_000 if complete is DONE else None,
    }
    values.update(overrides)
    return ActivitySnapshot(**values)


def market() -> MarketStatus:
    return MarketStatus(
        0.0,
        MappingProxyType({"BTCTRY": ("BTC", "TRY"), "XYZTRY": ("XYZ", "TRY")}),
        MappingProxyType({"BTCTRY": True, "XYZTRY": False}),
        MappingProxyType({"BTC": True, "XYZ": None}),
        MappingProxyType({"BTC": False, "XYZ": None}),
    )


def totals() -> Totals:
    return {
        "trades": {("BTCTRY", "buy"): 3},
        "trade_fees": {("TRY",): D("12.5")},
        "trade_taxes": {("TRY",): D("2.25")},
        "deposits": {("BTC",): D("0.1")},
        "withdrawals": {},
    }


def store(count_calls: list[str] | None = None) -> ActivityStore:
    def count(account: str) -> Totals:
        if count_calls is not None:
            count_calls.append(account)
        return totals()

    return ActivityStore(["main"], True, count)


def fresh_balances() -> AccountSnapshot:
    """Made when used: its monotonic age counts, and an import-time one goes stale in a long run."""
    return AccountSnapshot(
        "main", (Balance("BTC", "Bitcoin", D("0.5"), D("0.5"), D(0), D(0), D(0)),), 1_700_000_200.0
    )


TICKERS = (Ticker("BTCTRY", "BTC", "TRY", D("2100000"), D("2099000"), D("2101000"), D("3")),)


def render(view: ActivityView, with_prices: bool = True) -> dict:
    index = market_for(TICKERS) if with_prices else None
    return parse_metrics(render_activity(view, {"main": fresh_balances()}, index, ("TRY",), "last"))


def test_a_backfilled_account_serves_every_family() -> None:
    s = store()
    s.publish_snapshot(snapshot())
    s.publish_market(market())
    m = render(s.view())
    labels = {"account": "main", "asset": "BTC", "currency": "TRY"}
    assert sample(m, "btcturk_asset_cost_basis", **labels) == 1_000_000
    assert sample(m, "btcturk_asset_realized_profit", **labels) == 25000.5
    # 0.5 BTC at the live 2,100,000 TRY, minus the cost basis.
    assert sample(m, "btcturk_asset_unrealized_profit", **labels) == 50_000
    assert sample(m, "btcturk_net_deposits", account="main", currency="TRY") == 900_000
    assert sample(m, "btcturk_last_trade_timestamp_seconds", account="main") == 1_700_000_000
    assert sample(m, "btcturk_trades_total", account="main", pair="BTCTRY", side="buy") == 3
    assert sample(m, "btcturk_trade_fees_total", account="main", asset="TRY") == 12.5
    assert sample(m, "btcturk_trade_taxes_total", account="main", asset="TRY") == 2.25
    assert sample(m, "btcturk_deposits_total", account="main", asset="BTC") == 0.1
    assert sample(m, "btcturk_activity_up", account="main") == 1
    assert sample(m, "btcturk_activity_last_sync_timestamp_seconds", account="main") == 1_700_000_100
    trade = "/api/v1/users/transactions/trade"
    assert (
        sample(m, "btcturk_activity_sync_failures_total", account="main", endpoint=trade, reason="timeout")
        == 2
    )
    # Every endpoint's reasons start at 0, so increase() sees the first failure.
    fiat = "/api/v1/users/transactions/fiat"
    assert (
        sample(m, "btcturk_activity_sync_failures_total", account="main", endpoint=fiat, reason="auth") == 0
    )
    assert sample(m, "btcturk_ledger_records", account="main", kind="trade") == 3
    assert sample(m, "btcturk_market_trading", pair="XYZTRY") == 0
    assert sample(m, "btcturk_market_trading", pair="BTCTRY") == 1
    assert sample(m, "btcturk_asset_withdrawals_enabled", asset="BTC") == 0
    assert sample(m, "btcturk_asset_deposits_enabled", asset="BTC") == 1


def test_unknown_switches_are_absent_not_enabled() -> None:
    s = store()
    s.publish_market(market())
    m = render(s.view())
    assert sample(m, "btcturk_asset_withdrawals_enabled", asset="XYZ") is None
    assert sample(m, "btcturk_asset_deposits_enabled", asset="XYZ") is None


def test_no_counters_or_cost_basis_before_the_backfill_is_complete() -> None:
    calls: list[str] = []
    s = store(calls)
    s.publish_snapshot(snapshot(HALF))
    m = render(s.view())
    assert calls == []  # the ledger is not even counted
    for name in ("btcturk_trades_total", "btcturk_trade_fees_total", "btcturk_asset_cost_basis"):
        assert samples(m, name) == {}, name
    assert sample(m, "btcturk_ledger_records", account="main", kind="trade") == 3
    s.publish_snapshot(snapshot())
    assert sample(render(s.view()), "btcturk_trades_total", account="main", pair="BTCTRY", side="buy") == 3
    assert calls == ["main"]


def test_the_ledger_is_counted_again_only_when_records_change() -> None:
    calls: list[str] = []
    s = store(calls)
    first = snapshot()
    s.publish_snapshot(first)
    s.publish_snapshot(snapshot(cost_basis=first.cost_basis))
    assert calls == ["main"]
    s.publish_snapshot(
        snapshot(cost_basis=first.cost_basis, records=MappingProxyType({**RECORDS, "fiat": 1}))
    )
    assert calls == ["main", "main"]


def test_no_unrealised_profit_without_a_live_price() -> None:
    s = store()
    s.publish_snapshot(snapshot())
    m = render(s.view(), with_prices=False)
    assert samples(m, "btcturk_asset_unrealized_profit") == {}
    assert sample(m, "btcturk_asset_cost_basis", account="main", asset="BTC", currency="TRY") == 1_000_000


def test_a_refused_key_is_down_and_an_unsynced_account_too() -> None:
    s = ActivityStore(["main", "other"], True, None)
    s.publish_snapshot(snapshot(HALF, up=False, permitted=False, last_sync_s=None))
    m = render(s.view())
    assert sample(m, "btcturk_activity_up", account="main") == 0
    assert sample(m, "btcturk_activity_up", account="other") == 0
    assert samples(m, "btcturk_activity_last_sync_timestamp_seconds") == {}


def states(m: dict) -> dict[str, str]:
    """The state btcturk_activity_state marks 1, per account; every account has exactly one."""
    found: dict[str, list[str]] = {}
    for labels, value in samples(m, "btcturk_activity_state").items():
        label = dict(labels)
        found.setdefault(label["account"], [])
        if value == 1:
            found[label["account"]].append(label["state"])
        else:
            assert value == 0, labels
    assert all(len(marked) == 1 for marked in found.values()), found
    return {account: marked[0] for account, marked in found.items()}


def test_disabled_renders_only_the_state_that_says_so() -> None:
    s = ActivityStore(["main", "other"], False, None)
    s.publish_market(market())
    text = render_activity(s.view(), {}, None, ("TRY",), "last")
    m = parse_metrics(text)
    assert states(m) == {"main": "off", "other": "off"}
    assert {name for name, _ in m} == {"btcturk_activity_state"}
    assert "# HELP btcturk_activity_state " in text


def test_the_state_says_why_an_accounts_activity_is_empty() -> None:
    s = ActivityStore(["main", "refused", "new"], True, None)
    s.publish_snapshot(snapshot(HALF, account="refused", up=False, permitted=False, last_sync_s=None))
    s.publish_snapshot(snapshot())
    assert states(render(s.view())) == {"main": "on", "refused": "no_permission", "new": "syncing_history"}
    s.publish_snapshot(snapshot(HALF, account="new"))
    assert states(render(s.view()))["new"] == "syncing_history"
    s.publish_snapshot(snapshot(account="new"))
    s.publish_snapshot(snapshot(account="refused"))  # the permission restored
    assert set(states(render(s.view())).values()) == {"on"}


def test_the_renderer_joins_the_activity_families_and_follows_changes() -> None:
    balances = Store(["main"])
    activity = store()
    settings = Settings(30.0, 300.0, ("TRY",), "last", False)
    renderer = Renderer(settings, balances.view, activity=activity.view)
    renderer.attach(balances)
    balances.publish_balances(fresh_balances(), 0.1)
    balances.publish_prices(PriceSnapshot(TICKERS, 1_700_000_200.0))
    before = parse_metrics(renderer.scrape().decode())
    assert sample(before, "btcturk_activity_up", account="main") == 0
    assert samples(before, "btcturk_asset_unrealized_profit") == {}
    activity.publish_snapshot(snapshot())
    text = renderer.scrape().decode()
    m = parse_metrics(text)
    assert sample(m, "btcturk_asset_unrealized_profit", account="main", asset="BTC", currency="TRY") == 50_000
    assert text.count("# TYPE btcturk_activity_up gauge") == 1
    assert gzip.decompress(renderer.scrape(gzipped=True)).decode() == renderer.scrape().decode()


def test_unrealised_profit_values_the_ledgers_holding_not_the_polled_balance() -> None:
    """A buy the sync has not read yet is in the balance but not in the cost: it is no profit."""
    s = store()
    s.publish_snapshot(snapshot())
    bigger = AccountSnapshot(
        "main", (Balance("BTC", "Bitcoin", D("0.7"), D("0.7"), D(0), D(0), D(0)),), 1_700_000_300.0
    )
    text = render_activity(s.view(), {"main": bigger}, market_for(TICKERS), ("TRY",), "last")
    m = parse_metrics(text)
    assert sample(m, "btcturk_asset_unrealized_profit", account="main", asset="BTC", currency="TRY") == 50_000
    # Without a fresh balance snapshot of the account (its prices unknown to it): none at all.
    assert "btcturk_asset_unrealized_profit" not in render_activity(
        s.view(), {}, market_for(TICKERS), ("TRY",), "last"
    )


def test_a_sale_beyond_the_ledgers_holding_shows_its_shortfall() -> None:
    """1 BTC bought, 1.5 sold (the rest bought before the ledger's first record): 0.5 BTC short."""
    buy = trade(1, ("BTC", "TRY"), "buy", "1", "1000000", "0", "0")
    sale = trade(2, ("BTC", "TRY"), "sell", "-1.5", "1200000", "0", "0")
    short = compute([buy, sale], [transfer(0, "fiat", "TRY", "1000000")], "TRY", Prices({}))
    covered = compute([buy], [transfer(0, "fiat", "TRY", "1000000")], "TRY", Prices({}))
    s = store()
    s.publish_snapshot(snapshot(cost_basis=MappingProxyType({"TRY": short})))
    m = render(s.view())
    assert sample(m, "btcturk_asset_shortfall", account="main", asset="BTC", currency="TRY") == 0.5
    assert sample(m, "btcturk_asset_shortfall", account="main", asset="TRY", currency="TRY") == 0
    s.publish_snapshot(snapshot(cost_basis=MappingProxyType({"TRY": covered})))
    m = render(s.view())
    assert sample(m, "btcturk_asset_shortfall", account="main", asset="BTC", currency="TRY") == 0


MATCH = MappingProxyType({"BTC": "match", "XYZ": "match"})


def test_the_unit_value_is_the_live_portfolio_value_over_the_ledgers_units() -> None:
    s = store()
    s.publish_snapshot(snapshot(units=MappingProxyType({"TRY": D("700000"), "USDT": None}), reconciled=MATCH))
    m = render(s.view())
    # 0.5 BTC at 2100000 TRY (btcturk_portfolio_value) over 700000 units
    assert sample(m, "btcturk_portfolio_unit_value", account="main", currency="TRY") == 1.5
    assert "# HELP btcturk_portfolio_unit_value " in render_activity(
        s.view(), {"main": fresh_balances()}, market_for(TICKERS), ("TRY",), "last"
    )
    values = render_activity(
        s.view(), {"main": fresh_balances()}, market_for(TICKERS), ("TRY", "USDT"), "last"
    )
    assert 'currency="USDT"' not in "".join(
        line for line in values.splitlines() if line.startswith("btcturk_portfolio_unit_value")
    ), "unknown units, and USDT has no price: absent"
    assert samples(render(s.view(), with_prices=False), "btcturk_portfolio_unit_value") == {}


def test_no_unit_value_while_a_holding_is_unpriced() -> None:
    s = store()
    s.publish_snapshot(snapshot(units=MappingProxyType({"TRY": D("700000")}), reconciled=MATCH))
    held = (
        Balance("BTC", "Bitcoin", D("0.5"), D("0.5"), D(0), D(0), D(0)),
        Balance("XYZ", "Xyz", D("3"), D("3"), D(0), D(0), D(0)),
    )
    polled = AccountSnapshot("main", held, 1_700_000_200.0)
    m = parse_metrics(render_activity(s.view(), {"main": polled}, market_for(TICKERS), ("TRY",), "last"))
    assert samples(m, "btcturk_portfolio_unit_value") == {}, "XYZ has no price: the value is not known"


def test_no_unit_value_while_a_holding_does_not_reconcile_with_the_ledger() -> None:
    s = store()
    units = MappingProxyType({"TRY": D("700000")})
    s.publish_snapshot(snapshot(units=units, reconciled=MappingProxyType({"BTC": "incomplete"})))
    assert samples(render(s.view()), "btcturk_portfolio_unit_value") == {}, "held since before the ledger"
    s.publish_snapshot(snapshot(units=units))
    assert samples(render(s.view()), "btcturk_portfolio_unit_value") == {}, "not reconciled yet"


def test_stale_figures_are_marked_and_their_unit_value_is_absent() -> None:
    s = store()
    units = MappingProxyType({"TRY": D("700000")})
    s.publish_snapshot(snapshot(units=units, reconciled=MATCH))
    m = render(s.view())
    assert sample(m, "btcturk_ledger_figures_stale", account="main") == 0
    assert sample(m, "btcturk_portfolio_unit_value", account="main", currency="TRY") == 1.5
    s.publish_snapshot(snapshot(units=units, reconciled=MATCH, stale=True))
    m = render(s.view())
    assert sample(m, "btcturk_ledger_figures_stale", account="main") == 1
    # The kept figures are served; the unit value would divide today's value by yesterday's units.
    assert sample(m, "btcturk_asset_cost_basis", account="main", asset="BTC", currency="TRY") == 1000000
    assert samples(m, "btcturk_portfolio_unit_value") == {}
    # Not before the history is read: nothing is served to be stale.
    s.publish_snapshot(snapshot(complete=HALF, stale=True))
    assert samples(render(s.view()), "btcturk_ledger_figures_stale") == {}


def test_unpriced_records_and_unmatched_proceeds_are_served() -> None:
    buy = trade(1, ("BTC", "TRY"), "buy", "1", "1000000", "0", "0")
    sale = trade(2, ("BTC", "TRY"), "sell", "-1.5", "1200000", "0", "0")
    airdrop = transfer(3, "crypto", "OLDTOKEN", "5")  # no price at all
    short = compute([buy, sale], [transfer(0, "fiat", "TRY", "1000000"), airdrop], "TRY", Prices({}))
    s = store()
    s.publish_snapshot(snapshot(cost_basis=MappingProxyType({"TRY": short})))
    text = render_activity(s.view(), {"main": fresh_balances()}, market_for(TICKERS), ("TRY",), "last")
    m = parse_metrics(text)
    assert sample(m, "btcturk_ledger_unpriced_records", account="main", currency="TRY") == 1
    # 0.5 BTC sold beyond the holding at 1200000 TRY: 600000 TRY of proceeds without a cost.
    proceeds = sample(m, "btcturk_asset_unmatched_proceeds", account="main", asset="BTC", currency="TRY")
    assert proceeds == 600000
    assert "# HELP btcturk_ledger_unpriced_records " in text
    assert "# HELP btcturk_asset_unmatched_proceeds " in text
