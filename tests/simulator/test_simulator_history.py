"""Account history and price history: served from what the simulator recorded, as the API serves them."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
from support import (
    TIMEOUT,
    VECTOR_PRIVATE,
    VECTOR_PUBLIC,
    VECTOR_STAMP,
    FakeClock,
    assert_bearer_401,
    signed_get,
)

from exporter.simulator import BALANCES_PATH, EXCHANGE_INFO_PATH, Simulator, generate_keypair
from exporter.simulator.paths import CRYPTO_PATH, FIAT_PATH, KLINES_PATH, OHLCS_PATH, TRADES_PATH

DAY_MS = 86_400_000
NOW_MS = VECTOR_STAMP
DAYS = 120


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(VECTOR_STAMP / 1000)


@pytest.fixture(scope="module")
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(clock=clock, seed=4) as simulator:
        simulator.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE, history_days=DAYS, seed=4)
        simulator.quirks.exact()
        yield simulator


@pytest.fixture
def cap(sim: Simulator) -> Iterator[None]:
    """Restore the default cap after a test that changes it."""
    before = sim.activity_cap
    yield
    sim.activity_cap = before


def get(sim: Simulator, path: str, **params: str | list[str]) -> list[dict]:
    response = signed_get(sim, path=path, params=params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    return body["data"]


# -- pre-generated account history -----------------------------------------------------------------------


def test_balances_are_the_sum_of_the_recorded_history(sim: Simulator) -> None:
    history = sim.history(VECTOR_PUBLIC)
    change = history.net_change()
    held = [a for a in sim.assets(VECTOR_PUBLIC) if a.balance > 0]
    assert {"TRY", "BTC", "OLDTOKEN"} <= {a.asset for a in held} and len(held) >= 5
    for asset in sim.assets(VECTOR_PUBLIC):
        assert asset.balance == change.get(asset.asset, Decimal(0)), asset.asset
    assert any(a.locked > 0 for a in held)  # open orders move money from free to locked only
    oldest = min(r.timestamp for r in [*history.trades, *history.transfers])
    assert NOW_MS - DAYS * DAY_MS <= oldest < NOW_MS - (DAYS - 1) * DAY_MS
    assert len(history.trades) > 3 * DAYS


def test_pregenerated_history_is_seeded(clock: FakeClock, sim: Simulator) -> None:
    with Simulator(clock=clock, seed=4) as other:
        other.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE, history_days=DAYS, seed=4)
        other.add_account(*generate_keypair(1), history_days=DAYS, seed=5)
        assert other.history(VECTOR_PUBLIC).trades == sim.history(VECTOR_PUBLIC).trades
        assert other.assets(VECTOR_PUBLIC) == sim.assets(VECTOR_PUBLIC)
        assert other.history(generate_keypair(1)[0]).trades != sim.history(VECTOR_PUBLIC).trades


def test_trades_were_made_at_the_price_of_their_day(sim: Simulator) -> None:
    for trade in sim.history(VECTOR_PUBLIC).trades[::25]:
        if trade.denominator != "TRY":
            continue
        at = sim.prices.price_at(trade.numerator, trade.timestamp / 1000)
        assert at is not None and float(trade.price) == pytest.approx(at, rel=0.01)


# -- the transaction endpoints ---------------------------------------------------------------------------


def test_without_dates_an_answer_covers_30_days_newest_first(sim: Simulator, cap: None) -> None:
    sim.activity_cap = 10_000
    items = get(sim, TRADES_PATH)
    stamps = [item["timestamp"] for item in items]
    assert stamps == sorted(stamps, reverse=True)
    assert min(stamps) >= NOW_MS - 30 * DAY_MS
    recorded = [t for t in sim.history(VECTOR_PUBLIC).trades if t.timestamp >= NOW_MS - 30 * DAY_MS]
    assert {item["id"] for item in items} == {t.id for t in recorded}
    assert all(item["id"] > 2**53 for item in items)


def test_date_window_and_filters(sim: Simulator, cap: None) -> None:
    sim.activity_cap = 10_000
    start, end = NOW_MS - 100 * DAY_MS, NOW_MS - 60 * DAY_MS
    window = get(sim, TRADES_PATH, startDate=str(start), endDate=str(end))
    assert window and all(start <= item["timestamp"] <= end for item in window)
    sells = get(sim, TRADES_PATH, startDate=str(start), endDate=str(end), type="sell")
    assert sells and all(item["orderType"] == "sell" and Decimal(item["amount"]) < 0 for item in sells)
    btc = get(sim, TRADES_PATH, startDate=str(start), endDate=str(end), symbol="btc")
    assert btc and all("BTC" in (i["numeratorSymbol"], i["denominatorSymbol"]) for i in btc)
    pair = get(sim, TRADES_PATH, startDate=str(start), endDate=str(end), pairSymbol="BTCTRY")
    assert {(i["numeratorSymbol"], i["denominatorSymbol"]) for i in pair} == {("BTC", "TRY")}
    both = get(sim, TRADES_PATH, startDate=str(start), endDate=str(end), type=["buy", "sell"])
    assert len(both) == len(window)
    order = window[0]["orderId"]
    assert [i["orderId"] for i in get(sim, TRADES_PATH, orderId=str(order))] == [order]


def test_crypto_and_fiat_hold_their_own_transfers(sim: Simulator, cap: None) -> None:
    sim.activity_cap = 10_000
    every = {"startDate": str(NOW_MS - DAYS * DAY_MS), "endDate": str(NOW_MS)}
    fiat = get(sim, FIAT_PATH, **every)
    crypto = get(sim, CRYPTO_PATH, **every)
    assert fiat and {i["currencySymbol"] for i in fiat} == {"TRY"}
    assert crypto and "TRY" not in {i["currencySymbol"] for i in crypto}
    assert len(fiat) + len(crypto) == len(sim.history(VECTOR_PUBLIC).transfers)
    for item in fiat + crypto:
        assert (Decimal(item["amount"]) < 0) == (item["balanceType"] == "withdrawal")
        assert Decimal(item["fee"]) <= 0 and Decimal(item["tax"]) <= 0
    deposits = get(sim, FIAT_PATH, **every, type="deposit")
    assert deposits and all(i["balanceType"] == "deposit" for i in deposits)
    assert {i["currencySymbol"] for i in get(sim, CRYPTO_PATH, **every, symbol="oldtoken")} == {"OLDTOKEN"}


def test_served_history_adds_up_to_the_balances(sim: Simulator, cap: None) -> None:
    """A client that pages by windows small enough to stay under the cap can rebuild every balance,
    taking a buy's fee from the asset bought where exchangeinfo says commissionFromNumerator."""
    sim.activity_cap = 100
    info = requests.get(sim.url + EXCHANGE_INFO_PATH, timeout=TIMEOUT).json()["data"]
    from_numerator = {s["name"] for s in info["symbols"] if s["commissionFromNumerator"] is True}
    assert from_numerator, "the simulator has a pair that takes commission from the numerator"
    bought_there = 0
    totals: dict[str, Decimal] = {}
    for start in range(NOW_MS - DAYS * DAY_MS, NOW_MS, 7 * DAY_MS):
        window = {"startDate": str(start), "endDate": str(min(start + 7 * DAY_MS - 1, NOW_MS))}
        trades = get(sim, TRADES_PATH, **window)
        transfers = get(sim, CRYPTO_PATH, **window) + get(sim, FIAT_PATH, **window)
        assert len(trades) < 100 and len(transfers) < 100
        for t in trades:
            amount, price = Decimal(t["amount"]), Decimal(t["price"])
            numerator, denominator = t["numeratorSymbol"], t["denominatorSymbol"]
            costs = Decimal(t["fee"]) + Decimal(t["tax"])
            in_numerator = t["orderType"] == "buy" and numerator + denominator in from_numerator
            bought_there += in_numerator
            moved = amount + costs if in_numerator else amount
            totals[numerator] = totals.get(numerator, Decimal(0)) + moved
            moved = -amount * price + (Decimal(0) if in_numerator else costs)
            totals[denominator] = totals.get(denominator, Decimal(0)) + moved
        for item in transfers:
            symbol = item["currencySymbol"]
            totals[symbol] = totals.get(symbol, Decimal(0)) + Decimal(item["funds"])
    assert bought_there, "the history buys on such a pair"
    for asset in sim.assets(VECTOR_PUBLIC):
        assert totals.get(asset.asset, Decimal(0)) == asset.balance, asset.asset


