"""read_range: windows oldest first, halved on full pages, a one-millisecond full page said out loud."""

from __future__ import annotations

import logging

import pytest

from exporter.activity.windows import read_range
from exporter.config.activity_settings import DAY_MS, MAX_WINDOW_MS


class Source:
    """Records at given times; like the API, an answer holds at most `cap` of them, the newest."""

    def __init__(self, times: list[int], cap: int) -> None:
        self.times = sorted(times)
        self.cap = cap
        self.calls: list[tuple[int, int]] = []

    def fetch(self, start: int, end: int) -> list[int]:
        self.calls.append((start, end))
        inside = [t for t in self.times if start <= t <= end]
        return inside[-self.cap :]


def test_every_record_is_read_though_answers_are_capped() -> None:
    times = [i * 3_600_000 for i in range(1000)]  # one an hour, 41 days
    source = Source(times, cap=20)
    seen: set[int] = set()
    reached: list[int] = []

    def store(records: list[int]) -> int:
        new = set(records) - seen
        seen.update(records)
        return len(new)

    progress = read_range(source.fetch, store, 0, times[-1] + 1, cap=20, on_window=reached.append)
    assert seen == set(times)
    assert progress.done and progress.stored == len(times) and progress.truncated == 0
    assert reached == sorted(reached) and reached[-1] == times[-1] + 1
    assert all(end - start <= MAX_WINDOW_MS for start, end in source.calls)
    # Oldest first, each window starting where the last complete one ended.
    starts = [start for start, _ in source.calls]
    assert starts == sorted(starts)


def test_a_turn_stops_after_its_requests_and_resumes() -> None:
    source = Source([i * DAY_MS for i in range(100)], cap=50)
    first = read_range(source.fetch, len, 0, 100 * DAY_MS, cap=50, max_requests=2)
    assert first.requests == 2 and not first.done and first.reached_ms is not None
    rest = read_range(source.fetch, len, first.reached_ms, 100 * DAY_MS, cap=50, span_ms=first.span_ms)
    assert rest.done


def test_a_full_page_in_one_millisecond_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    source = Source([5_000] * 30 + [9_000], cap=10)
    stored: list[int] = []

    def store(records: list[int]) -> int:
        stored.extend(records)
        return len(records)

    progress = read_range(source.fetch, store, 0, 10_000, cap=10, what="trades of main")
    # Windows share their boundary millisecond, so the crowded one may be reported by both neighbours.
    assert progress.truncated in (1, 2) and progress.done
    assert 9_000 in stored and 5_000 in stored  # what could be read is kept
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == progress.truncated and "trades of main" in errors[0].getMessage()


def test_an_empty_range_makes_no_request() -> None:
    source = Source([], cap=10)
    assert read_range(source.fetch, len, 500, 500, cap=10).done
    assert source.calls == []


# -- an upstream that does not answer the window asked (always-full pages) ----------------------------


class Hostile:
    """(time, id) records; an answer is the window's newest `cap`, then filled to `cap` like the
    simulator's always-full modes: `padded` with records outside the window, `repeated` with its own."""

    def __init__(self, times: list[int], cap: int, mode: str | None) -> None:
        self.records = [(t, i) for i, t in enumerate(sorted(times))]
        self.cap = cap
        self.mode = mode
        self.calls: list[tuple[int, int]] = []

    def fetch(self, start: int, end: int) -> list[tuple[int, int]]:
        self.calls.append((start, end))
        inside = [r for r in self.records if start <= r[0] <= end][-self.cap :]
        filler = {"padded": [r for r in self.records if r not in inside], "repeated": inside}.get(
            self.mode or "", []
        )
        out = list(inside)
        while filler and len(out) < self.cap:
            out += filler[: self.cap - len(out)]
        return out


def when(record: tuple[int, int]) -> int:
    return record[0]


def ident(record: tuple[int, int]) -> int:
    return record[1]


