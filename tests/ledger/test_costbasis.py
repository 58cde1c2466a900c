"""Cost basis: the worked example of docs/cost-basis.md, to the last digit, and the edge rules."""

from __future__ import annotations

from dataclasses import replace
from decimal import Context, localcontext
from decimal import Decimal as D
from pathlib import Path

import pytest
from costbasis_example import (
    BTCTRY,
    BTCUSDT,
    EXAMPLE_PRICES,
    EXAMPLE_TRADES,
    EXAMPLE_TRANSFERS,
    USDTTRY,
    Prices,
    t,
    trade,
    transfer,
)

from exporter.ledger.costbasis import CostBasis, Position, Replay, compute, compute_chunks, order


def example(method: str) -> tuple[CostBasis, Prices]:
    prices = Prices(EXAMPLE_PRICES)
    result = compute(EXAMPLE_TRADES, EXAMPLE_TRANSFERS, "TRY", prices, method, keep_events=True)  # type: ignore[arg-type]
    return result, prices


def test_worked_example_average_cost() -> None:
    result, prices = example("average")
    assert result.positions == {
        "BTC": Position("BTC", D("0.36"), D("760016.56"), D("230884.8")),
        "TRY": Position("TRY", D("1255586.8"), D("1255586.8"), D("0")),
        "USDT": Position("USDT", D("6996.46"), D("238160.3379752"), D("2883.0379752")),
    }
    assert result.realised == D("233767.8379752")
    # Only the deposit, the USDT-quoted trade and the withdrawal needed a market price.
    assert sorted(prices.asked) == sorted(EXAMPLE_PRICES)


def test_worked_example_fifo() -> None:
    result, _ = example("fifo")
    assert result.positions == {
        "BTC": Position("BTC", D("0.36"), D("787928.66"), D("267026.4")),
        "TRY": Position("TRY", D("1255586.8"), D("1255586.8"), D("0")),
        "USDT": Position("USDT", D("6996.46"), D("238160.3379752"), D("2883.0379752")),
    }
    assert result.realised == D("269909.4379752")


@pytest.mark.parametrize("method", ["average", "fifo"])
def test_worked_example_totals(method: str) -> None:
    result, _ = example(method)
    assert result.net_deposits == D("1994000")
    assert (result.unpriced, result.unattributed) == (0, 0)
    assert (result.currency, result.method) == ("TRY", method)


@pytest.mark.parametrize("method", ["average", "fifo"])
def test_cost_is_conserved(method: str) -> None:
    """What is held at cost = what came in at cost - what left at cost + what was realised."""
    result, _ = example(method)
    held = sum(p.cost for p in result.positions.values())
    withdrawn_cost = {"average": D("190004.14"), "fifo": D("198233.64")}[method]
    assert held == D("2210000") - withdrawn_cost + result.realised


def test_worked_example_events() -> None:
    result, _ = example("average")
    rows = [(e.record.timestamp_ms, e.value, e.realised) for e in result.events]
    assert rows == [
        (t(1), D("2000000"), None),
        (t(2), D("800944"), None),  # a TRY-quoted buy: paid in the valuation currency, nothing realised
        (t(3), D("210000"), None),
        (t(4), D("1101298"), None),
        (t(5), D("1498230"), D("230884.8")),
        (t(6), D("340401.2"), None),
        (t(7), D("105123.90"), D("2883.0379752")),  # the buy gave USDT, realising its profit
        (t(8), D("216000"), None),
    ]


def test_events_are_not_kept_unless_asked() -> None:
    assert compute(EXAMPLE_TRADES, EXAMPLE_TRANSFERS, "TRY", Prices(EXAMPLE_PRICES)).events == ()


@pytest.mark.parametrize("method", ["average", "fifo"])
def test_usdt_valuation_with_a_routed_price_and_the_currency_as_base(method: str) -> None:
    trades = [
        trade(2, USDTTRY, "sell", "-500", "40", "-16", "-4"),  # gives 500 USDT: worth exactly 500
        trade(3, BTCTRY, "buy", "0.00499", "2000000", "-8", "-2"),  # pays 9,990 TRY at 1/40 USDT
        trade(4, BTCUSDT, "sell", "-0.00499", "52000", "-0.25948", "-0.0467064"),
    ]
    transfers = [transfer(1, "crypto", "USDT", "1000")]
    # price_at routes (TRY in USDT is 1/40 through USDT/TRY): the replay asks once and inverts nothing.
    prices = Prices({("TRY", "USDT", t(3)): D("0.025")})
    result = compute(trades, transfers, "USDT", prices, method)  # type: ignore[arg-type]
    assert result.positions == {
        "BTC": Position("BTC", D("0"), D("0"), D("9.4238136")),
        "TRY": Position("TRY", D("9990"), D("250"), D("-0.25")),
        "USDT": Position("USDT", D("759.1738136"), D("759.1738136"), D("0")),
    }
    assert result.net_deposits == D("1000")
    assert prices.asked == [("TRY", "USDT", t(3))]


