"""Turn the transaction-history answers (trades, crypto and fiat transfers) into immutable records.

The shapes are those of `/api/v1/users/transactions/trade`, `/crypto` and `/fiat` as the
vendor documents them. Parsing is strict about what the numbers mean (a sell's amount is
negative, fees are money leaving the account) and tolerant about how they are written (decimal strings
or JSON numbers, dot or comma decimals, unknown fields ignored).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, NamedTuple, TypeVar

from exporter.api.parsing import BadResponse, decode_json, parse_decimal, unwrap

TRADES = "/api/v1/users/transactions/trade"
CRYPTO = "/api/v1/users/transactions/crypto"
FIAT = "/api/v1/users/transactions/fiat"

# The ledger's record kinds, one per transaction endpoint.
Kind = Literal["trade", "crypto", "fiat"]
KINDS: tuple[Kind, ...] = ("trade", "crypto", "fiat")
TransferKind = Literal["crypto", "fiat"]
# Not an endpoint's: the ledger's derived record of what was held at `activity.since` (ledger/openings.py),
# a Transfer of this kind so every replay takes it as the deposit it stands for.
OpeningKind = Literal["opening"]
OPENING: OpeningKind = "opening"
Side = Literal["buy", "sell"]
BalanceType = Literal["deposit", "withdrawal"]

# The endpoint each kind comes from.
ENDPOINTS: dict[Kind, str] = {"trade": TRADES, "crypto": CRYPTO, "fiat": FIAT}
# Ids and times are whole numbers; a bound keeps a hostile 10,000-digit integer out of SQLite and str().
_MAX_ID = 10**30
_MAX_TIME_MS = 253_402_300_800_000  # the end of year 9999
# BTCTurk opened for trading in July 2013 (CoinDesk and Cointelegraph, July 2013: "BTCTurk launched
# earlier this month"); the vendor's notes give no earlier date. No record of the exchange is older, so
# one that is (a 1970 stamp, a zero) is bad data, refused, never priced or counted; and no `since`
# reaches before it (a window reaching before 1970 is answered with HTTP 400 on every try).
EXCHANGE_FIRST_DAY = "2013-07-01"
EXCHANGE_FIRST_DAY_MS = 1_372_636_800_000  # 2013-07-01T00:00:00Z

# Oddities counted in btcturk_api_oddities_total{endpoint, kind} for the transaction endpoints:
# `bad_record`, an item that cannot be parsed (skipped, the rest of the answer kept);
# `changed_record`, an id served again with other fields (the first version is kept: ids are immutable);
# `stray_record`, a record dated outside the window asked, or twice in one answer (activity/windows.py).
BAD_RECORD = "bad_record"
CHANGED_RECORD = "changed_record"
STRAY_RECORD = "stray_record"
# Every (endpoint, kind) above, for series that start at zero.
RECORD_ODDITIES = tuple(
    (path, kind) for path in (TRADES, CRYPTO, FIAT) for kind in (BAD_RECORD, CHANGED_RECORD, STRAY_RECORD)
)


# The records are NamedTuples, not frozen dataclasses: a replay builds one per ledger row, and a
# frozen dataclass's __init__ (a setattr per field) is some 8x slower to construct (3.4 us against
# 0.4 us a record here, a third of a second per 100,000 trades). Immutable and typed all the same.
class Trade(NamedTuple):
    """One fill of one order. `amount` is negative for sells; `fee` and `tax` are <= 0, in `fee_asset`.

    `commission_from_numerator` is the pair's exchangeinfo flag, which the trade item does not carry:
    the ledger sets it when it reads a trade back (ledger.store), False for a pair never seen with it.
    """

    id: int
    order_id: int | None
    timestamp_ms: int
    base: str
    quote: str
    side: Side
    price: Decimal
    amount: Decimal
    fee: Decimal
    tax: Decimal
    commission_from_numerator: bool = False

    @property
    def fee_asset(self) -> str:
        """The asset fee and tax are taken from: the quote, or the base a buy receives on a pair that
        takes commission from the numerator (a sale always pays in the quote it receives)."""
        return self.base if self.commission_from_numerator and self.side == "buy" else self.quote

    def moves(self) -> tuple[Decimal, Decimal]:
        """What the trade does to the (base, quote) holdings, signed, in the caller's decimal context.

        The one definition every part uses (cost basis, quantities, reconciliation, backfill). The
        quote moves by amount x price; fee and tax (<= 0) come off the asset in `fee_asset`.
        """
        quantity = self.amount.copy_abs()  # Trade.quantity, read once: this runs once per trade replayed
        gross = quantity * self.price
        costs = self.fee + self.tax
        if self.side == "sell":
            return -quantity, gross + costs
        if self.commission_from_numerator:
            return quantity + costs, -gross
        return quantity, costs - gross

    @property
    def pair(self) -> str:
        """The pair symbol as the API names it (`BTCTRY`)."""
        return self.base + self.quote

    @property
    def quantity(self) -> Decimal:
        """How much of `base` changed hands, always >= 0."""
        return self.amount.copy_abs()


class Transfer(NamedTuple):
    """One deposit or withdrawal; `amount` is negative for withdrawals, optional fields None when absent.

    Of kind `opening`, a deposit the ledger derived (what was held at `activity.since`), no API record.
    """

    kind: TransferKind | OpeningKind
    id: int
    timestamp_ms: int
    balance_type: BalanceType
    currency: str | None
    amount: Decimal
    fee: Decimal | None = None
    tax: Decimal | None = None
    funds: Decimal | None = None

    @property
    def quantity(self) -> Decimal:
        """How much of `currency` moved, always >= 0."""
        return self.amount.copy_abs()


def loads(text: str | bytes) -> Any:
    """Parse a JSON answer as every API answer is (parsing.decode_json): Decimal fractions, exact ints."""
    return decode_json(text)


@dataclass(frozen=True, slots=True)
class Skipped:
    """An item of an answer that could not be parsed: its id when it has a readable one, and why."""

    id: int | None
    reason: str


def parse_trades(payload: object, skipped: list[Skipped] | None = None) -> tuple[Trade, ...]:
    """Parse a /api/v1/users/transactions/trade answer (envelope included).

    With `skipped`, a bad item is appended there and left out; without, it fails the whole answer.
    """
    items = _items(payload, TRADES, skipped)
    return _each(items, skipped, lambda item, where: _trade(item, where), TRADES)


def parse_transfers(
    payload: object, kind: TransferKind, skipped: list[Skipped] | None = None
) -> tuple[Transfer, ...]:
    """Parse a /crypto or /fiat transaction answer; `kind` names which endpoint answered.

    With `skipped`, a bad item is appended there and left out; without, it fails the whole answer.
    """
    endpoint = ENDPOINTS[kind]
    items = _items(payload, endpoint, skipped)
    return _each(items, skipped, lambda item, where: _transfer(item, kind, where), endpoint)


R = TypeVar("R")


def _each(
    items: list[tuple[int, Mapping[str, Any]]],
    skipped: list[Skipped] | None,
    parse: Callable[[Mapping[str, Any], str], R],
    endpoint: str,
) -> tuple[R, ...]:
    out: list[R] = []
    for index, item in items:
        where = f"{endpoint} data[{index}]"
        try:
            out.append(parse(item, where))
        except BadResponse as exc:
            if skipped is None:
                raise
            skipped.append(Skipped(_id_of(item), str(exc)))
    return tuple(out)


def _id_of(item: Mapping[str, Any]) -> int | None:
    try:
        return _whole(item, "id", "")
    except BadResponse:
        return None


def _items(
    payload: object, endpoint: str, skipped: list[Skipped] | None
) -> list[tuple[int, Mapping[str, Any]]]:
    try:
        data = unwrap(payload)
    except BadResponse as exc:
        raise BadResponse(f"{endpoint}: {exc}") from None
    if not isinstance(data, list):
        raise BadResponse(f"{endpoint} data: expected a list")
    items = []
    for index, item in enumerate(data):
        if isinstance(item, Mapping):
            items.append((index, item))
        elif skipped is None:
            raise BadResponse(f"{endpoint} data[{index}]: expected an object")
        else:
            skipped.append(Skipped(None, f"{endpoint} data[{index}]: expected an object"))
    return items


def _trade(item: Mapping[str, Any], where: str) -> Trade:
    side = _choice(item, "orderType", ("buy", "sell"), where)
    amount = _decimal(item, "amount", where)
    # The sign is the API's own statement of direction; one that contradicts orderType leaves us not
    # knowing which of the two is wrong, and guessing would put a wrong number in the books.
    if (side == "sell" and amount > 0) or (side == "buy" and amount < 0):
        raise BadResponse(f"{where}.amount: sign {amount} contradicts orderType {side!r}")
    price = _decimal(item, "price", where)
    if price <= 0:
        raise BadResponse(f"{where}.price: expected a positive price")
    return Trade(
        id=_whole(item, "id", where),
        order_id=_whole(item, "orderId", where) if item.get("orderId") is not None else None,
        timestamp_ms=_time(item, where),
        base=_symbol(item, "numeratorSymbol", where),
        quote=_symbol(item, "denominatorSymbol", where),
        side=side,  # type: ignore[arg-type]  # _choice returned one of the literals
        price=price,
        amount=amount,
        fee=_outgoing(item, "fee", where),
        tax=_outgoing(item, "tax", where),
    )


def _transfer(item: Mapping[str, Any], kind: TransferKind, where: str) -> Transfer:
    amount = _decimal(item, "amount", where)
    if item.get("balanceType") is None:
        balance_type = "withdrawal" if amount < 0 else "deposit"
    else:
        balance_type = _choice(item, "balanceType", ("deposit", "withdrawal"), where)
        if (balance_type == "deposit" and amount < 0) or (balance_type == "withdrawal" and amount > 0):
            raise BadResponse(f"{where}.amount: sign {amount} contradicts balanceType {balance_type!r}")
    return Transfer(
        kind=kind,
        id=_whole(item, "id", where),
        timestamp_ms=_time(item, where),
        balance_type=balance_type,  # type: ignore[arg-type]  # one of the literals
        currency=_symbol(item, "currencySymbol", where) if item.get("currencySymbol") is not None else None,
        amount=amount,
        fee=_outgoing(item, "fee", where) if item.get("fee") is not None else None,
        tax=_outgoing(item, "tax", where) if item.get("tax") is not None else None,
        funds=_decimal(item, "funds", where) if item.get("funds") is not None else None,
    )


def _decimal(item: Mapping[str, Any], key: str, where: str) -> Decimal:
    if key not in item:
        raise BadResponse(f"{where}.{key}: missing")
    value = item[key]
    if isinstance(value, Decimal):  # a JSON number read by loads()
        if not value.is_finite():
            raise BadResponse(f"{where}.{key}: not a finite number")
        # `1e-999999999` is eight bytes of JSON and a billion digits written out: bound it first.
        if value and not -100 <= value.as_tuple().exponent <= 400:  # type: ignore[operator]
            raise BadResponse(f"{where}.{key}: out of range")
        # Through the same range check as every other form.
        return parse_decimal(format(value, "f"), f"{where}.{key}")
    return parse_decimal(value, f"{where}.{key}")


def _outgoing(item: Mapping[str, Any], key: str, where: str) -> Decimal:
    amount = _decimal(item, key, where)
    if amount > 0:
        raise BadResponse(f"{where}.{key}: expected zero or negative (money leaving the account)")
    return amount


def _whole(item: Mapping[str, Any], key: str, where: str) -> int:
    value = item.get(key)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        # A float here has already lost digits (2^53), so it is refused rather than rounded.
        raise BadResponse(f"{where}.{key}: expected a whole number, got {type(value).__name__}")
    if not 0 <= value < _MAX_ID:
        raise BadResponse(f"{where}.{key}: out of range")
    return value


def _time(item: Mapping[str, Any], where: str) -> int:
    stamp = _whole(item, "timestamp", where)
    if not 0 < stamp < _MAX_TIME_MS:
        raise BadResponse(f"{where}.timestamp: expected Unix milliseconds")
    if stamp < EXCHANGE_FIRST_DAY_MS:
        raise BadResponse(
            f"{where}.timestamp: {stamp} is before the exchange's first day ({EXCHANGE_FIRST_DAY})"
        )
    return stamp


def _symbol(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > 32:
        raise BadResponse(f"{where}.{key}: expected an asset symbol")
    # isprintable() also refuses lone surrogates, which no UTF-8 file or exposition could carry.
    if not value.isprintable():
        raise BadResponse(f"{where}.{key}: not a printable symbol")
    # Balances name assets in upper case; the query parameters use lower case. One spelling in the books.
    return value.strip().upper()


def _choice(item: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str:
    value = item.get(key)
    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or text not in allowed:
        shown = repr(value)[:30]
        raise BadResponse(f"{where}.{key}: expected one of {', '.join(allowed)}, got {shown}")
    return text
