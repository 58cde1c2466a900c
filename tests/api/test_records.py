"""Parsing the transaction-history answers: exact numbers, strict meaning, tolerant spelling."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exporter.api.parsing import BadResponse
from exporter.api.records import (
    EXCHANGE_FIRST_DAY_MS,
    Skipped,
    Trade,
    Transfer,
    loads,
    parse_trades,
    parse_transfers,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "activity"


def fixture(name: str) -> Any:
    return loads((FIXTURES / name).read_bytes())


def test_trades_fixture_parses_to_exact_records() -> None:
    trades = parse_trades(fixture("trades.json"))
    assert [t.id for t in trades] == [9223372036854775809, 9223372036854775808, 9007199254740993]
    sell = trades[0]
    assert sell == Trade(
        id=9223372036854775809,
        order_id=14002387564,
        timestamp_ms=1764530400000,
        base="BTC",
        quote="TRY",
        side="sell",
        price=Decimal("2250000.00"),
        amount=Decimal("-0.00512000"),
        fee=Decimal("-23.04000000"),
        tax=Decimal("-4.14720000"),
    )
    assert sell.pair == "BTCTRY"
    assert sell.quantity == Decimal("0.00512")
    # Two fills of one order stay two records.
    assert trades[1].order_id == trades[2].order_id
    assert str(trades[2].amount) == "0.00250000"


def test_json_numbers_commas_code_string_and_unknown_fields() -> None:
    (trade,) = parse_trades(fixture("trades_numbers_commas.json"))
    assert trade.id == 12345678901234567890123  # beyond 2^64, still exact
    assert trade.price == Decimal("97250.5")
    assert isinstance(trade.price, Decimal)
    assert trade.amount == Decimal("0.0010000000000001")  # 17 significant digits: float would lose one
    assert trade.fee == Decimal("-0.0972505")
    assert trade.tax == 0
    assert (trade.base, trade.quote, trade.side) == ("BTC", "USDT", "buy")


def test_crypto_transfers_fixture() -> None:
    withdrawal, deposit = parse_transfers(fixture("crypto.json"), "crypto")
    assert withdrawal == Transfer(
        kind="crypto",
        id=2391834,
        timestamp_ms=1764520000000,
        balance_type="withdrawal",
        currency="BTC",
        amount=Decimal("-0.00100000"),
        fee=Decimal("-0.00002000"),
        tax=Decimal(0),
        funds=Decimal("-0.00100000"),
    )
    assert withdrawal.quantity == Decimal("0.001")
    assert deposit.balance_type == "deposit"
    assert deposit.amount == Decimal("0.02")


def test_fiat_transfers_with_missing_optional_fields() -> None:
    deposit, bare = parse_transfers(fixture("fiat.json"), "fiat")
    assert deposit.amount == Decimal("25000.00")
    assert deposit.kind == "fiat"
    # Only id, timestamp and amount: the direction comes from the sign, the rest is absent, not zero.
    assert bare.balance_type == "withdrawal"
    assert bare.currency is None
    assert bare.fee is None and bare.tax is None and bare.funds is None


@pytest.mark.parametrize("code", [0, "0", "SUCCESS", ""])
def test_success_codes(code: object) -> None:
    payload = {"success": True, "code": code, "data": []}
    assert parse_trades(payload) == ()
    assert parse_transfers(payload, "fiat") == ()


def test_loads_keeps_fractions_decimal_and_big_ints_exact() -> None:
    data = loads('{"a": 0.1000000000000000055511151231257827, "b": 9007199254740993, "c": 1e2}')
    assert data["a"] == Decimal("0.1000000000000000055511151231257827")
    assert data["b"] == 9007199254740993
    assert data["c"] == Decimal("1e2")


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', "not json", b"\xff\xfe", "[" * 100_000])
def test_loads_refuses_what_is_not_json_numbers(text: str | bytes) -> None:
    with pytest.raises(BadResponse) as info:
        loads(text)
    assert "\n" not in str(info.value)


def test_loads_has_the_balances_parsers_number_cap_and_strict_utf8() -> None:
    # One parser for every answer: the activity endpoints get the length cap and strict UTF-8 too.
    with pytest.raises(BadResponse, match="a number of 401 characters, over the limit of 400"):
        loads('{"a": ' + "1" * 401 + "}")
    with pytest.raises(BadResponse, match="a number of 402 characters"):
        loads(b'{"a": 0.' + b"1" * 400 + b"}")
    with pytest.raises(BadResponse, match="not valid UTF-8"):
        loads('{"data": []}'.encode("utf-16"))
    assert loads('{"a": ' + "1" * 400 + "}") == {"a": int("1" * 400)}


def trade_payload(**changes: object) -> dict[str, Any]:
    payload = copy.deepcopy(fixture("trades.json"))
    item = payload["data"][1]
    for key, value in changes.items():
        if value is None:
            item.pop(key, None)
        else:
            item[key] = value
    return payload


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"price": "abc"}, "data[1].price: not a decimal number"),
        ({"price": "0"}, "data[1].price: expected a positive price"),
        ({"price": None}, "data[1].price: missing"),
        ({"amount": "-0.01"}, "data[1].amount: sign -0.01 contradicts orderType 'buy'"),
        ({"orderType": "short"}, "data[1].orderType: expected one of buy, sell"),
        ({"fee": "1.5"}, "data[1].fee: expected zero or negative"),
        ({"tax": None}, "data[1].tax: missing"),
        ({"id": Decimal("1.5")}, "data[1].id: expected a whole number, got Decimal"),
        ({"id": 1.5}, "data[1].id: expected a whole number, got float"),
        ({"id": "12a"}, "data[1].id: expected a whole number"),
        ({"id": True}, "data[1].id: expected a whole number"),
        ({"id": -1}, "data[1].id: out of range"),
        ({"timestamp": 0}, "data[1].timestamp: expected Unix milliseconds"),
        ({"timestamp": 86_400_000}, "data[1].timestamp: 86400000 is before the exchange's first day"),
        ({"timestamp": EXCHANGE_FIRST_DAY_MS - 1}, "before the exchange's first day (2013-07-01)"),
        ({"numeratorSymbol": ""}, "data[1].numeratorSymbol: expected an asset symbol"),
        ({"numeratorSymbol": "BT\nC"}, "data[1].numeratorSymbol: not a printable symbol"),
        ({"denominatorSymbol": "\ud800"}, "data[1].denominatorSymbol: not a printable symbol"),
        ({"amount": Decimal("NaN")}, "data[1].amount: not a finite number"),
        ({"amount": Decimal("1e390")}, "data[1].amount: out of range"),
        ({"amount": Decimal("1e-999999999")}, "data[1].amount: out of range"),
        ({"amount": Decimal("1e999999999")}, "data[1].amount: out of range"),
    ],
)
def test_bad_trade_fields_name_endpoint_and_index(changes: dict[str, object], message: str) -> None:
    with pytest.raises(BadResponse) as info:
        parse_trades(trade_payload(**changes))
    text = str(info.value)
    assert text.startswith("/api/v1/users/transactions/trade data[1].")
    assert message in text
    assert "\n" not in text


def test_sell_with_positive_amount_is_refused() -> None:
    payload = fixture("trades.json")
    payload["data"][0]["amount"] = "0.00512"
    with pytest.raises(BadResponse, match=r"data\[0\]\.amount: sign .* contradicts orderType 'sell'"):
        parse_trades(payload)


def test_order_id_is_optional_and_id_may_be_a_digit_string() -> None:
    (_, trade, _) = parse_trades(trade_payload(orderId=None, id="9223372036854775808"))
    assert trade.order_id is None
    assert trade.id == 9223372036854775808


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"success": False, "code": 1, "message": "FAILED_X", "data": None},
            "API reported failure: FAILED_X",
        ),
        ({"success": True, "code": 0, "data": {"a": 1}}, "data: expected a list"),
        ({"success": True, "code": 0, "data": [1]}, "data[0]: expected an object"),
        ([], "expected a JSON object"),
    ],
)
def test_bad_envelopes_name_the_endpoint(payload: object, message: str) -> None:
    with pytest.raises(BadResponse) as info:
        parse_transfers(payload, "crypto")
    assert str(info.value).startswith("/api/v1/users/transactions/crypto")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amount": "0.5"}, "data[0].amount: sign 0.5 contradicts balanceType 'withdrawal'"),
        ({"balanceType": "gift"}, "data[0].balanceType: expected one of deposit, withdrawal"),
        ({"fee": "0.1"}, "data[0].fee: expected zero or negative"),
        ({"amount": None}, "data[0].amount: missing"),
        ({"currencySymbol": 5}, "data[0].currencySymbol: expected an asset symbol"),
        ({"funds": "x"}, "data[0].funds: not a decimal number"),
    ],
)
def test_bad_transfer_fields(changes: dict[str, object], message: str) -> None:
    payload = fixture("crypto.json")
    for key, value in changes.items():
        if value is None:
            del payload["data"][0][key]
        else:
            payload["data"][0][key] = value
    with pytest.raises(BadResponse) as info:
        parse_transfers(payload, "crypto")
    assert str(info.value).startswith("/api/v1/users/transactions/crypto data[0].")
    assert message in str(info.value)


def test_floats_from_a_plain_json_parser_are_accepted_by_their_shortest_text() -> None:
    payload = trade_payload(price=2240000.5)
    assert parse_trades(payload)[1].price == Decimal("2240000.5")


def test_with_a_skipped_list_a_bad_item_is_left_out_and_the_rest_kept() -> None:
    payload = trade_payload(price="abc")
    payload["data"].append("not an object")
    skipped: list[Skipped] = []
    trades = parse_trades(payload, skipped)
    items = payload["data"]
    assert [t.id for t in trades] == [int(i["id"]) for n, i in enumerate(items[:-1]) if n != 1]
    reasons = {s.id: s.reason for s in skipped}
    assert reasons.keys() == {int(items[1]["id"]), None}
    assert "data[1].price: not a decimal number" in reasons[int(items[1]["id"])]
    assert f"data[{len(items) - 1}]: expected an object" in str(reasons[None])
    # Without the list, the first bad item fails the answer (as every other caller expects).
    with pytest.raises(BadResponse, match=r"expected an object"):
        parse_trades(payload)
    transfers: list[Skipped] = []
    assert (
        parse_transfers(
            {"success": True, "data": [{"id": 5, "amount": "x", "timestamp": 1}]}, "fiat", transfers
        )
        == ()
    )
    assert transfers[0].id == 5


def test_the_first_day_itself_is_accepted() -> None:
    trades = parse_trades(trade_payload(timestamp=EXCHANGE_FIRST_DAY_MS))
    assert trades[1].timestamp_ms == EXCHANGE_FIRST_DAY_MS