@pytest.mark.parametrize(
    ("method", "realised"),
    # average: (2000 - 1300) + (2500 - 1300); fifo: (2000 - 1000) + (2500 - 1600). Once everything
    # held is gone the two methods agree on the total.
    # lifo and hifo: (2000 - 1600) + (2500 - 1000).
    [("average", D("1900")), ("fifo", D("1900")), ("lifo", D("1900")), ("hifo", D("1900"))],
)
def test_selling_more_than_held_never_makes_cost_negative(method: str, realised: D) -> None:
    trades = [
        trade(1, BTCTRY, "buy", "1", "1000", "0", "0"),
        trade(2, BTCTRY, "buy", "1", "1600", "0", "0"),
        trade(3, BTCTRY, "sell", "-1", "2000", "0", "0"),
        # 1 held, 2 sold: half the 5,000 of proceeds is realised against what was held.
        trade(4, BTCTRY, "sell", "-2", "2500", "0", "0"),
    ]
    result = compute(trades, [], "TRY", Prices({}), method)  # type: ignore[arg-type]
    btc = result.positions["BTC"]
    assert (btc.quantity, btc.cost, btc.realised) == (0, 0, realised)
    assert (btc.shortfalls, btc.shortfall_quantity, btc.unmatched_proceeds) == (1, D("1"), D("2500"))
    # TRY was spent that the history never saw arrive: the same rule, counted on TRY.
    assert result.positions["TRY"].shortfalls == 2
    assert result.positions["TRY"].cost >= 0


def test_a_sale_with_nothing_held_realises_nothing() -> None:
    result = compute([trade(1, BTCTRY, "sell", "-0.5", "1000", "-1", "0")], [], "TRY", Prices({}))
    btc = result.positions["BTC"]
    assert (btc.quantity, btc.cost, btc.realised) == (0, 0, 0)
    assert btc.unmatched_proceeds == D("499")
    assert result.positions["TRY"] == Position("TRY", D("499"), D("499"), D("0"))


def test_a_withdrawal_of_more_than_held_is_a_counted_shortfall() -> None:
    transfers = [transfer(1, "crypto", "BTC", "0.1"), transfer(2, "crypto", "BTC", "-0.3")]
    result = compute(
        [], transfers, "TRY", Prices({("BTC", "TRY", t(1)): D("10"), ("BTC", "TRY", t(2)): D("20")})
    )
    btc = result.positions["BTC"]
    assert (btc.quantity, btc.cost, btc.realised, btc.shortfalls) == (0, 0, 0, 1)
    assert btc.shortfall_quantity == D("0.2")
    assert result.net_deposits == D("1") - D("6")


def test_unpriced_and_unattributed_records_are_counted_not_guessed() -> None:
    trades = [trade(2, ("ETH", "BTC"), "buy", "1", "0.05", "0", "0")]
    transfers = [
        transfer(1, "crypto", "BTC", "1"),  # no BTC price at t(1)
        transfer(3, "fiat", None, "100"),
        transfer(4, "crypto", "BTC", "-0.5"),  # no price: removes cost, left out of net deposits
    ]
    result = compute(trades, transfers, "TRY", Prices({}))
    assert (result.unpriced, result.unattributed) == (3, 1)
    assert result.net_deposits == 0
    assert result.positions["BTC"].shortfalls == 1  # the deposit never entered
    assert "ETH" not in result.positions


def test_a_non_valuation_pair_falls_back_to_the_base_price() -> None:
    trades = [trade(1, ("ETH", "BTC"), "buy", "2", "0.05", "-0.0001", "0")]
    result = compute(trades, [], "TRY", Prices({("ETH", "TRY", t(1)): D("100000")}), keep_events=True)
    assert result.events[0].value == D("200000")
    assert result.positions["ETH"] == Position("ETH", D("2"), D("200000"), D("0"))
    btc = result.positions["BTC"]
    assert (btc.cost, btc.realised, btc.unmatched_proceeds) == (0, 0, D("200000"))


def test_same_millisecond_deposit_comes_before_the_trade_and_the_withdrawal_after() -> None:
    trades = [trade(1, BTCTRY, "buy", "1", "100", "0", "0")]
    # Listed in the worst order on purpose: the replay orders same-time records itself.
    transfers = [transfer(1, "crypto", "BTC", "-1"), transfer(1, "fiat", "TRY", "100")]
    result = compute(trades, transfers, "TRY", Prices({("BTC", "TRY", t(1)): D("100")}))
    assert all(p.shortfalls == 0 for p in result.positions.values())
    assert result.positions["BTC"] == Position("BTC", D("0"), D("0"), D("0"))


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown cost-basis method 'lofi'"):
        compute([], [], "TRY", Prices({}), "lofi")  # type: ignore[arg-type]


