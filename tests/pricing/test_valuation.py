"""Route choice, prices and exact Decimal valuation of balances."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.api.parsing import Balance, Ticker
from exporter.pricing.routes import BRIDGES, Leg, Route, route_rate
from exporter.pricing.valuation import (
    PRICE_FIELDS,
    AssetValue,
    Market,
    market_for,
    pairs_for_valuation,
    price,
    value_balances,
)

D = Decimal


def tk(base: str, quote: str, last: str = "1", bid: str | None = None, ask: str | None = None) -> Ticker:
    """Build a ticker whose bid and ask default to its last price."""
    return Ticker(
        pair=base + quote,
        base=base,
        quote=quote,
        last=D(last),
        bid=D(bid if bid is not None else last),
        ask=D(ask if ask is not None else last),
        volume=D("1000"),
    )


def bal(asset: str, balance: str, free: str | None = None, locked: str = "0") -> Balance:
    """Build a balance whose free part defaults to all of it."""
    return Balance(
        asset=asset,
        asset_name=asset,
        balance=D(balance),
        free=D(free if free is not None else balance),
        locked=D(locked),
        order_fund=D(0),
        request_fund=D(0),
    )


def exact(fn: Callable[[], Decimal]) -> Decimal:
    """Evaluate fn in a context wide enough that the test's own arithmetic never rounds."""
    with localcontext() as ctx:
        ctx.prec = 200
        return fn()


def test_public_constants() -> None:
    assert PRICE_FIELDS == ("last", "bid", "mid", "ask")
    assert BRIDGES == ("USDT", "TRY", "BTC")


# --- price -----------------------------------------------------------------------------------------------


def test_price_fields() -> None:
    ticker = tk("BTC", "TRY", last="3512345.67", bid="3512000.01", ask="3512400.02")
    assert price(ticker, "last") == D("3512345.67")
    assert price(ticker, "bid") == D("3512000.01")
    assert price(ticker, "mid") == D("3512200.015")


def test_price_mid_is_exact_for_long_prices() -> None:
    tiny, huge = "0.0000000000000000000000000000000001", "12345678901234567890"
    ticker = tk("SHIB", "TRY", last="1", bid=tiny, ask=huge)
    expected = exact(lambda: (D(tiny) + D(huge)) / 2)
    assert price(ticker, "mid") == expected
    assert str(expected) == "6172839450617283945.00000000000000000000000000000000005"


@pytest.mark.parametrize(
    ("last", "bid", "ask", "field"),
    [
        ("0", "1", "2", "last"),
        ("1", "0", "2", "bid"),
        ("1", "0", "0", "mid"),
        # A one-sided book has no midpoint worth valuing at.
        ("1", "0", "2", "mid"),
        ("1", "2", "0", "mid"),
    ],
)
def test_price_zero_means_no_market(last: str, bid: str, ask: str, field: str) -> None:
    assert price(tk("X", "TRY", last=last, bid=bid, ask=ask), field) is None


def test_price_unknown_field() -> None:
    with pytest.raises(ValueError, match="close"):
        price(tk("BTC", "TRY"), "close")


def index_tickers(tickers: Iterable[Ticker]) -> dict[tuple[str, str], Ticker]:
    """Key tickers by (base, quote); the first of a duplicate is kept, as Market keeps it."""
    indexed: dict[tuple[str, str], Ticker] = {}
    for ticker in tickers:
        indexed.setdefault((ticker.base, ticker.quote), ticker)
    return indexed


def find_route(asset: str, currency: str, tickers: Mapping[tuple[str, str], Ticker]) -> Route | None:
    """The preferred route by the pairs alone: same symbol, direct, inverse, then bridges (routes.BRIDGES)."""
    candidates = Market.of(tickers.values()).table.routes(asset, currency)
    return candidates[0] if candidates else None


def rate(route: Route, tickers: Mapping[tuple[str, str], Ticker], field: str) -> Decimal | None:
    """The value of one unit along the route, or None if any leg has no price."""
    return route_rate(route, Market.of(tickers.values()).price_of(field))


# --- index_tickers ---------------------------------------------------------------------------------------