def test_an_answer_at_the_cap_drops_the_oldest(sim: Simulator, cap: None) -> None:
    sim.activity_cap = 10_000
    every = get(sim, TRADES_PATH)
    sim.activity_cap = 7
    capped = get(sim, TRADES_PATH)
    assert capped == every[:7]


def test_halved_answers_keep_the_newer_half_and_are_set_through_the_control_api(
    sim: Simulator, cap: None
) -> None:
    sim.activity_cap = 10_000
    every = get(sim, TRADES_PATH)
    answer = requests.post(sim.url + "/_sim/config", json={"activity_halved": True}, timeout=TIMEOUT)
    assert answer.status_code == 200
    try:
        assert get(sim, TRADES_PATH) == every[: len(every) // 2]
    finally:
        sim.activity_halved = False
    assert get(sim, TRADES_PATH) == every


@pytest.mark.parametrize("path", [TRADES_PATH, CRYPTO_PATH])
def test_always_full_pages_are_set_through_the_control_api_and_cleared(
    sim: Simulator, cap: None, path: str
) -> None:
    sim.activity_cap = 50
    start, end = NOW_MS - 3 * DAY_MS, NOW_MS - 2 * DAY_MS
    honest = get(sim, path, startDate=str(start), endDate=str(end))
    assert len(honest) < 50
    try:
        for mode in ("padded", "repeated"):
            answer = requests.post(sim.url + "/_sim/config", json={"activity_full": mode}, timeout=TIMEOUT)
            assert answer.status_code == 200, answer.content
            page = get(sim, path, startDate=str(start), endDate=str(end))
            assert page[: len(honest)] == honest  # the window's records first, as honest pages have them
            if mode == "padded":  # then records from outside the window (again when there are too few)
                padding = page[len(honest) :]
                assert len(page) == 50 and all(not start <= i["timestamp"] <= end for i in padding)
                with sim.lock:
                    history = sim.history(VECTOR_PUBLIC)
                    recorded = len(history.trades if path == TRADES_PATH else history.crypto())
                assert len({i["id"] for i in page}) == min(50, recorded)
            else:  # then the window's own records again
                assert len(page) == (50 if honest else 0)
                assert {i["id"] for i in page} == {i["id"] for i in honest}
        # An empty window: padded is still full (repeated stays empty).
        sim.activity_full = "padded"
        early = NOW_MS - (DAYS + 10) * DAY_MS
        assert len(get(sim, path, startDate=str(early), endDate=str(early + DAY_MS))) == 50
        bad = requests.post(sim.url + "/_sim/config", json={"activity_full": "sometimes"}, timeout=TIMEOUT)
        assert bad.status_code == 400 and "activity_full" in bad.json()["error"]
        cleared = requests.post(sim.url + "/_sim/config", json={"activity_full": None}, timeout=TIMEOUT)
        assert cleared.status_code == 200
        assert get(sim, path, startDate=str(start), endDate=str(end)) == honest
    finally:
        sim.activity_full = None


def test_key_without_activity_permission_gets_401_while_balances_work(sim: Simulator) -> None:
    public, private = generate_keypair(9)
    sim.add_account(public, private, can_read_activity=False)
    for path in (TRADES_PATH, CRYPTO_PATH, FIAT_PATH):
        assert_bearer_401(signed_get(sim, public=public, private=private, path=path))
    assert signed_get(sim, public=public, private=private, path=BALANCES_PATH).status_code == 200
    sim.set_activity_permission(public, True)
    assert signed_get(sim, public=public, private=private, path=TRADES_PATH).status_code == 200


def test_transactions_need_a_valid_signature_and_get(sim: Simulator) -> None:
    assert_bearer_401(signed_get(sim, offset_ms=-6000, path=FIAT_PATH))
    assert_bearer_401(requests.get(sim.url + TRADES_PATH, timeout=TIMEOUT))
    assert requests.post(sim.url + CRYPTO_PATH, timeout=TIMEOUT).status_code == 405


@pytest.mark.parametrize(
    ("params", "problem"),
    [({"startDate": "yesterday"}, "startDate"), ({"type": "gift"}, "type"), ({"orderId": "x"}, "orderId")],
)
def test_bad_query_is_400(sim: Simulator, params: dict[str, str], problem: str) -> None:
    response = signed_get(sim, path=TRADES_PATH, params=params)
    assert response.status_code == 400 and problem in response.json()["message"]


def test_activity_endpoints_have_their_own_per_ip_budgets(clock: FakeClock) -> None:
    with Simulator(clock=clock, limits={CRYPTO_PATH: 2, TRADES_PATH: 3}) as small:
        small.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE)
        assert [signed_get(small, path=CRYPTO_PATH).status_code for _ in range(3)] == [200, 200, 429]
        assert signed_get(small, path=CRYPTO_PATH).headers["Retry-After"] == "60"
        assert [signed_get(small, path=TRADES_PATH).status_code for _ in range(4)] == [200, 200, 200, 429]
        assert signed_get(small, path=FIAT_PATH).status_code == 200
        assert signed_get(small).status_code == 200


