"""The fixtures of the simulator's tests: a fake clock at the signing test vector's stamp, and a
simulator on it holding the vector's account."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import VECTOR_PRIVATE, VECTOR_PUBLIC, VECTOR_STAMP, FakeClock

from exporter.simulator import Simulator


@pytest.fixture
def clock() -> FakeClock:
    # Exactly on a minute boundary: a window that reset at the clock minute would look right here.
    return FakeClock(VECTOR_STAMP / 1000)


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(clock=clock) as simulator:
        simulator.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE)
        yield simulator