class Kept:
    """The store: every record kept, by id, and the windows recorded as read."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.times: dict[int, int] = {}
        self.reached: list[int] = []

    def store(self, records: list[tuple[int, int]]) -> int:
        new = {i for _, i in records} - self.ids
        self.ids.update(i for _, i in records)
        self.times.update((i, t) for t, i in records)
        return len(new)


@pytest.mark.parametrize("mode", ["padded", "repeated"])
def test_an_answer_that_is_not_the_windows_records_ends_the_turn_unread(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    times = [i * DAY_MS for i in range(60)]  # 60 records over 60 days: no window needs halving
    source, kept = Hostile(times, cap=50, mode=mode), Kept()
    progress = read_range(
        source.fetch, kept.store, 0, 60 * DAY_MS, cap=50, on_window=kept.reached.append,
        what="trades of main", when=when, ident=ident, max_requests=10,
    )  # fmt: skip
    # One request, not a halving down to one millisecond: the window is not read, nothing advances.
    assert progress.ignored and not progress.done and progress.requests == 1
    assert progress.reached_ms == 0 and kept.reached == [] and progress.truncated == 0
    # The records that do lie in the window asked are kept (the ledger is idempotent on id).
    (start, end) = source.calls[0]
    assert kept.ids and all(start <= t <= end for t in kept.times.values())
    lines = [r.getMessage() for r in caplog.records if "does not answer the window asked" in r.getMessage()]
    assert len(lines) == 1 and "trades of main" in lines[0], lines
    assert "a full page with" in lines[0] and "of 50 records" in lines[0]


def test_the_window_is_read_whole_once_the_upstream_answers_it_again() -> None:
    times = [i * 3_600_000 for i in range(2000)]  # one an hour, 83 days
    source, kept = Hostile(times, cap=50, mode="padded"), Kept()
    end = times[-1] + 1
    span = MAX_WINDOW_MS
    requests = []
    for _ in range(4):  # turns during the fault: no progress; each starts at the span the last ended at
        progress = read_range(source.fetch, kept.store, 0, end, cap=50, when=when, ident=ident, span_ms=span)
        assert progress.ignored and progress.reached_ms == 0
        requests.append(progress.requests)
        span = progress.span_ms
    # The first turn halves while the windows are full of their own records (the cap at work), until
    # one is padded; every later turn asks that window once.
    assert requests[0] <= 6 and requests[1:] == [1, 1, 1], requests
    source.mode = None  # the upstream recovers
    progress = read_range(source.fetch, kept.store, 0, end, cap=50, when=when, ident=ident, span_ms=span)
    assert progress.done and not progress.ignored and progress.truncated == 0
    assert kept.ids == {i for _, i in source.records}


def test_a_crowded_millisecond_of_distinct_records_is_truncated_not_ignored() -> None:
    # More records in one millisecond than a page holds: honest, all inside, each id once.
    source, kept = Hostile([5_000] * 30 + [9_000], cap=10, mode=None), Kept()
    progress = read_range(source.fetch, kept.store, 0, 10_000, cap=10, when=when, ident=ident)
    assert progress.done and not progress.ignored and progress.truncated in (1, 2)
    assert 9_000 in kept.times.values() and 5_000 in kept.times.values()


def test_an_api_cap_below_the_configured_one_is_still_learned_with_the_checks_on() -> None:
    times = [i * 3_600_000 for i in range(1000)]
    source, kept = Hostile(times, cap=20, mode=None), Kept()
    progress = read_range(source.fetch, kept.store, 0, times[-1] + 1, cap=50, when=when, ident=ident)
    assert progress.done and not progress.ignored
    assert kept.ids == {i for _, i in source.records}


def test_a_stray_record_in_an_answer_with_room_to_spare_is_told_and_the_window_read() -> None:
    times = [i * DAY_MS for i in range(60)]
    source, kept = Hostile(times, cap=50, mode=None), Kept()
    stray = (70 * DAY_MS, 999)  # a record of another window, in every answer, which stays short of a page
    told: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> list[tuple[int, int]]:
        return [*source.fetch(start, end), stray]

    progress = read_range(
        fetch, kept.store, 0, 60 * DAY_MS, cap=50, when=when, ident=ident, on_strays=told.extend
    )
    assert progress.done and not progress.ignored
    assert {i for _, i in source.records} <= kept.ids and set(told) == {stray}