# -- market status -----------------------------------------------------------------------------------------


def test_currency_operation_blocks_can_be_toggled() -> None:
    clock = FakeClock(VECTOR_STAMP / 1000)
    with Simulator(clock=clock) as other:

        def blocks() -> dict[str, tuple[bool, bool]] | None:
            info = requests.get(other.url + EXCHANGE_INFO_PATH, timeout=TIMEOUT).json()["data"]
            if "currencyOperationBlocks" not in info:
                return None
            rows = info["currencyOperationBlocks"]
            return {r["currencySymbol"]: (r["withdrawalDisabled"], r["depositDisabled"]) for r in rows}

        listed = blocks()
        assert listed is not None and listed["BTC"] == (False, False) and "TRY" in listed
        other.block_operations("BTC", withdrawal=True)
        other.block_operations("ETH", deposit=True)
        clock.now += 29
        assert blocks() == listed  # served from a cache up to 30 s old, as the live CDN does
        clock.now += 1
        listed = blocks()
        assert listed is not None and listed["BTC"] == (True, False) and listed["ETH"] == (False, True)
        other.operation_blocks = None  # older answers: the field is missing, which means "unknown"
        other.exchange_info_max_age = 0  # no cache
        assert blocks() is None


# -- price history -----------------------------------------------------------------------------------------


