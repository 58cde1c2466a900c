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
