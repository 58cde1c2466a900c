"""A stand-in for the BTCTurk REST API, for integration tests, benchmarks and ``btcturk-exporter --demo``.

The package is split by job: ``market`` (pairs and prices), ``accounts`` (keys, assets, signatures),
``faults`` and ``ratelimit`` (misbehaviour, on demand and by quota), ``routes`` and ``endpoints`` (what
each request gets), ``server`` (HTTP plumbing), ``core`` (the ``Simulator`` that ties them together) and
``cli`` (``python -m exporter.simulator``).
"""

from __future__ import annotations

from exporter.simulator.accounts import STAMP_TOLERANCE_MS, SimAsset, demo_assets, generate_keypair
from exporter.simulator.amounts import format_amount
from exporter.simulator.cli import main
from exporter.simulator.core import Simulator
from exporter.simulator.faults import FAULT_KINDS, Fault
from exporter.simulator.market import USDT_TRY
from exporter.simulator.paths import (
    BALANCES_PATH,
    CONTROL_PREFIX,
    EXCHANGE_INFO_PATH,
    SERVER_TIME_PATH,
    TICKER_PATH,
)

__all__ = [
    "BALANCES_PATH",
    "CONTROL_PREFIX",
    "EXCHANGE_INFO_PATH",
    "FAULT_KINDS",
    "SERVER_TIME_PATH",
    "STAMP_TOLERANCE_MS",
    "TICKER_PATH",
    "USDT_TRY",
    "Fault",
    "SimAsset",
    "Simulator",
    "demo_assets",
    "format_amount",
    "generate_keypair",
    "main",
]
