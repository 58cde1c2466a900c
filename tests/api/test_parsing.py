from decimal import Decimal

import pytest

from exporter.api.parsing import (
    MAX_ASSETS,
    BadResponse,
    NotJSON,
    decode_json,
    parse_balances,
    parse_decimal,
    parse_server_time,
    parse_ticker_answer,
    unwrap,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("27223,7283250757643288", "27223.7283250757643288"),
        ("9.7502186644553258", "9.7502186644553258"),
        ("0", "0"),
        (" 12 ", "12"),
        ("0,5", "0.5"),
        (".5", "0.5"),
        ("12.", "12"),
        (3, "3"),
        (0.1, "0.1"),
    ],
)
def test_decimal_accepts_dot_and_comma_without_losing_digits(text: object, expected: str) -> None:
    assert parse_decimal(text) == Decimal(expected)
    assert str(parse_decimal(text)) == str(Decimal(expected))


@pytest.mark.parametrize(
    "bad", ["", "abc", "NaN", "nan", "Infinity", "-inf", "1e5", "1,2,3", "1.2.3", "0x10", None, True, [], {}]
)
def test_decimal_rejects_what_is_not_an_amount(bad: object) -> None:
    with pytest.raises(BadResponse):
        parse_decimal(bad, "data[0].free")


def test_decimal_error_names_where() -> None:
    with pytest.raises(BadResponse, match=r"data\[3\]\.free: not a decimal number"):
        parse_decimal("abc", "data[3].free")


def _item(**overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "asset": "BTC",
        "assetname": "Bitcoin",
        "balance": "9,7502186644553258",
        "locked": "3,3109771999999998",
        "free": "6,439241464455326",
        "orderFund": "3,3109771999999998",
        "requestFund": "0",
        "precision": 8,
    }
    item.update(overrides)
    return item


def _envelope(data: object) -> dict[str, object]:
    return {"data": data, "success": True, "message": None, "code": 0}


def test_balances_from_the_vendor_page() -> None:
    (btc,) = parse_balances(_envelope([_item()]))
    assert btc.asset == "BTC"
    assert btc.asset_name == "Bitcoin"
    assert btc.balance == Decimal("9.7502186644553258")
    assert btc.free == Decimal("6.439241464455326")
    assert btc.locked == btc.order_fund == Decimal("3.3109771999999998")
    assert btc.request_fund == 0


def test_non_ascii_names_are_kept() -> None:
    (tl,) = parse_balances(_envelope([_item(asset="TRY", assetname="Türk Lirası")]))
    assert tl.asset_name == "Türk Lirası"


@pytest.mark.parametrize("code", [0, "0", "SUCCESS", ""])
def test_success_codes_seen_in_the_wild(code: object) -> None:
    assert unwrap({"data": [], "success": True, "code": code}) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "expected a JSON object"),
        (
            {"success": False, "message": "FAILED_X", "code": 1, "data": None},
            "API reported failure: FAILED_X",
        ),
        ({"success": True, "code": 0}, "envelope has no data"),
        (_envelope({"asset": "BTC"}), "expected a list"),
        (_envelope(["x"]), r"data\[0\]: expected an object"),
        (_envelope([_item(free="abc")]), r"data\[0\]\.free: not a decimal"),
        (_envelope([_item(free="-1")]), r"data\[0\]\.free: negative amount"),
        (_envelope([_item(free="NaN")]), r"data\[0\]\.free: not a decimal"),
        (_envelope([{"asset": "BTC"}]), r"data\[0\]\.balance: missing"),
        (_envelope([_item(asset="")]), r"data\[0\]\.asset: expected a non-empty string"),
        (_envelope([_item(), _item()]), r"data\[1\]\.asset: duplicate asset"),
    ],
)
def test_bad_balances_are_bad_responses(payload: object, message: str) -> None:
    with pytest.raises(BadResponse, match=message):
        parse_balances(payload)


def test_ticker() -> None:
    payload = _envelope(
        [
            {
                "pair": "BTCTRY",
                "pairNormalized": "BTC_TRY",
                "last": 3512345.67,
                "bid": 3512000,
                "ask": 3513000.5,
                "volume": 123.456,
                "numeratorSymbol": "BTC",
                "denominatorSymbol": "TRY",
            }
        ]
    )
    (t,) = parse_ticker_answer(payload).tickers
    assert (t.pair, t.base, t.quote) == ("BTCTRY", "BTC", "TRY")
    assert t.last == Decimal("3512345.67")
    assert t.bid == Decimal("3512000")
    assert t.ask == Decimal("3513000.5")
    assert t.volume == Decimal("123.456")


def test_ticker_missing_price_is_bad() -> None:
    with pytest.raises(BadResponse, match=r"data\[0\]\.last: missing"):
        parse_ticker_answer(_envelope([{"pair": "X", "numeratorSymbol": "A", "denominatorSymbol": "B"}]))


