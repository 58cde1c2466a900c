"""Fixtures shared by the tests; their helpers live in tests/support.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from costbasis_example import write_example_ledger
from pki import Pki, make_pki
from support import ExporterProcess, Joined, joined_stack, start_exporter


@pytest.fixture
def exporter_factory(tmp_path: Path) -> Iterator[Callable[..., ExporterProcess]]:
    """Start exporters; every one is stopped (and must exit cleanly) at the end of the test."""
    started: list[ExporterProcess] = []

    def factory(config: dict | None, *args: str, **kwargs: object) -> ExporterProcess:
        exporter = start_exporter(tmp_path, config, *args, **kwargs)
        started.append(exporter)
        return exporter

    yield factory
    for exporter in started:
        exporter.terminate()


@pytest.fixture(scope="session")
def joined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Joined]:
    """A live exporter scraped by Prometheus, its past backfilled: one for every module that asks."""
    with joined_stack(tmp_path_factory.mktemp("backfill-joins-live")) as stack:
        yield stack


@pytest.fixture
def example_ledger(tmp_path: Path) -> Path:
    """docs/cost-basis.md's worked example in a ledger, with the prices it needs cached."""
    return write_example_ledger(tmp_path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The certificates of tests/pki.py, made once a module."""
    return make_pki(tmp_path_factory.mktemp("pki"))
