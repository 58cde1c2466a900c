"""Market status and price-history parsing, against documented shapes and the simulator's answers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exporter.api.candles import parse_klines, parse_ohlcs
from exporter.api.client import Client
from exporter.api.market import parse_exchange_info
from exporter.api.parsing import BadResponse
from exporter.api.transactions import ActivityClient
from exporter.config.activity_settings import ActivitySettings, parse_since
from exporter.simulator import Simulator


def envelope(data: object) -> dict[str, object]:
    return {"data": data, "success": True, "message": None, "code": 0}


def test_blocks_say_which_assets_move_and_absence_is_unknown() -> None:
    info = envelope(
        {
            "symbols": [
                {"name": "BTCTRY", "numerator": "BTC", "denominator": "TRY", "status": "TRADING"},
                {"name": "OLDTRY", "numerator": "OLD", "denominator": "TRY", "status": "HALT"},
                {"name": None, "numerator": "X"},
            ],
            "currencies": [{"symbol": "BTC"}, {"symbol": "ETH", "depositEnabled": False}, {"symbol": "TRY"}],
            "currencyOperationBlocks": [
                {"currencySymbol": "BTC", "withdrawalDisabled": True, "depositDisabled": False},
                {"currencySymbol": "XRP", "withdrawalDisabled": "yes"},
            ],
        }
    )
    status = parse_exchange_info(info, 12.0)
    assert status.trading == {"BTCTRY": True, "OLDTRY": False}
    assert status.pairs == {"BTCTRY": ("BTC", "TRY"), "OLDTRY": ("OLD", "TRY")}
    assert status.withdrawals["BTC"] is False and status.deposits["BTC"] is True
    assert status.deposits["ETH"] is False and status.withdrawals["ETH"] is None
    assert status.deposits["TRY"] is None and status.withdrawals["XRP"] is None
    with pytest.raises(BadResponse):
        parse_exchange_info(envelope({"symbols": "nope"}), 0.0)


def test_commission_from_numerator_is_read_only_where_it_is_a_boolean() -> None:
    def entry(name: str, **extra: object) -> dict[str, object]:
        return {"name": name + "TRY", "numerator": name, "denominator": "TRY", "status": "TRADING", **extra}

    info = envelope(
        {
            "symbols": [
                entry("BTC", commissionFromNumerator=True),
                entry("ETH", commissionFromNumerator=False),
                entry("XRP"),  # absent: the notes' rule, fees in the denominator
                entry("AVAX", commissionFromNumerator="true"),  # not a boolean: not read
                entry("SOL", commissionFromNumerator=1),
                entry("ADA", commissionFromNumerator=None),
            ]
        }
    )
    status = parse_exchange_info(info, 0.0)
    assert status.commission_from_numerator == {"BTCTRY": True, "ETHTRY": False}
    assert len(status.pairs) == 6
    assert parse_exchange_info(envelope({"symbols": []}), 0.0).commission_from_numerator == {}


def test_the_simulators_exchangeinfo_and_blocks_come_through_the_client() -> None:
    with Simulator() as sim:
        sim.block_operations("BTC", withdrawal=True)
        client = ActivityClient(Client(sim.url, 2.0), Client(sim.url, 2.0))
        status = client.market(1.0)
        assert status.withdrawals["BTC"] is False and status.deposits["BTC"] is True
        assert status.withdrawals["ETH"] is True
        assert all(status.trading.values()) and "BTCTRY" in status.pairs
        # Every pair states its flag; the one the simulator's buys pay in the numerator says true.
        assert status.commission_from_numerator.keys() == status.pairs.keys()
        assert {p for p, flag in status.commission_from_numerator.items() if flag} == {"ETHTRY"}
        sim.operation_blocks = None
        sim.exchange_info_cache = None
        status = client.market(2.0)
        assert status.withdrawals.get("BTC") is None  # no blocks, no switches: unknown
        candles = client.candles("BTC", "TRY", "1D", int(sim.now()) - 10 * 86400, int(sim.now()))
        assert 9 <= len(candles) <= 11 and all(close > 0 for _, close in candles)
        hourly = client.candles("BTC", "TRY", "60", int(sim.now()) - 10 * 3600, int(sim.now()))
        assert 9 <= len(hourly) <= 11


def test_candles_parse_exactly_and_refuse_nonsense() -> None:
    assert parse_klines({"s": "no_data"}) == ()
    answer = {"s": "ok", "t": [3600], "c": [Decimal("1.5")], "o": [1]}
    assert parse_klines(answer) == ((3600, Decimal("1.5")),)
    assert parse_ohlcs([{"time": 86400, "close": "2,5"}]) == ((86400, Decimal("2.5")),)
    assert parse_ohlcs(envelope([])) == ()
    for bad in ({"s": "error"}, {"s": "ok", "t": [1, 2], "c": [1]}, {"s": "ok", "t": [1], "c": [0]}, []):
        with pytest.raises(BadResponse):
            parse_klines(bad)
    for rows in ({"x": 1}, [{"time": 1.5, "close": 1}], [{"time": True, "close": 1}], [3]):
        with pytest.raises(BadResponse):
            parse_ohlcs(rows)


def test_since_takes_a_date_or_a_duration_and_settings_refuse_nonsense() -> None:
    assert parse_since("2026-01-01", 0) == 1_767_225_600_000
    assert parse_since("730d", 1_000 * 86_400_000) == 270 * 86_400_000
    assert parse_since("1y1d12h", 400 * 86_400_000) == (400 - 365 - 1.5) * 86_400_000
    for bad in ("2026-13-01", "forever", "12 d", ""):
        with pytest.raises(ValueError, match="date"):
            parse_since(bad, 0)
    for field, value in (("page_cap", 1), ("cost_basis", "lofi"), ("interval", 0), ("overlap", -1),
                         ("rate_limit_share", 1.5), ("requests_per_turn", 0), ("since", "soon")):  # fmt: skip
        with pytest.raises(ValueError):
            ActivitySettings(**{field: value})  # type: ignore[arg-type]