def test_index_tickers_keys_by_base_and_quote() -> None:
    btc, usdt = tk("BTC", "TRY"), tk("USDT", "TRY")
    assert index_tickers([btc, usdt]) == {("BTC", "TRY"): btc, ("USDT", "TRY"): usdt}
    assert index_tickers([]) == {}


# --- find_route ------------------------------------------------------------------------------------------


# The quote symbols of this file's pairs, to split a pair's name into base and quote.
QUOTES = ("USDT", "TRY", "BTC", "XAU", "EUR", "AVAX", "AAA")


def route(*legs: tuple[str, bool]) -> Route:
    """Build a route from (pair, inverse) pairs named base + quote."""
    quote = {pair: next(q for q in QUOTES if pair.endswith(q)) for pair, _ in legs}
    return Route(tuple(Leg(pair, pair[: -len(quote[pair])], quote[pair], inverse) for pair, inverse in legs))


MARKET = index_tickers(
    [
        tk("BTC", "TRY", last="3512345.67"),
        tk("BTC", "USDT", last="97000.5"),
        tk("USDT", "TRY", last="36.21"),
        tk("ETH", "BTC", last="0.0321"),
        tk("SHIB", "TRY", last="0.000812"),
        # Only quoted as BTC/XAU: valuing XAU needs an inverse first leg.
        tk("BTC", "XAU", last="38.5"),
    ]
)


@pytest.mark.parametrize(
    ("asset", "currency", "expected"),
    [
        ("TRY", "TRY", Route(())),
        ("USDT", "USDT", Route(())),
        ("NOPE", "NOPE", Route(())),
        ("BTC", "TRY", route(("BTCTRY", False))),
        ("BTC", "USDT", route(("BTCUSDT", False))),
        ("TRY", "USDT", route(("USDTTRY", True))),
        ("USDT", "BTC", route(("BTCUSDT", True))),
        # Both legs direct, through the first bridge that completes (USDT has no ETH pair, TRY neither).
        ("ETH", "TRY", route(("ETHBTC", False), ("BTCTRY", False))),
        # First leg direct, second inverse: SHIB -> TRY -> USDT.
        ("SHIB", "USDT", route(("SHIBTRY", False), ("USDTTRY", True))),
        # First leg inverse: XAU -> BTC through BTC/XAU, then BTC -> TRY.
        ("XAU", "TRY", route(("BTCXAU", True), ("BTCTRY", False))),
        # Inverse then direct, and USDT passed over because USDT never reaches XAU.
        ("TRY", "XAU", route(("BTCTRY", True), ("BTCXAU", False))),
        ("NOPE", "TRY", None),
        ("SHIB", "EUR", None),
    ],
)
def test_find_route(asset: str, currency: str, expected: Route | None) -> None:
    assert find_route(asset, currency, MARKET) == expected


def test_bridge_with_both_legs_inverse() -> None:
    tickers = index_tickers([tk("USDT", "AAA"), tk("BBB", "USDT")])
    assert find_route("AAA", "BBB", tickers) == route(("USDTAAA", True), ("BBBUSDT", True))


def test_direct_beats_inverse_and_bridges() -> None:
    tickers = index_tickers([tk("AVAX", "TRY"), tk("TRY", "AVAX"), tk("AVAX", "USDT"), tk("USDT", "TRY")])
    assert find_route("AVAX", "TRY", tickers) == route(("AVAXTRY", False))
    del tickers[("AVAX", "TRY")]
    assert find_route("AVAX", "TRY", tickers) == route(("TRYAVAX", True))


def test_bridge_order_usdt_then_try_then_btc() -> None:
    tickers = index_tickers(
        [
            tk("AVAX", "USDT"),
            tk("AVAX", "TRY"),
            tk("AVAX", "BTC"),
            tk("EUR", "USDT"),
            tk("EUR", "TRY"),
            tk("BTC", "EUR"),
        ]
    )
    assert find_route("AVAX", "EUR", tickers) == route(("AVAXUSDT", False), ("EURUSDT", True))
    del tickers[("AVAX", "USDT")]
    assert find_route("AVAX", "EUR", tickers) == route(("AVAXTRY", False), ("EURTRY", True))
    del tickers[("AVAX", "TRY")]
    assert find_route("AVAX", "EUR", tickers) == route(("AVAXBTC", False), ("BTCEUR", False))


