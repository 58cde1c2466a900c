"""A stand-in for the BTCTurk REST API, for integration tests, benchmarks and ``btcturk-exporter --demo``.

The package is split by job: ``market`` and ``pricepath`` (pairs, prices, their past), ``accounts``,
``ledger``, ``activity`` and ``backfill`` (keys and assets, the history that is the only way a balance
changes, months of it pre-generated), ``faults``, ``ratelimit`` and ``quirks`` (misbehaviour on demand,
by quota, and the live API's harmless variations), ``routes``, ``endpoints``, ``transactions`` and
``graph`` (what each request gets), ``server`` (HTTP plumbing), ``state`` and ``core`` (the
``Simulator``: what it holds, and the server in front of it) and ``cli`` (``python -m exporter.simulator``).
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
