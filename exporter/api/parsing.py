"""Turn the API's JSON answers into small immutable records, strictly."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

# A plain decimal with either separator; exponents, NaN and Infinity are not amounts.
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)")
# The widest float64 has 309 integer digits and the API sends at most 16 fraction digits; a longer
# number is no amount, and would cost time and memory in every product it entered.
MAX_NUMBER_CHARS = 400
# Far above any real account (the API lists every listed asset, a few hundred): past this, the answer
# would turn into that many series on every scrape.
MAX_ASSETS = 50_000
# Prometheus reads every sample as a float64 and refuses a whole scrape holding a value beyond it.
_FLOAT_MAX = Decimal(sys.float_info.max)
# The end of year 9999: a server time past it (or NaN or infinity) is no clock to sign with.
_MAX_SERVER_TIME_MS = 253_402_300_800_000


class BadResponse(ValueError):
    """The answer was not what the API documents (reason `bad_response`)."""


class NotJSON(BadResponse):
    """The body is not JSON at all (the caller can say what it was instead)."""


def _number_too_long(text: str) -> BadResponse:
    return BadResponse(f"a number of {len(text)} characters, over the limit of {MAX_NUMBER_CHARS}")


def _json_decimal(text: str) -> Decimal:
    if len(text) > MAX_NUMBER_CHARS:
        raise _number_too_long(text)
    return Decimal(text)


def _json_int(text: str) -> int:
    # Python's ints are exact at any size (no 2**53 limit as in JavaScript), so ids and stamps stay
    # ints; the length check keeps a huge one from hitting int()'s 4300-digit limit as "not JSON".
    if len(text) > MAX_NUMBER_CHARS:
        raise _number_too_long(text)
    return int(text)


def _json_constant(name: str) -> NoReturn:
    raise NotJSON(f"body holds {name}, which is not JSON")


def decode_json(body: bytes | str) -> Any:
    """Parse a body as strict UTF-8 JSON with every non-integer number as an exact Decimal.

    Every JSON answer of the API goes through here: integers stay exact ints, no number longer than
    MAX_NUMBER_CHARS is read, NaN and Infinity are refused, and no float is ever made.
    """
    if isinstance(body, str):
        text = body
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadResponse(
                f"body is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})"
            ) from None
    try:
        # Non-integers straight to Decimal: the JSON number 12345678.123456789 keeps every digit,
        # where float would make it 12345678.12345679.
        return json.loads(text, parse_float=_json_decimal, parse_int=_json_int, parse_constant=_json_constant)
    except BadResponse:
        raise
    except RecursionError:  # json's decoder gives up on deep nesting with this, not ValueError
        raise BadResponse("JSON nested too deeply") from None
    except ValueError:
        raise NotJSON("body is not JSON") from None


@dataclass(frozen=True, slots=True)
class Balance:
    """One asset of one account, as the balances endpoint reports it."""

    asset: str
    asset_name: str
    balance: Decimal
    free: Decimal
    locked: Decimal
    order_fund: Decimal
    request_fund: Decimal


@dataclass(frozen=True, slots=True)
class Ticker:
    """One trading pair's prices; base and quote are the numerator and denominator symbols."""

    pair: str
    base: str
    quote: str
    last: Decimal
    bid: Decimal
    ask: Decimal
    volume: Decimal


def parse_decimal(value: object, where: str = "value") -> Decimal:
    """Parse an amount given as a string with `.` or `,` (or a JSON number) without going through float."""
    if isinstance(value, bool):
        raise BadResponse(f"{where}: expected a number, got {value!r}")
    if isinstance(value, Decimal):  # a JSON number, as decode_json parses it
        if not value.is_finite():
            raise BadResponse(f"{where}: not a finite number")
        return _in_range(value, where)
    if isinstance(value, int):
        return _in_range(Decimal(value), where)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise BadResponse(f"{where}: not a finite number")
        # Not from the client, whose JSON parser yields Decimal: a float has at most 17 significant
        # digits left, and repr, its shortest round-trip text, keeps exactly those without adding more.
        return _in_range(Decimal(repr(value)), where)
    if not isinstance(value, str):
        raise BadResponse(f"{where}: expected a decimal string, got {type(value).__name__}")
    text = value.strip()
    if len(text) > MAX_NUMBER_CHARS:
        raise BadResponse(f"{where}: {_number_too_long(text)}")
    if not _DECIMAL.fullmatch(text):
        raise BadResponse(f"{where}: not a decimal number: {text[:40]!r}")
    try:
        amount = Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern above already excludes it
        raise BadResponse(f"{where}: not a decimal number: {text[:40]!r}") from None
    return _in_range(amount, where)


def _in_range(amount: Decimal, where: str) -> Decimal:
    if amount.copy_abs() > _FLOAT_MAX:  # copy_abs: no context, so no rounding or Overflow
        raise BadResponse(f"{where}: out of range")
    # -0 is zero: exported as written it would read as a negative balance.
    return amount.copy_abs() if amount.is_zero() else amount