def test_bridge_with_only_a_first_leg_is_passed_over() -> None:
    # AVAX/USDT exists but USDT does not reach EUR, so the TRY bridge wins.
    tickers = index_tickers([tk("AVAX", "USDT"), tk("AVAX", "TRY"), tk("EUR", "TRY")])
    assert find_route("AVAX", "EUR", tickers) == route(("AVAXTRY", False), ("EURTRY", True))


def test_bridge_equal_to_asset_or_currency_is_skipped() -> None:
    # A nonsense self-pair must never become a leg.
    tickers = index_tickers([tk("USDT", "USDT"), tk("USDT", "TRY"), tk("EUR", "TRY")])
    assert find_route("USDT", "EUR", tickers) == route(("USDTTRY", False), ("EURTRY", True))
    assert find_route("EUR", "USDT", tickers) == route(("EURTRY", False), ("USDTTRY", True))


# --- rate ------------------------------------------------------------------------------------------------


def test_rate_same_currency_is_one() -> None:
    assert rate(Route(()), MARKET, "last") == 1


def test_rate_direct() -> None:
    assert rate(route(("BTCTRY", False)), MARKET, "last") == D("3512345.67")


def test_rate_inverse_is_reciprocal_at_34_digits() -> None:
    with localcontext() as ctx:
        ctx.prec = 34
        expected = 1 / D("36.21")
    got = rate(route(("USDTTRY", True)), MARKET, "last")
    assert got == expected
    assert str(got) == "0.02761668047500690417011875172604253"


def test_rate_two_direct_legs_is_exact_product() -> None:
    got = rate(route(("ETHBTC", False), ("BTCTRY", False)), MARKET, "last")
    assert got == D("0.0321") * D("3512345.67")
    assert str(got) == "112746.296007"


def test_rate_mixed_legs() -> None:
    got = rate(route(("SHIBTRY", False), ("USDTTRY", True)), MARKET, "last")
    with localcontext() as ctx:
        ctx.prec = 34
        inverse = 1 / D("36.21")
    assert got == exact(lambda: D("0.000812") * inverse)


def test_rate_none_when_a_leg_has_no_price() -> None:
    tickers = index_tickers([tk("ETH", "BTC", last="0.03"), tk("BTC", "TRY", last="0")])
    assert rate(route(("ETHBTC", False), ("BTCTRY", False)), tickers, "last") is None
    assert rate(route(("BTCTRY", True)), tickers, "last") is None
    # The pair may have vanished from this snapshot.
    assert rate(route(("GONETRY", False)), tickers, "last") is None


@pytest.mark.parametrize(
    ("field", "expected"), [("last", "10"), ("bid", "9"), ("mid", "10.5"), ("ask", "12")]
)
def test_rate_uses_the_chosen_field(field: str, expected: str) -> None:
    tickers = index_tickers([tk("BTC", "TRY", last="10", bid="9", ask="12")])
    assert rate(route(("BTCTRY", False)), tickers, field) == D(expected)


# --- value_balances --------------------------------------------------------------------------------------


def test_value_is_exact_product_with_16_fraction_digits() -> None:
    result = value_balances(
        [bal("BTC", "9.7502186644553258", free="9.7502186644553257", locked="0.0000000000000001")],
        MARKET,
        ["TRY"],
        "last",
    )
    expected = exact(lambda: D("9.7502186644553258") * D("3512345.67"))
    (value,) = result.values
    assert value.balance == expected
    assert str(value.balance) == "34246138.307652846482069286"
    assert value.free == exact(lambda: D("9.7502186644553257") * D("3512345.67"))
    assert value.locked == D("0.000000000351234567")
    assert value.free + value.locked == value.balance


def test_value_stays_exact_beyond_34_digits() -> None:
    # 27 + 9 significant digits: a 34-digit context would round this product.
    result = value_balances([bal("BTC", "99999999999.9999999999999999")], MARKET, ["TRY"], "last")
    assert str(result.values[0].balance) == "351234566999999999.999999999648765433"
    assert result.totals == (("TRY", D("351234566999999999.999999999648765433")),)


def test_value_through_a_two_leg_direct_bridge_is_exact() -> None:
    result = value_balances([bal("ETH", "1.2345678901234567")], MARKET, ["TRY"], "last")
    assert result.values[0].balance == exact(lambda: D("1.2345678901234567") * D("0.0321") * D("3512345.67"))


