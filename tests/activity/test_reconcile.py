"""The ledger against the balances: match, mismatch and incomplete, and two checks in a row."""

from __future__ import annotations

from decimal import Decimal

from exporter.activity.reconcile import compare, confirmed
from exporter.api.parsing import Balance
from exporter.api.records import Trade, Transfer


def held(**amounts: str) -> list[Balance]:
    return [
        Balance(a, a, Decimal(v), Decimal(v), Decimal(0), Decimal(0), Decimal(0)) for a, v in amounts.items()
    ]


DEPOSIT = Transfer("fiat", 1, 1_000, "deposit", "TRY", Decimal(1000))
BUY = Trade(2, 2, 2_000, "BTC", "TRY", "buy", Decimal(500), Decimal(1), Decimal(-1), Decimal(0))
SELL = Trade(3, 3, 3_000, "BTC", "TRY", "sell", Decimal(600), Decimal("-0.5"), Decimal(-1), Decimal(0))


def test_records_that_add_up_to_the_balance_match() -> None:
    states = compare([BUY, SELL], [DEPOSIT], held(TRY="798", BTC="0.5"), 5_000)
    assert states == {"TRY": "match", "BTC": "match"}


def test_records_newer_than_the_poll_are_left_out() -> None:
    assert compare([BUY, SELL], [DEPOSIT], held(TRY="499", BTC="1"), 2_500) == {
        "TRY": "match",
        "BTC": "match",
    }


def test_a_missing_sell_is_a_mismatch_and_a_missing_deposit_before_the_first_record_incomplete() -> None:
    # Without the sell the ledger holds more BTC than the account: records are missing.
    assert compare([BUY], [DEPOSIT], held(TRY="798", BTC="0.5"), 5_000)["BTC"] == "mismatch"
    # Without the deposit, walking back from 798 TRY stays at or above zero: it may predate since.
    assert compare([BUY, SELL], [], held(TRY="798", BTC="0.5"), 5_000)["TRY"] == "incomplete"
    # So is a missing buy: the BTC sold may have been held before since.
    assert compare([SELL], [DEPOSIT], held(TRY="798", BTC="0.5"), 5_000)["BTC"] == "incomplete"
    # Less in the ledger than held, but walking back from 300 TRY past the 500 TRY deposit goes
    # negative: some withdrawal after it is missing, whatever was held before since.
    out = Transfer("fiat", 4, 1_000, "withdrawal", "TRY", Decimal(-1000))
    later = Transfer("fiat", 5, 2_000, "deposit", "TRY", Decimal(500))
    assert compare([], [out, later], held(TRY="300"), 5_000) == {"TRY": "mismatch"}


def test_a_state_counts_once_two_checks_agree() -> None:
    assert confirmed(None, {"BTC": "mismatch"}) == {}
    assert confirmed({"BTC": "match"}, {"BTC": "mismatch"}) == {}
    assert confirmed({"BTC": "mismatch"}, {"BTC": "mismatch"}) == {"BTC": "mismatch"}
