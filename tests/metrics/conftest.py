"""The fixtures of the renderer's tests: a store of two accounts and the shared ticker, and a renderer
attached to it on a clock the test moves."""

from __future__ import annotations

import pytest
from support import NOW, SETTINGS, FakeClock

from exporter.api.errors import REASONS
from exporter.metrics.renderer import Renderer
from exporter.poll.snapshot import SHARED, Store


@pytest.fixture
def clock() -> FakeClock:
    """A fake monotonic clock, at NOW until the test moves it."""
    return FakeClock(NOW)


@pytest.fixture
def store() -> Store:
    return Store(["main", "savings"], REASONS, [(SHARED, "ticker")])


@pytest.fixture
def renderer(store: Store, clock: FakeClock) -> Renderer:
    renderer = Renderer(SETTINGS, store.view, monotonic=clock)
    renderer.attach(store)
    return renderer