def test_values_order_totals_and_unpriced() -> None:
    balances = [
        bal("TRY", "1000.5"),
        bal("BTC", "0.5", free="0.25", locked="0.25"),
        bal("NOPE", "3"),
        bal("USDT", "10"),
    ]
    result = value_balances(balances, MARKET, ["TRY", "USDT"], "last")
    assert [(v.asset, v.currency) for v in result.values] == [
        ("TRY", "TRY"),
        ("TRY", "USDT"),
        ("BTC", "TRY"),
        ("BTC", "USDT"),
        ("USDT", "TRY"),
        ("USDT", "USDT"),
    ]
    assert result.values[0] == AssetValue("TRY", "TRY", D("1000.5"), D("1000.5"), D("0"))
    assert result.values[2] == AssetValue("BTC", "TRY", D("1756172.835"), D("878086.4175"), D("878086.4175"))
    assert result.values[3].balance == D("48500.25")
    assert result.values[4].balance == D("362.1")
    for currency, total in result.totals:
        assert total == exact(
            lambda c=currency: sum((v.balance for v in result.values if v.currency == c), D(0))
        )
    assert dict(result.totals)["TRY"] == D("1757535.435")
    assert result.unpriced == (("TRY", 1), ("USDT", 1))


def test_unpriced_covers_every_currency_and_nothing_priced_has_no_total() -> None:
    """A portfolio "worth 0" beside unpriced holdings would be a made-up number: no total at all."""
    result = value_balances([bal("NOPE", "1"), bal("ALSO", "2")], MARKET, ["TRY", "USDT", "EUR"], "last")
    assert result.values == ()
    assert result.totals == ()
    assert result.unpriced == (("TRY", 2), ("USDT", 2), ("EUR", 2))
    empty = value_balances([], MARKET, ["TRY", "USDT"], "last")
    assert empty.totals == (("TRY", D(0)), ("USDT", D(0)))
    assert empty.unpriced == (("TRY", 0), ("USDT", 0))


def test_zero_price_makes_asset_unpriced_only_in_that_currency() -> None:
    tickers = index_tickers([tk("DEAD", "TRY", last="0"), tk("DEAD", "USDT", last="2")])
    result = value_balances([bal("DEAD", "5")], tickers, ["TRY", "USDT"], "last")
    assert [(v.currency, v.balance) for v in result.values] == [("USDT", D(10))]
    assert result.unpriced == (("TRY", 1), ("USDT", 0))
    assert result.totals == (("USDT", D(10)),)


def test_zero_balance_is_valued_but_never_unpriced() -> None:
    result = value_balances([bal("BTC", "0"), bal("NOPE", "0")], MARKET, ["TRY"], "last")
    assert result.values == (AssetValue("BTC", "TRY", D(0), D(0), D(0)),)
    assert result.unpriced == (("TRY", 0),)
    assert result.totals == (("TRY", D(0)),)


def test_one_sided_book_is_unpriced_for_mid_but_not_last() -> None:
    tickers = index_tickers([tk("THIN", "TRY", last="4", bid="0", ask="5")])
    assert value_balances([bal("THIN", "1")], tickers, ["TRY"], "mid").unpriced == (("TRY", 1),)
    assert value_balances([bal("THIN", "1")], tickers, ["TRY"], "last").totals == (("TRY", D(4)),)


@pytest.mark.parametrize(
    ("field", "expected"), [("last", "30"), ("bid", "27"), ("mid", "31.5"), ("ask", "36")]
)
def test_value_balances_uses_the_chosen_field(field: str, expected: str) -> None:
    tickers = index_tickers([tk("BTC", "TRY", last="10", bid="9", ask="12")])
    assert value_balances([bal("BTC", "3")], tickers, ["TRY"], field).totals == (("TRY", D(expected)),)


def test_value_balances_rejects_unknown_field_even_with_nothing_to_value() -> None:
    with pytest.raises(ValueError, match="price field"):
        value_balances([], MARKET, ["TRY"], "close")


def test_repeated_currency_is_reported_once() -> None:
    result = value_balances([bal("BTC", "1")], MARKET, ["TRY", "TRY"], "last")
    assert len(result.values) == 1
    assert result.totals == (("TRY", D("3512345.67")),)
    assert result.unpriced == (("TRY", 0),)


