"""The gap rule: which candles an answer left out count as gaps, and when a gap passes for a quiet hour."""

from __future__ import annotations

from decimal import Decimal

from exporter.api.candles import DAILY, HOURLY
from exporter.pricing.candlecache import DAY, GAP_CONFIRMATIONS, HOUR, GapBook, missing

T = 1_790_000_000 // DAY * DAY  # a day start
NOW = T + 10 * HOUR + 120  # the candle of T+10h is still open


def candles(*hours: int, step: int = HOUR) -> list[tuple[int, Decimal]]:
    return [(T + h * step, Decimal(100 + h)) for h in hours]


def test_a_hole_between_candles_the_answer_has_is_a_gap() -> None:
    assert missing(candles(0, 1, 3, 4, 6), T, T + 6 * HOUR, HOUR, NOW) == [T + 2 * HOUR, T + 5 * HOUR]


def test_an_answer_ending_before_the_asked_end_lacks_the_closed_candles_after_its_last() -> None:
    assert missing(candles(0, 1, 2), T, T + 5 * HOUR, HOUR, NOW) == [T + h * HOUR for h in (3, 4, 5)]


def test_candles_not_closed_yet_are_no_gaps() -> None:
    # Asked up to T+12h: the open candle (T+10h) and the future are not missing, only T+9h is.
    assert missing(candles(*range(9)), T, T + 12 * HOUR, HOUR, NOW) == [T + 9 * HOUR]


def test_nothing_before_the_first_candle_is_a_gap() -> None:
    # A pair listed at T+4h has no candles before; an empty answer is a range without trades.
    assert missing(candles(4, 5, 6), T, T + 6 * HOUR, HOUR, NOW) == []
    assert missing([], T, T + 6 * HOUR, HOUR, NOW) == []


def test_a_whole_answer_has_no_gaps_and_daily_candles_follow_the_same_rule() -> None:
    assert missing(candles(*range(7)), T, T + 6 * HOUR, HOUR, NOW) == []
    now = T + 9 * DAY + 5
    gaps = missing(candles(0, 2, 3, step=DAY), T, T + 5 * DAY, DAY, now)
    assert gaps == [T + DAY, T + 4 * DAY, T + 5 * DAY]


def test_a_gap_passes_for_a_quiet_hour_only_after_the_same_candle_was_missing_from_every_answer() -> None:
    book = GapBook()
    answer = candles(0, 1, 3)
    gaps = [T + 2 * HOUR]
    for _ in range(GAP_CONFIRMATIONS - 1):
        assert book.unconfirmed("BTCTRY", HOURLY, answer, gaps) == 1
    assert book.unconfirmed("BTCTRY", HOURLY, answer, gaps) == 0  # confirmed: taken as a quiet hour
    assert book.unconfirmed("BTCTRY", HOURLY, answer, gaps) == 0  # and stays so
    # Counted per pair and resolution.
    assert book.unconfirmed("ETHTRY", HOURLY, answer, gaps) == 1
    assert book.unconfirmed("BTCTRY", DAILY, answer, gaps) == 1


def test_a_candle_an_answer_had_is_never_taken_as_quiet_and_counting_starts_over() -> None:
    book = GapBook()
    gaps = [T + 2 * HOUR]
    assert book.unconfirmed("BTCTRY", HOURLY, candles(0, 1, 3), gaps) == 1
    assert book.unconfirmed("BTCTRY", HOURLY, candles(0, 1, 2, 3), []) == 0  # it exists
    for _ in range(GAP_CONFIRMATIONS - 1):
        assert book.unconfirmed("BTCTRY", HOURLY, candles(0, 1, 3), gaps) == 1
    assert book.unconfirmed("BTCTRY", HOURLY, candles(0, 1, 3), gaps) == 0
