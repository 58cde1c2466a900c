"""The worked cost-basis example of docs/cost-basis.md as records, shared by the ledger and command tests."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from exporter.api.records import Trade, Transfer
from exporter.ledger.store import Ledger

T0 = 1_764_000_000_000


def t(n: int) -> int:
    return T0 + n * 60_000


def trade(n: int, pair: tuple[str, str], side: str, amount: str, price: str, fee: str, tax: str) -> Trade:
    return Trade(
        id=100 + n,
        order_id=None,
        timestamp_ms=t(n),
        base=pair[0],
        quote=pair[1],
        side=side,  # type: ignore[arg-type]
        price=D(price),
        amount=D(amount),
        fee=D(fee),
        tax=D(tax),
    )


def transfer(n: int, kind: str, asset: str | None, amount: str, fee: str | None = None) -> Transfer:
    return Transfer(
        kind=kind,  # type: ignore[arg-type]
        id=200 + n,
        timestamp_ms=t(n),
        balance_type="withdrawal" if amount.startswith("-") else "deposit",
        currency=asset,
        amount=D(amount),
        fee=None if fee is None else D(fee),
    )


BTCTRY, USDTTRY, BTCUSDT = ("BTC", "TRY"), ("USDT", "TRY"), ("BTC", "USDT")

# The example of docs/cost-basis.md, step by step.
EXAMPLE_TRADES = [
    trade(2, BTCTRY, "buy", "0.4", "2000000", "-800", "-144"),
    trade(4, BTCTRY, "buy", "0.5", "2200000", "-1100", "-198"),
    trade(5, BTCTRY, "sell", "-0.6", "2500000", "-1500", "-270"),
    trade(6, USDTTRY, "buy", "10000", "34", "-340", "-61.2"),
    trade(7, BTCUSDT, "buy", "0.05", "60000", "-3", "-0.54"),
]
EXAMPLE_TRANSFERS = [
    transfer(1, "fiat", "TRY", "2000000"),
    transfer(3, "crypto", "BTC", "0.1"),
    transfer(8, "crypto", "BTC", "-0.09", fee="-0.0005"),
]
EXAMPLE_PRICES = {
    ("BTC", "TRY", t(3)): D("2100000"),
    ("USDT", "TRY", t(7)): D("35"),
    ("BTC", "TRY", t(8)): D("2400000"),
}


class Prices:
    """A price_at that knows a few prices and records every question asked of it."""

    def __init__(self, known: dict[tuple[str, str, int], D]) -> None:
        self.known = known
        self.asked: list[tuple[str, str, int]] = []

    def __call__(self, asset: str, currency: str, when_ms: int) -> D | None:
        self.asked.append((asset, currency, when_ms))
        return self.known.get((asset, currency, when_ms))


# The example in a ledger for the command tests: record n at hour n after 2025-12-01T00:00:00Z.
LEDGER_T0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z, 03:00 in Istanbul
HOUR_MS = 3_600_000


def hourly(record: Trade | Transfer, n: int) -> Trade | Transfer:
    """The worked example's record n, moved to hour n (one cached candle per hour and pair)."""
    return record._replace(timestamp_ms=LEDGER_T0 + n * HOUR_MS)


def write_example_ledger(path: Path) -> Path:
    """docs/cost-basis.md's worked example for alice, a deposit for bob, and the prices they need.

    Cached: BTC/TRY at hours 3, 8 and 10, USDT/TRY at 7 and 10 (the records' and a report's end).
    """
    trades = [hourly(t, (t.timestamp_ms - T0) // 60_000) for t in EXAMPLE_TRADES]
    transfers = [hourly(t, (t.timestamp_ms - T0) // 60_000) for t in EXAMPLE_TRANSFERS]
    with Ledger.open(path) as ledger:
        ledger.upsert_trades("alice", trades)  # type: ignore[arg-type]
        ledger.upsert_transfers("alice", transfers)  # type: ignore[arg-type]
        ledger.upsert_transfers("bob", [hourly(EXAMPLE_TRANSFERS[0], 9)])  # type: ignore[list-item]
        hour = LEDGER_T0 // 1000
        btc = [
            (hour + 3 * 3600, D(2_100_000)),
            (hour + 8 * 3600, D(2_400_000)),
            (hour + 10 * 3600, D(2_500_000)),
        ]
        ledger.prices.put("BTCTRY", "60", btc)
        ledger.prices.put("USDTTRY", "60", [(hour + 7 * 3600, D(35)), (hour + 10 * 3600, D(36))])
        for base, quote in (BTCTRY, USDTTRY):
            ledger.set_state(f"prices:60:{base}{quote}", f"{hour}:{hour + 11 * 3600}")
    return path
