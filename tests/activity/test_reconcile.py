"""The ledger against the balances: match, mismatch and incomplete, and two checks in a row."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from exporter.activity.reconcile import Walk, compare, confirmed, opening_quantities, state_of, walk_back
from exporter.activity.reconciler import Reconciler
from exporter.activity.state import SyncHealth
from exporter.api.parsing import Balance
from exporter.api.records import KINDS, Trade, Transfer
from exporter.ledger.cursors import Cursor, origin_key
from exporter.ledger.openings import opening
from exporter.ledger.store import Ledger
from exporter.poll.snapshot import AccountSnapshot


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


# --- openings: what the walk-back says was held before the first record ----------------------------


def test_the_walk_back_gives_what_was_held_before_the_first_record_and_matches_against_it() -> None:
    # The BTC bought is missing: the 0.5 BTC sold and the 0.5 held were there before the first record.
    walks = walk_back([SELL], [DEPOSIT], held(TRY="1299", BTC="0.5"), 5_000)
    assert walks["BTC"] == Walk(gap=Decimal(1), lowest=Decimal("-0.5"))
    assert opening_quantities(walks) == {"BTC": Decimal(1)}
    assert state_of(walks["BTC"], Decimal(1)) == "match"
    assert state_of(walks["BTC"], Decimal("0.6")) == "incomplete"  # an opening now too small
    assert state_of(walks["BTC"], Decimal("1.2")) == "mismatch"  # and one too large
    # An asset whose walk-back goes negative gets no opening: its shortfall stays what is shown.
    out = Transfer("fiat", 4, 1_000, "withdrawal", "TRY", Decimal(-1000))
    later = Transfer("fiat", 5, 2_000, "deposit", "TRY", Decimal(500))
    assert opening_quantities(walk_back([], [out, later], held(TRY="300"), 5_000)) == {}
    # A history that adds up needs none.
    assert opening_quantities(walk_back([BUY, SELL], [DEPOSIT], held(TRY="798", BTC="0.5"), 5_000)) == {}


def test_an_opening_lifts_the_lowest_point_of_the_walk() -> None:
    # 2 BTC held at since, 2 sold, 1 bought back, 1 held: the lowest running sum is -2, 0 with the opening.
    sells = Trade(6, 6, 1_000, "BTC", "TRY", "sell", Decimal(1), Decimal(-2), Decimal(0), Decimal(0))
    buys = Trade(7, 7, 2_000, "BTC", "TRY", "buy", Decimal(1), Decimal(1), Decimal(0), Decimal(0))
    walk = walk_back([sells, buys], [], held(BTC="1", TRY="2"), 5_000)["BTC"]
    assert walk == Walk(Decimal(2), Decimal(-2))
    assert state_of(walk) == "incomplete" and opening_quantities({"BTC": walk}) == {"BTC": Decimal(2)}
    assert state_of(walk, Decimal(2)) == "match"
    # A stale opening the records contradict (they give away more than it and all since held) is no match.
    assert state_of(Walk(Decimal(2), Decimal(-3)), Decimal(2)) == "mismatch"


class _Rest:
    def now_ms(self) -> int:
        return 100_000  # the server's clock agrees with the exporter's (below)


class _Client:
    rest = _Rest()


def test_the_reconciler_keeps_openings_two_polls_agree_on_over_a_whole_history(tmp_path: Path) -> None:
    polls: list[AccountSnapshot] = []
    with Ledger.open(tmp_path) as ledger:
        ledger.set_state(origin_key("main"), "500")
        ledger.upsert_trades("main", [SELL])
        ledger.upsert_transfers("main", [DEPOSIT])
        health = {"main": SyncHealth("main")}
        reconciler = Reconciler(ledger, _Client(), health, lambda _: polls[-1], clock=lambda: 100.0)  # type: ignore[arg-type]

        def poll(at_s: float, **amounts: str) -> bool:
            polls.append(AccountSnapshot("main", tuple(held(**amounts)), at_s))
            return reconciler.check("main")

        # Half a backfill: the cursors are not complete, so no opening, however many polls agree.
        for kind in KINDS:
            ledger.set_cursor("main", kind, Cursor(3_000, 90_000, backfill_complete=False))
        assert not poll(10, TRY="1299", BTC="0.5")
        assert not poll(11, TRY="1299", BTC="0.5")  # two agree: the history is asked to be read again
        assert ledger.openings("main") == []
        for kind in KINDS:
            ledger.set_cursor("main", kind, Cursor(3_000, 90_000, backfill_complete=True))
        assert not poll(12, TRY="1299", BTC="0.5")  # the first walk after it was read whole
        assert poll(13, TRY="1299", BTC="0.5")  # two agree: 1 BTC at since (origin, 500 ms)
        assert ledger.openings("main") == [opening("BTC", 500, Decimal(1))]
        # Against it BTC matches, once two polls in a row say so, as every state is published.
        assert health["main"].snapshot({}).reconciled["BTC"] == "incomplete"
        assert not poll(15, TRY="1299", BTC="0.5")  # the same again changes nothing
        assert health["main"].snapshot({}).reconciled["BTC"] == "match"
        # A buy of 0.4 BTC arrives late (a backfill window read again): 0.6 BTC was held at since.
        ledger.upsert_trades(
            "main",
            [Trade(11, 11, 2_500, "BTC", "TRY", "buy", Decimal(0), Decimal("0.4"), Decimal(0), Decimal(0))],
        )
        assert not poll(16, TRY="1299", BTC="0.5")  # one walk says so; the opening waits for a second
        assert health["main"].snapshot({}).reconciled["BTC"] == "match"  # the states need two as well
        assert poll(17, TRY="1299", BTC="0.5")
        assert ledger.openings("main") == [opening("BTC", 500, Decimal("0.6"))]
        assert not poll(18, TRY="1299", BTC="0.5")
        assert health["main"].snapshot({}).reconciled["BTC"] == "match"
