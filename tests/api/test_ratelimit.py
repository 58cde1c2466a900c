"""The per-endpoint gates: a sliding-window limiter and Retry-After pauses, under a fake clock."""

from __future__ import annotations

import pytest

from exporter.api.budget import Budget
from exporter.api.ratelimit import DEFAULT_RATE_LIMIT_PAUSE, MAX_RETRY_AFTER, Gate, Gates, capped_pause
from exporter.loops import Stopped


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pause_extends_and_never_shortens() -> None:
    clock = Clock()
    gate = Gate(Budget("balances", 120, ()), clock)
    gate.pause(10)
    gate.pause(3)
    assert gate.paused() == 10
    clock.now = 105.0
    assert gate.paused() == 5
    clock.now = 111.0
    assert gate.paused() == 0


def test_a_pause_holds_only_its_own_endpoint() -> None:
    clock = Clock()
    gates = Gates(clock=clock)
    gates["balances"].pause(30)
    assert gates["ticker"].paused() == 0
    assert gates["ticker"].acquire(clock.now, clock.sleep) is None
    assert gates["transactions/fiat"].paused() == 0


def test_no_more_than_the_limit_in_any_window() -> None:
    clock = Clock()
    gate = Gate(Budget("x", 3, ()), clock)
    for _ in range(3):
        assert gate.acquire(clock.now, clock.sleep) is None
        clock.now += 1
    # The fourth call waits until the first one is 60 s old and the arrival slack (2 s) has passed.
    assert gate.acquire(clock.now + 120, clock.sleep) is None
    assert clock.slept == [59.0]
    assert clock.now == 162.0
    assert gate.used() == 3


def test_a_caller_waits_no_longer_than_its_deadline() -> None:
    clock = Clock()
    gate = Gate(Budget("x", 1, ()), clock)
    assert gate.acquire(clock.now, clock.sleep) is None
    assert gate.acquire(clock.now + 5, clock.sleep) == "limited"
    assert clock.now == 105.0
    gate.pause(30)
    assert gate.acquire(clock.now + 5, clock.sleep) == "paused"
    assert clock.now == 110.0


def test_a_waiting_caller_waits_out_the_pause_then_goes() -> None:
    clock = Clock()
    gate = Gate(Budget("x", 10, ()), clock)
    gate.pause(4)
    assert gate.acquire(clock.now + 10, clock.sleep) is None
    assert clock.slept == [4.0]


def test_a_stop_ends_the_wait() -> None:
    clock = Clock()
    gate = Gate(Budget("x", 10, ()), clock)
    gate.pause(4)

    def stopping(seconds: float) -> None:
        raise Stopped

    with pytest.raises(Stopped):
        gate.acquire(clock.now + 10, stopping)


def test_retry_after_is_capped() -> None:
    assert capped_pause(None) == DEFAULT_RATE_LIMIT_PAUSE
    assert capped_pause(17) == 17
    assert capped_pause(86400) == MAX_RETRY_AFTER