@given(
    balance=st.decimals(min_value=0, max_value=10**12, places=16, allow_nan=False),
    last=st.decimals(min_value="0.00000001", max_value=10**9, places=8, allow_nan=False),
)
def test_direct_value_is_always_the_exact_product(balance: Decimal, last: Decimal) -> None:
    tickers = index_tickers([tk("BTC", "TRY", last=str(last))])
    result = value_balances([bal("BTC", str(balance))], tickers, ["TRY"], "last")
    assert result.values[0].balance == exact(lambda: balance * last)
    assert result.totals == (("TRY", result.values[0].balance),)


# --- pairs_for_valuation ---------------------------------------------------------------------------------


def test_pairs_for_valuation_lists_every_leg_used() -> None:
    assets = ["TRY", "BTC", "ETH", "SHIB", "NOPE"]
    assert pairs_for_valuation(assets, ["TRY", "USDT"], MARKET) == frozenset(
        {"USDTTRY", "BTCTRY", "BTCUSDT", "ETHBTC", "SHIBTRY"}
    )
    # Pairs no route needs (BTCXAU here) are left out.
    assert "BTCXAU" not in pairs_for_valuation(assets, ["TRY", "USDT"], MARKET)
    assert pairs_for_valuation(["TRY"], ["TRY"], MARKET) == frozenset()
    assert pairs_for_valuation([], ["TRY"], MARKET) == frozenset()


# --- the side of the book each leg fills at ---------------------------------------------------------


def inv(value: str) -> Decimal:
    """1/value at the 34 digits valuation divides with."""
    with localcontext() as ctx:
        ctx.prec = 34
        return 1 / D(value)


# Every price distinct, so a leg that reads the wrong side shows up as a wrong number.
SIDED = index_tickers(
    [
        tk("USDT", "TRY", last="41.5", bid="41", ask="42"),
        tk("BTC", "USDT", last="100005", bid="100000", ask="100010"),
        tk("SHIB", "TRY", last="0.00085", bid="0.0008", ask="0.0009"),
        tk("ETH", "BTC", last="0.031", bid="0.03", ask="0.032"),
        tk("USDT", "EUR", last="0.92", bid="0.91", ask="0.93"),
    ]
)

# (asset, currency, the route's legs, {field: expected value of one unit}).
# On a direct leg (selling the base) `bid` takes the bid; on an inverse leg (turning the quote into the
# base, i.e. buying the base) `bid` takes the ask, since that is where the sale fills. `ask` mirrors it.
ROUTE_SHAPES = [
    (
        "BTC",
        "USDT",
        (("BTCUSDT", False),),
        {"last": D("100005"), "bid": D("100000"), "ask": D("100010"), "mid": D("100005")},
    ),
    (
        "TRY",
        "USDT",
        (("USDTTRY", True),),
        {"last": inv("41.5"), "bid": inv("42"), "ask": inv("41"), "mid": inv("41.5")},
    ),
    (
        "USDT",
        "TRY",
        (("USDTTRY", False),),
        {"last": D("41.5"), "bid": D("41"), "ask": D("42"), "mid": D("41.5")},
    ),
    (
        # Bridge, both legs direct.
        "ETH",
        "USDT",
        (("ETHBTC", False), ("BTCUSDT", False)),
        {
            "last": D("0.031") * D("100005"),
            "bid": D("0.03") * D("100000"),
            "ask": D("0.032") * D("100010"),
            "mid": D("0.031") * D("100005"),
        },
    ),
    (
        # Bridge, direct then inverse.
        "SHIB",
        "USDT",
        (("SHIBTRY", False), ("USDTTRY", True)),
        {
            "last": exact(lambda: D("0.00085") * inv("41.5")),
            "bid": exact(lambda: D("0.0008") * inv("42")),
            "ask": exact(lambda: D("0.0009") * inv("41")),
            "mid": exact(lambda: D("0.00085") * inv("41.5")),
        },
    ),
    (
        # Inverse of a tiny price.
        "TRY",
        "SHIB",
        (("SHIBTRY", True),),
        {"last": inv("0.00085"), "bid": inv("0.0009"), "ask": inv("0.0008"), "mid": inv("0.00085")},
    ),
    (
        # Bridge, inverse then direct.
        "TRY",
        "EUR",
        (("USDTTRY", True), ("USDTEUR", False)),
        {
            "last": exact(lambda: inv("41.5") * D("0.92")),
            "bid": exact(lambda: inv("42") * D("0.91")),
            "ask": exact(lambda: inv("41") * D("0.93")),
            "mid": exact(lambda: inv("41.5") * D("0.92")),
        },
    ),
    (
        # Bridge, both legs inverse: TRY -> USDT through USDT/TRY, USDT -> BTC through BTC/USDT.
        "TRY",
        "BTC",
        (("USDTTRY", True), ("BTCUSDT", True)),
        {
            "last": exact(lambda: inv("41.5") * inv("100005")),
            "bid": exact(lambda: inv("42") * inv("100010")),
            "ask": exact(lambda: inv("41") * inv("100000")),
            "mid": exact(lambda: inv("41.5") * inv("100005")),
        },
    ),
    (
        # Bridge through BTC (USDT and TRY lead nowhere), both legs inverse.
        "USDT",
        "ETH",
        (("BTCUSDT", True), ("ETHBTC", True)),
        {
            "last": exact(lambda: inv("100005") * inv("0.031")),
            "bid": exact(lambda: inv("100010") * inv("0.032")),
            "ask": exact(lambda: inv("100000") * inv("0.03")),
            "mid": exact(lambda: inv("100005") * inv("0.031")),
        },
    ),
]