def test_server_time_is_unwrapped_milliseconds() -> None:
    assert (
        parse_server_time({"serverTime": 1735689600000, "serverTime2": "2025-01-01T00:00:00Z"})
        == 1735689600.0
    )
    with pytest.raises(BadResponse):
        parse_server_time({"data": {"serverTime": 1}})


# --- JSON straight to Decimal ---------------------------------------------------------------------------


def test_json_numbers_become_exact_decimals() -> None:
    payload = decode_json(
        b'{"a": 12345678.123456789123, "b": 1e-30, "c": 42, "d": 123456789012345678901234567890}'
    )
    assert payload == {
        "a": Decimal("12345678.123456789123"),
        "b": Decimal("1e-30"),
        "c": 42,
        "d": 123456789012345678901234567890,
    }
    assert isinstance(payload["c"], int)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe{}", r"body is not valid UTF-8 \(byte 0xff at offset 0\)"),
        (b'{"asset": "\xc3"}', r"not valid UTF-8 \(byte 0xc3 at offset 11\)"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "a number of 5001 characters, over the limit of 400"),
        (b'{"a": 0.' + b"1" * 500 + b"}", "a number of 502 characters, over the limit of 400"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
        (b"<html>", "body is not JSON"),
        (b"", "body is not JSON"),
        (b'{"a": NaN}', "body holds NaN, which is not JSON"),
        (b'{"a": -Infinity}', "body holds -Infinity, which is not JSON"),
    ],
)
def test_bodies_that_are_not_usable_json(body: bytes, message: str) -> None:
    with pytest.raises(BadResponse, match=message):
        decode_json(body)


def test_not_json_is_its_own_kind() -> None:
    with pytest.raises(NotJSON):
        decode_json(b"<html>")
    with pytest.raises(BadResponse) as info:
        decode_json(b"\xff")
    assert not isinstance(info.value, NotJSON)


@pytest.mark.parametrize("value", ["-0", "-0,000", "+0", Decimal("-0"), Decimal("-0.0"), -0.0, 0])
def test_minus_zero_is_plain_zero(value: object) -> None:
    amount = parse_decimal(value)
    assert amount == 0 and not amount.is_signed()
    assert not str(amount).startswith("-")


def test_decimal_json_numbers_are_checked_like_strings() -> None:
    assert parse_decimal(Decimal("36.2100000000000000000001")) == Decimal("36.2100000000000000000001")
    with pytest.raises(BadResponse, match="out of range"):
        parse_decimal(Decimal("1e400"), "data[0].last")
    with pytest.raises(BadResponse, match="not a finite number"):
        parse_decimal(Decimal("NaN"))


def test_a_too_long_decimal_string_says_so() -> None:
    with pytest.raises(
        BadResponse, match=r"data\[0\]\.free: a number of 401 characters, over the limit of 400"
    ):
        parse_decimal("1" * 401, "data[0].free")


def test_asset_count_limit() -> None:
    items = [_item(asset=f"A{i}") for i in range(MAX_ASSETS + 1)]
    with pytest.raises(BadResponse, match=f"^{MAX_ASSETS + 1} assets, over the limit of {MAX_ASSETS}$"):
        parse_balances(_envelope(items))
    assert len(parse_balances(_envelope(items[:MAX_ASSETS]))) == MAX_ASSETS


def _row(pair: str, base: str, quote: str, last: object) -> dict[str, object]:
    return {
        "pair": pair,
        "numeratorSymbol": base,
        "denominatorSymbol": quote,
        "last": last,
        "bid": 1,
        "ask": 2,
        "volume": 3,
    }


def test_a_pair_listed_twice_keeps_its_first_row() -> None:
    answer = parse_ticker_answer(
        _envelope(
            [
                _row("BTCTRY", "BTC", "TRY", 10),
                _row("USDTTRY", "USDT", "TRY", 40),
                _row("BTCTRY", "BTC", "TRY", 99),
                # Another name for the same base and quote would also be two answers for one price.
                _row("BTC_TRY", "BTC", "TRY", 50),
            ]
        )
    )
    assert [(t.pair, t.last) for t in answer.tickers] == [("BTCTRY", 10), ("USDTTRY", 40)]
    assert answer.duplicates == ("BTCTRY", "BTC_TRY")
    assert (
        parse_ticker_answer(_envelope([_row("BTCTRY", "BTC", "TRY", 10)] * 2)).tickers == answer.tickers[:1]
    )


def test_server_time_as_a_decimal() -> None:
    assert parse_server_time(decode_json(b'{"serverTime": 1735689600000.5}')) == pytest.approx(
        1735689600.0005
    )
    with pytest.raises(BadResponse):
        parse_server_time({"serverTime": Decimal("NaN")})
