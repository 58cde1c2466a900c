"""A backfill's progress in the log and on the gauge, driven by hand with an injected clock (no sleeps)."""

from __future__ import annotations

import logging
import re

import pytest
from support import FakeClock

from exporter.activity import backfill_progress
from exporter.activity.backfill_progress import PROGRESS_EVERY_S, BackfillProgress
from exporter.activity.state import SyncHealth
from exporter.activity.windows import Progress
from exporter.api.records import ENDPOINTS
from exporter.config.activity_settings import MAX_WINDOW_MS

BEGUN_MS = 1_700_000_000_000
WINDOWS = 12
GOAL_MS = BEGUN_MS + WINDOWS * MAX_WINDOW_MS
TURN_S = 3.0  # each turn reads one window and takes this long on the injected clock
STORED, REQUESTS = 7, 2  # per turn
LINE = re.compile(r"history of (\S+) (\d+) of (\d+) windows read \((\d+)%\), (\d+) records so far")


def turn(window: int, *, done: bool = False) -> Progress:
    """What the `window`-th turn of a backfill did (1-based): everything up to its end is read."""
    return Progress(
        requests=REQUESTS,
        stored=STORED,
        reached_ms=BEGUN_MS + window * MAX_WINDOW_MS,
        done=done,
        begun_ms=None if done else BEGUN_MS,
        goal_ms=None if done else GOAL_MS,
    )


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "exporter.activity.backfill_progress"]


def test_progress_lines_come_at_most_once_a_period_and_carry_the_numbers(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backfill_progress, "PROGRESS_EVERY_S", 10.0)
    caplog.set_level(logging.INFO, logger="exporter.activity.backfill_progress")
    clock = FakeClock(1000.0)
    health = {"main": SyncHealth("main")}
    progress = BackfillProgress(health, clock)
    path = ENDPOINTS["trade"]
    told_at: list[float] = []  # the injected time of each progress line
    for window in range(1, WINDOWS):
        before = len(messages(caplog))
        progress.tell("main", "trade", turn(window))
        new = messages(caplog)[before:]
        if window == 1:
            assert len(new) == 1 and f"reading the history of {path} from" in new[0], new
            assert f"({WINDOWS} windows of 30 days)" in new[0], new
            new = []
        for line in new:
            found = LINE.search(line)
            assert found, line
            assert found.groups() == (
                path, str(window), str(WINDOWS), str(round(100 * window / WINDOWS)), str(STORED * window)
            ), line  # fmt: skip
            told_at.append(clock())
        assert len(new) <= 1, new
        # The gauge follows every turn, not only the logged ones.
        share = health["main"].snapshot({}).backfill_progress["trade"]
        assert share == pytest.approx(window / WINDOWS)
        clock.now += TURN_S
    # Turns at 1000, 1003, ... 1030 after the start at 1000: the first turn at least a period after
    # the last line (or the start) says how far it is, and no other.
    assert told_at == [1012.0, 1024.0], told_at
    before = len(messages(caplog))
    progress.tell("main", "trade", turn(WINDOWS, done=True))
    (end,) = messages(caplog)[before:]
    records, requests = STORED * WINDOWS, REQUESTS * WINDOWS
    assert f"the history of {path} is read: {records} records in {requests} requests" in end, end
    assert health["main"].snapshot({}).backfill_progress["trade"] == 1.0
    # One start and one end in all; a turn after the end starts nothing (the present is reached).
    progress.tell("main", "trade", Progress(requests=1, stored=3, reached_ms=GOAL_MS, done=True))
    lines = messages(caplog)
    assert sum("reading the history of" in line for line in lines) == 1, lines
    assert sum("is read:" in line for line in lines) == 1, lines


def test_a_backfill_quicker_than_a_period_logs_only_its_start_and_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="exporter.activity.backfill_progress")
    clock = FakeClock(50.0)
    progress = BackfillProgress({"main": SyncHealth("main")}, clock)
    for window in range(1, WINDOWS):
        progress.tell("main", "fiat", turn(window))
        clock.now += PROGRESS_EVERY_S / WINDOWS
    progress.tell("main", "fiat", turn(WINDOWS, done=True))
    lines = messages(caplog)
    assert len(lines) == 2, lines
    assert "reading the history of" in lines[0] and "is read:" in lines[1], lines