@pytest.mark.parametrize("field", ["last", "bid", "ask", "mid"])
@pytest.mark.parametrize(
    ("asset", "currency", "legs", "expected"),
    ROUTE_SHAPES,
    ids=[f"{s[0]}-{s[1]}" for s in ROUTE_SHAPES],
)
def test_every_leg_uses_the_side_a_sale_fills_at(
    asset: str,
    currency: str,
    legs: tuple[tuple[str, bool], ...],
    expected: dict[str, Decimal],
    field: str,
) -> None:
    assert find_route(asset, currency, SIDED) == route(*legs)
    result = value_balances([bal(asset, "3")], SIDED, [currency], field)
    assert result.values[0].balance == exact(lambda: 3 * expected[field])
    assert result.unpriced == ((currency, 0),)


def test_no_three_leg_routes() -> None:
    # Routes have at most one bridge: TRY reaches ETH only through two bridges here.
    assert value_balances([bal("TRY", "1")], SIDED, ["ETH"], "last").unpriced == (("ETH", 1),)


def test_selling_try_for_usdt_fills_at_the_ask() -> None:
    # The numbers: 1000 TRY at bid 41 / ask 42 fetches 23.81 USDT, not 24.39.
    tickers = index_tickers([tk("USDT", "TRY", last="41.5", bid="41", ask="42")])
    (value,) = value_balances([bal("TRY", "1000")], tickers, ["USDT"], "bid").values
    assert value.balance.quantize(D("0.01")) == D("23.81")
    assert value.balance == exact(lambda: 1000 * inv("42"))


def test_leg_prices_are_never_mixed_up_for_ask() -> None:
    tickers = index_tickers([tk("USDT", "TRY", last="41.5", bid="41", ask="0")])
    # Selling TRY for USDT fills at the ask, which is empty: unpriced for bid, priced at 1/41 for ask.
    assert value_balances([bal("TRY", "1")], tickers, ["USDT"], "bid").unpriced == (("USDT", 1),)
    assert value_balances([bal("TRY", "1")], tickers, ["USDT"], "ask").totals == (("USDT", inv("41")),)


# --- a route must have a price, not only a pair ------------------------------------------------------


@pytest.mark.parametrize("field", ["last", "bid", "ask", "mid"])
def test_unpriced_direct_pair_falls_through_to_a_bridge(field: str) -> None:
    tickers = index_tickers(
        [
            # The direct pair is listed but its book is empty (and nothing traded).
            tk("AVAX", "TRY", last="0", bid="0", ask="0"),
            tk("AVAX", "USDT", last="2", bid="2", ask="2"),
            tk("USDT", "TRY", last="40", bid="40", ask="40"),
        ]
    )
    result = value_balances([bal("AVAX", "5")], tickers, ["TRY"], field)
    assert result.unpriced == (("TRY", 0),)
    assert result.totals == (("TRY", D(400)),)
    # The empty direct pair keeps its ticker series: it is a route that could value AVAX.
    assert pairs_for_valuation(["AVAX"], ["TRY"], tickers) == frozenset({"AVAXTRY", "AVAXUSDT", "USDTTRY"})