def test_klines_in_the_udf_shape_from_the_price_path(sim: Simulator) -> None:
    now = VECTOR_STAMP // 1000
    params = {"symbol": "BTC_TRY", "resolution": "60", "from": str(now - 3 * 86400), "to": str(now)}
    body = requests.get(sim.url + KLINES_PATH, params=params, timeout=TIMEOUT).json()
    assert body["s"] == "ok" and set(body) == {"s", "t", "o", "h", "l", "c", "v"}
    assert len({len(body[k]) for k in "tohlcv"}) == 1 and 70 <= len(body["t"]) <= 74
    assert body["t"] == sorted(body["t"]) and all(t % 3600 == 0 for t in body["t"])
    for o, h, low, c, v in zip(body["o"], body["h"], body["l"], body["c"], body["v"], strict=True):
        assert low <= min(o, c) <= max(o, c) <= h and v > 0
    assert body["c"][-1] == pytest.approx(float(sim.price("BTCTRY")), rel=0.01)
    months = {**params, "resolution": "1D", "from": str(now - 110 * 86400)}
    daily = requests.get(sim.url + KLINES_PATH, params=months, timeout=TIMEOUT).json()
    assert daily["s"] == "ok" and len(daily["t"]) >= 110


def test_klines_without_data_or_with_a_bad_resolution(sim: Simulator) -> None:
    base = {"resolution": "60", "from": "1700000000", "to": "1700086400"}
    nope = requests.get(sim.url + KLINES_PATH, params={**base, "symbol": "NOPE_TRY"}, timeout=TIMEOUT)
    assert nope.json() == {"s": "no_data"}
    bad = requests.get(
        sim.url + KLINES_PATH, params={**base, "symbol": "BTC_TRY", "resolution": "7"}, timeout=TIMEOUT
    )
    assert bad.status_code == 400 and bad.json()["s"] == "error"