def _amount(item: Mapping[str, Any], key: str, where: str) -> Decimal:
    if key not in item:
        raise BadResponse(f"{where}.{key}: missing")
    amount = parse_decimal(item[key], f"{where}.{key}")
    if amount < 0:
        raise BadResponse(f"{where}.{key}: negative amount")
    return amount


def _text(item: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = item.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise BadResponse(f"{where}.{key}: expected a non-empty string")
    try:
        # JSON's \ud800-style escapes can make lone surrogates, which no UTF-8 exposition can carry.
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadResponse(f"{where}.{key}: not valid Unicode text") from None
    return value


def unwrap(payload: object) -> Any:
    """Return `data` from the API's envelope, or raise BadResponse for a failure envelope."""
    if not isinstance(payload, Mapping):
        raise BadResponse("expected a JSON object")
    code = payload.get("code", 0)
    ok = payload.get("success") is True and code in (0, "0", "SUCCESS", "", None)
    if not ok:
        message = str(payload.get("message") or "no message")[:80]
        raise BadResponse(f"API reported failure: {message} (code {code!r})")
    if "data" not in payload:
        raise BadResponse("envelope has no data")
    return payload["data"]


def parse_balances(payload: object) -> tuple[Balance, ...]:
    """Parse a /api/v1/users/balances answer; every amount must be a non-negative decimal."""
    data = unwrap(payload)
    if not isinstance(data, list):
        raise BadResponse("data: expected a list of balances")
    if len(data) > MAX_ASSETS:
        raise BadResponse(f"{len(data)} assets, over the limit of {MAX_ASSETS}")
    balances = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        where = f"data[{index}]"
        if not isinstance(item, Mapping):
            raise BadResponse(f"{where}: expected an object")
        asset = _text(item, "asset", where)
        if asset in seen:
            raise BadResponse(f"{where}.asset: duplicate asset {asset[:20]!r}")
        seen.add(asset)
        balances.append(
            Balance(
                asset=asset,
                asset_name=_text(item, "assetname", where, required=False) or asset,
                balance=_amount(item, "balance", where),
                free=_amount(item, "free", where),
                locked=_amount(item, "locked", where),
                order_fund=_amount(item, "orderFund", where) if "orderFund" in item else Decimal(0),
                request_fund=_amount(item, "requestFund", where) if "requestFund" in item else Decimal(0),
            )
        )
    return tuple(balances)


@dataclass(frozen=True, slots=True)
class TickerAnswer:
    """The pairs of a ticker answer, each once, and the names of the rows left out as repeats."""

    tickers: tuple[Ticker, ...]
    duplicates: tuple[str, ...]


def parse_ticker_answer(payload: object) -> TickerAnswer:
    """Parse a /api/v2/ticker answer; pairs with unusable prices are an error, not silently zero.

    A pair listed twice (the same name, or the same base and quote) keeps its first row: nothing in
    the answer says which row is right, the first is the one the API ranked first, and one row per
    pair is what keeps /metrics free of duplicate series.
    """
    data = unwrap(payload)
    if not isinstance(data, list):
        raise BadResponse("data: expected a list of tickers")
    tickers = []
    duplicates = []
    names: set[str] = set()
    keys: set[tuple[str, str]] = set()
    for index, item in enumerate(data):
        where = f"data[{index}]"
        if not isinstance(item, Mapping):
            raise BadResponse(f"{where}: expected an object")
        ticker = Ticker(
            pair=_text(item, "pair", where),
            base=_text(item, "numeratorSymbol", where),
            quote=_text(item, "denominatorSymbol", where),
            last=_amount(item, "last", where),
            bid=_amount(item, "bid", where),
            ask=_amount(item, "ask", where),
            volume=_amount(item, "volume", where),
        )
        if ticker.pair in names or (ticker.base, ticker.quote) in keys:
            duplicates.append(ticker.pair)
            continue
        names.add(ticker.pair)
        keys.add((ticker.base, ticker.quote))
        tickers.append(ticker)
    return TickerAnswer(tuple(tickers), tuple(duplicates))


def parse_server_time(payload: object) -> float:
    """Return the server's clock in seconds from /api/v2/server/time (an unwrapped object)."""
    if not isinstance(payload, Mapping):
        raise BadResponse("expected a JSON object")
    stamp = payload.get("serverTime")
    # `not 0 < stamp < max` also refuses NaN and infinity, and bounds an int before it becomes a float.
    if (
        isinstance(stamp, bool)
        or not isinstance(stamp, int | float | Decimal)
        or (isinstance(stamp, Decimal) and not stamp.is_finite())
        or not 0 < stamp < _MAX_SERVER_TIME_MS
    ):
        raise BadResponse("serverTime: expected a positive number of milliseconds")
    return float(stamp) / 1000.0