def test_average_cost_splits_round_only_at_the_sixtieth_digit() -> None:
    trades = [trade(1, BTCTRY, "buy", "3", "1", "-1", "0"), trade(2, BTCTRY, "sell", "-1", "1", "0", "0")]
    btc = compute(trades, [], "TRY", Prices({})).positions["BTC"]
    with localcontext(Context(prec=60)):
        third = D(4) / D(3)
        assert btc.cost == D(4) - third
        assert btc.realised == D(1) - third
    assert str(btc.cost) == "2." + "6" * 58 + "7"


def test_the_documented_result_table_is_what_the_code_computes() -> None:
    """docs/cost-basis.md (pasted into the README) shows the same numbers the replay produces."""
    doc = (Path(__file__).parents[2] / "docs" / "cost-basis.md").read_text(encoding="utf-8")
    table = doc.split("Result:", 1)[1].split("\n\n", 2)[1]
    shown = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip().strip("*").replace(",", "") for c in line.strip("|").split("|")]
        shown[cells[0]] = cells[1:]
    average, _ = example("average")
    fifo, _ = example("fifo")
    for asset in ("BTC", "USDT", "TRY"):
        a, f = average.positions[asset], fifo.positions[asset]
        assert [D(x) for x in shown[asset]] == [a.quantity, a.cost, a.realised, f.cost, f.realised], asset
    total = shown["total"]
    assert D(total[2]) == average.realised and D(total[4]) == fifo.realised
    assert D(total[1]) == sum(p.cost for p in average.positions.values())
    assert D(total[3]) == sum(p.cost for p in fifo.positions.values())
    assert "**1,994,000 TRY**" in doc


def test_a_sale_whose_fees_exceed_its_proceeds_loses_the_difference_on_the_asset_sold() -> None:
    trades = [trade(2, BTCTRY, "buy", "1", "100", "0", "0"), trade(3, BTCTRY, "sell", "-1", "1", "-3", "0")]
    result = compute(trades, [transfer(1, "fiat", "TRY", "200")], "TRY", Prices({}), keep_events=True)
    assert result.positions["BTC"] == Position("BTC", D("0"), D("0"), D("-102"))
    assert result.positions["TRY"] == Position("TRY", D("98"), D("98"), D("0"))
    assert result.events[-1].value == D("-2")


def test_compute_chunks_values_the_same_history_in_every_currency() -> None:
    prices = Prices({**EXAMPLE_PRICES, ("BTC", "USDT", t(3)): D("60000")})
    both = compute_chunks([(iter(EXAMPLE_TRADES), iter(EXAMPLE_TRANSFERS))], ["TRY", "usdt"], prices)
    assert set(both) == {"TRY", "USDT"}
    assert both["TRY"].positions == example("average")[0].positions
    assert both["USDT"].currency == "USDT"
    assert both["USDT"].positions["USDT"].realised == 0
    # USDT valuation has no TRY/USDT price in this table: the TRY records are counted, not guessed.
    assert both["USDT"].unpriced > 0


@pytest.mark.parametrize("method", ["average", "fifo"])
def test_stepping_a_replay_record_by_record_gives_what_compute_gives(method: str) -> None:
    replay = Replay("try", Prices(EXAMPLE_PRICES), method, parts=True)  # type: ignore[arg-type]
    records = order([*EXAMPLE_TRANSFERS, *EXAMPLE_TRADES])
    assert [r.timestamp_ms for r in records] == [t(n) for n in range(1, 9)]
    assert replay.position("BTC") is None
    events = []
    for record in records:
        events.append(replay.apply(record))
        if record is EXAMPLE_TRANSFERS[1]:  # 0.4 BTC bought for 800944 TRY, then 0.1 deposited at 2100000
            assert replay.position("BTC") == (D("0.5"), D("1010944.0"), D("0"))
            assert replay.net_deposits == D("2210000.0")
    expected, _ = example(method)
    assert replay.result(tuple(events)) == expected
    btc = expected.positions["BTC"]
    assert replay.position("BTC") == (btc.quantity, btc.cost, btc.realised)
    # Without parts, the same figures and events, with no lots named.
    bare = Replay("try", Prices(EXAMPLE_PRICES), method)  # type: ignore[arg-type]
    unnamed = tuple(bare.apply(record) for record in records)
    assert unnamed == tuple(event._replace(lots=()) for event in events)
    assert bare.result() == replace(expected, events=())
    if method != "average":
        assert any(event.lots for event in events)


def test_a_replay_refuses_an_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown cost-basis method 'lofi'"):
        Replay("TRY", Prices({}), "lofi")  # type: ignore[arg-type]


def test_the_readme_carries_the_rules_and_the_worked_example_of_the_doc() -> None:
    """README's Cost basis section is docs/cost-basis.md's rules and example, word for word."""
    root = Path(__file__).parents[2]
    doc = (root / "docs" / "cost-basis.md").read_text(encoding="utf-8")
    readme = (root / "README.md").read_text(encoding="utf-8")
    pasted = doc[doc.index("### Rules") : doc.index("### The ledger file")].replace("\n### ", "\n#### ")
    pasted = pasted.replace("### Rules", "#### Rules", 1)
    assert pasted.strip() in readme