@pytest.mark.parametrize("pair", ["BTCTRY", "BTC_TRY"])
def test_ohlcs_are_a_bare_list_of_daily_candles(sim: Simulator, pair: str) -> None:
    now = VECTOR_STAMP // 1000
    params = {"pair": pair, "from": str(now - 10 * 86400), "to": str(now)}
    rows = requests.get(sim.url + OHLCS_PATH, params=params, timeout=TIMEOUT).json()
    assert isinstance(rows, list) and 10 <= len(rows) <= 11
    for row in rows:
        assert row["pair"] == "BTCTRY" and row["time"] % 86400 == 0
        assert row["low"] <= row["open"] <= row["high"] and row["low"] <= row["close"] <= row["high"]
        assert row["dailyChangeAmount"] == pytest.approx(row["close"] - row["open"], abs=1)
        assert set(row) == {
            "pair", "time", "open", "high", "low", "close", "volume", "total", "average",
            "dailyChangeAmount", "dailyChangePercentage",
        }  # fmt: skip
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)


def test_live_prices_extend_the_price_path(clock: FakeClock) -> None:
    with Simulator(clock=clock, seed=8) as live:
        for _ in range(120):
            clock.now += 60
            live.drift(0.01)
        now = int(clock.now)
        params = {"symbol": "ETH_USDT", "resolution": "1", "from": str(now - 3600), "to": str(now)}
        body = requests.get(live.url + KLINES_PATH, params=params, timeout=TIMEOUT).json()
        assert body["c"][-1] == pytest.approx(float(live.price("ETHUSDT")), rel=0.005)
        assert len(set(body["c"])) > 30  # minute candles that moved, not one flat line
    clock.now = VECTOR_STAMP / 1000


def test_live_activity_keeps_a_pregenerated_account_equal_to_its_history() -> None:
    clock = FakeClock(VECTOR_STAMP / 1000)
    with Simulator(clock=clock, seed=6) as other:
        other.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE, history_days=30, seed=6)
        before = len(other.history(VECTOR_PUBLIC).trades)
        for _ in range(400):
            clock.now += 5
            other.drift()
        history = other.history(VECTOR_PUBLIC)
        assert len(history.trades) > before
        change = history.net_change()
        for asset in other.assets(VECTOR_PUBLIC):
            assert asset.balance == change.get(asset.asset, Decimal(0)), asset.asset
        # Served newest first: the live trades lead the answer.
        newest = get(other, TRADES_PATH)[0]
        assert newest["id"] == max(t.id for t in history.trades)