def test_zero_bid_direct_pair_falls_through_to_the_inverse_pair() -> None:
    tickers = index_tickers(
        [tk("AVAX", "TRY", last="9", bid="0", ask="10"), tk("TRY", "AVAX", bid="0.2", ask="0.25")]
    )
    result = value_balances([bal("AVAX", "1")], tickers, ["TRY"], "bid")
    # Selling AVAX through TRY/AVAX means buying TRY at its ask of 0.25 AVAX: 4 TRY.
    assert result.totals == (("TRY", inv("0.25")),)
    # last still takes the preferred direct pair.
    assert value_balances([bal("AVAX", "1")], tickers, ["TRY"], "last").totals == (("TRY", D(9)),)


def test_unpriced_bridge_leg_falls_through_to_the_next_bridge() -> None:
    tickers = index_tickers(
        [
            tk("AVAX", "USDT", last="2"),
            tk("EUR", "USDT", last="0"),
            tk("AVAX", "TRY", last="80"),
            tk("EUR", "TRY", last="40"),
        ]
    )
    assert value_balances([bal("AVAX", "1")], tickers, ["EUR"], "last").totals == (("EUR", D(2)),)


def test_asset_with_no_priced_route_is_unpriced_and_keeps_its_preferred_pairs() -> None:
    tickers = index_tickers([tk("DEAD", "TRY", last="0"), tk("DEAD", "USDT", last="0"), tk("USDT", "TRY")])
    result = value_balances([bal("DEAD", "5")], tickers, ["TRY"], "last")
    assert (result.values, result.unpriced) == ((), (("TRY", 1),))
    # The ticker that explains the missing value is still exported.
    assert pairs_for_valuation(["DEAD"], ["TRY"], tickers) == frozenset({"DEADTRY", "DEADUSDT", "USDTTRY"})


# --- Market: one snapshot indexed once ---------------------------------------------------------------


def test_market_keeps_the_first_of_a_duplicate_pair() -> None:
    first, again = tk("BTC", "TRY", last="10"), tk("BTC", "TRY", last="99")
    other = Ticker("BTC_TRY", "BTC", "TRY", D(50), D(50), D(50), D(1))
    market = Market.of([first, tk("USDT", "TRY"), again, other])
    assert market.tickers == (first, tk("USDT", "TRY"))
    assert market.duplicates == ("BTCTRY", "BTC_TRY")
    assert value_balances([bal("BTC", "1")], market, ["TRY"], "last").totals == (("TRY", D(10)),)
    assert index_tickers([first, again])[("BTC", "TRY")] is first


def test_routes_are_computed_once_per_set_of_pairs() -> None:
    a = (tk("BTC", "TRY", last="1"), tk("USDT", "TRY", last="2"))
    b = (tk("USDT", "TRY", last="3"), tk("BTC", "TRY", last="4"))
    assert Market.of(a).table is Market.of(b).table
    assert Market.of(a).table is not Market.of(a[:1]).table


def test_market_for_indexes_a_snapshot_once() -> None:
    tickers = (tk("BTC", "TRY", last="10"), tk("USDT", "TRY", last="40"))
    market = market_for(tickers)
    assert market_for(tickers) is market
    # A new snapshot (a new tuple), even an equal one, is indexed afresh.
    assert market_for(tickers[:1] + tickers[1:]) is not market


def test_value_balances_on_a_market_reuses_its_rates_across_accounts() -> None:
    market = Market.of(SIDED.values())
    one = value_balances([bal("SHIB", "1")], market, ["USDT"], "bid")
    # The second account's SHIB is valued from the rate the first computed.
    market._rates[("SHIB", "USDT", "bid")] = (route(("SHIBTRY", False)), D(7))
    two = value_balances([bal("SHIB", "2")], market, ["USDT"], "bid")
    assert one.totals != two.totals
    assert two.totals == (("USDT", D(14)),)
