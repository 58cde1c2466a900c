"""The BTCTurk simulator must behave like the real API as the reference notes describe it."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests

from exporter.signing import auth_headers, decode_private_key
from exporter.simulator import (
    BALANCES_PATH,
    EXCHANGE_INFO_PATH,
    SERVER_TIME_PATH,
    TICKER_PATH,
    Fault,
    SimAsset,
    Simulator,
    demo_assets,
    format_amount,
    generate_keypair,
)

# The signing test vector from btcturk-api-notes.md.
VECTOR_PUBLIC = "test-public-key"
VECTOR_PRIVATE = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz"
VECTOR_STAMP = 1735689600000
VECTOR_SIGNATURE = "7gyFGcOS+qnq46h/rl83VtpaEAsh8Th3Z3lQrF7g2I0="
TIMEOUT = 5.0


class FakeClock:
    """A settable clock, so windows and stamp checks are deterministic."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    # Exactly on a minute boundary, so the rate-limit window starts "now".
    return FakeClock(VECTOR_STAMP / 1000)


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(clock=clock) as simulator:
        simulator.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE)
        yield simulator


def signed_get(
    sim: Simulator, offset_ms: int = 0, public: str = VECTOR_PUBLIC, private: str = VECTOR_PRIVATE
) -> requests.Response:
    stamp = round(sim.clock() * 1000) + offset_ms
    headers = auth_headers(public, decode_private_key(private), stamp)
    return requests.get(sim.url + BALANCES_PATH, headers=headers, timeout=TIMEOUT)


def assert_bearer_401(response: requests.Response) -> None:
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


# -- signing and authentication ------------------------------------------------------------------------


def test_signature_test_vector_is_accepted(sim: Simulator) -> None:
    headers = {"X-PCK": VECTOR_PUBLIC, "X-Stamp": str(VECTOR_STAMP), "X-Signature": VECTOR_SIGNATURE}
    response = requests.get(sim.url + BALANCES_PATH, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["code"] == 0 and body["message"] is None
    assert {row["asset"] for row in body["data"]} >= {"TRY", "BTC", "OLDTOKEN"}


@pytest.mark.parametrize(
    ("offset_ms", "public", "private"),
    [
        pytest.param(0, VECTOR_PUBLIC, "d3Jvbmcta2V5", id="wrong-signature"),
        pytest.param(0, "unknown-key", VECTOR_PRIVATE, id="unknown-key"),
        pytest.param(-5500, VECTOR_PUBLIC, VECTOR_PRIVATE, id="stamp-5.5s-old"),
        pytest.param(5500, VECTOR_PUBLIC, VECTOR_PRIVATE, id="stamp-5.5s-ahead"),
    ],
)
def test_bad_credentials_get_401_with_empty_body(
    sim: Simulator, offset_ms: int, public: str, private: str
) -> None:
    assert_bearer_401(signed_get(sim, offset_ms, public, private))


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-headers"),
        pytest.param(
            {"X-PCK": VECTOR_PUBLIC, "X-Stamp": "1735689600", "X-Signature": "x"}, id="stamp-in-seconds"
        ),
        pytest.param(
            {"X-PCK": VECTOR_PUBLIC, "X-Stamp": "1735689600000.0", "X-Signature": VECTOR_SIGNATURE},
            id="non-integer-stamp",
        ),
    ],
)
def test_malformed_auth_headers_get_401(sim: Simulator, headers: dict[str, str]) -> None:
    assert_bearer_401(requests.get(sim.url + BALANCES_PATH, headers=headers, timeout=TIMEOUT))


@pytest.mark.parametrize("offset_ms", [-4000, 4000])
def test_stamp_four_seconds_off_is_accepted(sim: Simulator, offset_ms: int) -> None:
    assert signed_get(sim, offset_ms).status_code == 200


def test_key_without_balance_permission_gets_401(sim: Simulator) -> None:
    public, private = generate_keypair(7)
    sim.add_account(public, private, can_read_balances=False)
    assert_bearer_401(signed_get(sim, 0, public, private))
    sim.set_permission(public, True)
    assert signed_get(sim, 0, public, private).status_code == 200


def test_legacy_401_has_json_body(sim: Simulator) -> None:
    sim.legacy_401 = True
    response = signed_get(sim, 10_000)
    assert response.status_code == 401
    assert response.json() == {"success": True, "message": "Unauthorized - Invalid Nonce", "code": 1037}


def test_clock_skew_shifts_server_time_and_stamp_window(sim: Simulator, clock: FakeClock) -> None:
    sim.clock_skew = 30.0
    body = requests.get(sim.url + SERVER_TIME_PATH, timeout=TIMEOUT).json()
    assert body["serverTime"] == VECTOR_STAMP + 30_000
    assert body["serverTime2"].startswith("2025-01-01T00:00:30")
    assert "data" not in body
    assert_bearer_401(signed_get(sim))
    assert signed_get(sim, 30_000).status_code == 200


# -- balances payload ----------------------------------------------------------------------------------


def test_balances_payload_shape(sim: Simulator) -> None:
    response = signed_get(sim)
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Türk Lirası".encode() in response.content  # raw UTF-8, not \u escapes
    rows = response.json()["data"]
    expected = demo_assets(0)
    assert [row["asset"] for row in rows] == [a.asset for a in expected]
    assert sum(1 for row in rows if row["balance"] == "0") >= 40
    for row, asset in zip(rows, expected, strict=True):
        assert set(row) == {
            "asset",
            "assetname",
            "balance",
            "locked",
            "free",
            "orderFund",
            "requestFund",
            "precision",
            "timestamp",
        }
        assert row["timestamp"] == VECTOR_STAMP
        assert isinstance(row["precision"], int)
        for key in ("balance", "locked", "free", "orderFund", "requestFund"):
            assert isinstance(row[key], str)
            assert len(row[key].partition(".")[2]) <= 16
        assert Decimal(row["balance"]) == Decimal(row["free"]) + Decimal(row["locked"]) == asset.balance
        assert row["orderFund"] == row["locked"]
    btc = next(row for row in rows if row["asset"] == "BTC")
    assert len(btc["free"].partition(".")[2]) >= 14


def test_comma_decimals(sim: Simulator) -> None:
    sim.set_assets(
        VECTOR_PUBLIC,
        [
            SimAsset(
                "TRY",
                "Türk Lirası",
                Decimal("22349.3654565035348765"),
                Decimal("4874.3628685722294523"),
                precision=2,
            )
        ],
    )
    sim.comma_decimals = True
    (row,) = signed_get(sim).json()["data"]
    assert row["balance"] == "27223,7283250757643288"
    assert row["free"] == "22349,3654565035348765"
    assert row["requestFund"] == "0"


def test_format_amount_never_uses_exponents() -> None:
    assert format_amount(Decimal("1E-16")) == "0.0000000000000001"
    assert format_amount(Decimal("1E+3")) == "1000"
    assert format_amount(Decimal("0.12345678901234567890")) == "0.1234567890123456"
    assert format_amount(Decimal("0E-16")) == "0"


def test_remove_and_set_assets(sim: Simulator) -> None:
    sim.remove_asset(VECTOR_PUBLIC, "BTC")
    assets = [row["asset"] for row in signed_get(sim).json()["data"]]
    assert "BTC" not in assets and "ETH" in assets
    sim.set_assets(VECTOR_PUBLIC, [SimAsset("FOO", "Foo Coin", 1, 2)])
    assert signed_get(sim).json()["data"][0]["balance"] == "3"


# -- rate limits ---------------------------------------------------------------------------------------


def test_balance_limit_blocks_for_rest_of_window(clock: FakeClock) -> None:
    with Simulator(clock=clock, balance_limit=3) as sim:
        sim.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE)
        assert [signed_get(sim).status_code for _ in range(3)] == [200, 200, 200]
        blocked = signed_get(sim)
        assert blocked.status_code == 429
        assert blocked.headers["Retry-After"] == "60"
        assert blocked.json() == {
            "message": "TOO_MANY_REQUESTS",
            "success": False,
            "code": 429,
            "details": "Quota exceeded. Maximum allowed: 3 per 1m.",
            "limit": "3",
            "period": "1m",
            "policy": "ip",
        }
        # Other endpoints have their own budget.
        assert requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT).status_code == 200
        clock.now += 44.5
        still = signed_get(sim)
        assert still.status_code == 429 and still.headers["Retry-After"] == "16"
        clock.now += 15.5
        assert signed_get(sim).status_code == 200
        assert sim.count(BALANCES_PATH, 429) == 2 and sim.count(BALANCES_PATH, 200) == 4


def test_rate_limit_window_follows_skewed_clock(clock: FakeClock) -> None:
    with Simulator(clock=clock, balance_limit=1) as sim:
        sim.clock_skew = 15.0
        sim.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE)
        assert signed_get(sim, 15_000).status_code == 200
        assert signed_get(sim, 15_000).headers["Retry-After"] == "45"


# -- faults --------------------------------------------------------------------------------------------


def test_latency_fault_delays_then_answers(sim: Simulator) -> None:
    sim.inject(Fault("latency", seconds=0.3), endpoint=SERVER_TIME_PATH, times=1)
    started = time.monotonic()
    assert requests.get(sim.url + SERVER_TIME_PATH, timeout=TIMEOUT).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert sim.count(SERVER_TIME_PATH, 200) == 1


def test_hang_fault_closes_without_answer(sim: Simulator) -> None:
    sim.inject(Fault("hang", seconds=0.2), endpoint=TICKER_PATH)
    with pytest.raises(requests.ConnectionError):
        requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT)
    assert sim.count(TICKER_PATH, 0) == 1


def test_hang_fault_makes_client_time_out(sim: Simulator) -> None:
    sim.inject(Fault("hang", seconds=30))
    with pytest.raises(requests.Timeout):
        requests.get(sim.url + TICKER_PATH, timeout=0.2)
    # stop() in the fixture wakes the held request, so this test stays fast.


def test_status_fault_returns_given_response(sim: Simulator) -> None:
    page = b"<html><body>Access denied</body></html>"
    sim.inject(Fault("status", status=403, body=page, headers={"X-Cdn": "edge"}), endpoint=BALANCES_PATH)
    response = signed_get(sim)
    assert response.status_code == 403 and response.content == page
    assert response.headers["X-Cdn"] == "edge" and response.headers["Content-Type"].startswith("text/html")
    assert requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT).status_code == 200


@pytest.mark.parametrize(("retry_after", "header"), [(7, "7"), (None, None)])
def test_rate_limit_fault(sim: Simulator, retry_after: float | None, header: str | None) -> None:
    sim.inject(Fault("rate_limit", retry_after=retry_after))
    response = signed_get(sim)
    assert response.status_code == 429
    assert response.headers.get("Retry-After") == header
    assert response.json()["message"] == "TOO_MANY_REQUESTS"


def test_reset_fault_breaks_the_body(sim: Simulator) -> None:
    sim.inject(Fault("reset"), endpoint=TICKER_PATH, times=1)
    with pytest.raises(requests.RequestException):
        requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT).json()
    assert sim.count(TICKER_PATH, 0) == 1
    assert requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT).status_code == 200


@pytest.mark.parametrize("body", [b"<html>maintenance</html>", b'{"data":[{"asset":"TR'])
def test_body_fault_returns_raw_bytes_with_200(sim: Simulator, body: bytes) -> None:
    sim.inject(Fault("body", body=body))
    response = signed_get(sim)
    assert response.status_code == 200 and response.content == body


def test_auth_faults(sim: Simulator) -> None:
    sim.inject(Fault("auth"), times=1)
    sim.inject(Fault("auth_json"), times=1)
    assert_bearer_401(signed_get(sim))
    legacy = signed_get(sim)
    assert legacy.status_code == 401 and legacy.json()["code"] == 1037
    assert signed_get(sim).status_code == 200


def test_clear_faults_and_endpoint_scoping(sim: Simulator) -> None:
    sim.inject(Fault("status", status=503), endpoint=EXCHANGE_INFO_PATH)
    assert requests.get(sim.url + EXCHANGE_INFO_PATH, timeout=TIMEOUT).status_code == 503
    assert requests.get(sim.url + SERVER_TIME_PATH, timeout=TIMEOUT).status_code == 200
    sim.clear_faults()
    assert requests.get(sim.url + EXCHANGE_INFO_PATH, timeout=TIMEOUT).status_code == 200


def test_faulted_requests_still_count_against_the_limit(clock: FakeClock) -> None:
    with Simulator(clock=clock, balance_limit=2) as sim:
        sim.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE)
        sim.inject(Fault("status", status=502), endpoint=BALANCES_PATH, times=2)
        assert [signed_get(sim).status_code for _ in range(3)] == [502, 502, 429]


def test_unknown_fault_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")


# -- public endpoints ----------------------------------------------------------------------------------


def test_ticker_covers_every_valuation_route(sim: Simulator) -> None:
    rows = requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT).json()["data"]
    tickers = {row["pair"]: row for row in rows}
    direct = {"BTCTRY", "ETHTRY", "USDTTRY", "BTCUSDT", "ETHUSDT", "AVAXTRY"}
    assert direct | {"XRPUSDT", "ZRXBTC"} <= set(tickers)
    assert "TRYUSDT" not in tickers and "XRPTRY" not in tickers and "ZRXTRY" not in tickers
    assert not any("OLDTOKEN" in pair for pair in tickers)
    for row in rows:
        assert row["bid"] < row["last"] < row["ask"]
        assert row["pairNormalized"] == f"{row['numeratorSymbol']}_{row['denominatorSymbol']}"
        for key in ("last", "high", "low", "open", "volume", "average", "daily", "dailyPercent"):
            assert isinstance(row[key], (int, float))
    assert 3_000_000 < tickers["BTCTRY"]["last"] < 4_000_000
    assert 38 < tickers["USDTTRY"]["last"] < 45
    cross = tickers["BTCTRY"]["last"] / tickers["USDTTRY"]["last"]
    assert tickers["BTCUSDT"]["last"] == pytest.approx(cross, rel=1e-3)


def test_ticker_pair_filter_and_set_price(sim: Simulator) -> None:
    sim.set_price("BTCTRY", Decimal("3600000"), Decimal("3599000"), Decimal("3601000"))
    response = requests.get(sim.url + TICKER_PATH, params={"pairSymbol": "BTCTRY"}, timeout=TIMEOUT)
    (row,) = response.json()["data"]
    assert (row["pair"], row["last"], row["bid"], row["ask"]) == ("BTCTRY", 3600000, 3599000, 3601000)
    sim.set_price("NEWTRY", Decimal("12.5"))
    filtered = requests.get(sim.url + TICKER_PATH, params={"pairSymbol": "NEW_TRY"}, timeout=TIMEOUT)
    (new,) = filtered.json()["data"]
    assert new["numeratorSymbol"] == "NEW" and new["bid"] < 12.5 < new["ask"]


def test_drift_moves_prices_and_balances_consistently(sim: Simulator) -> None:
    before_btc = sim.price("BTCTRY")
    before_assets = {a.asset: a.balance for a in sim.assets(VECTOR_PUBLIC)}
    for _ in range(5):
        sim.drift(0.01)
    assert sim.price("BTCTRY") != before_btc
    after = {a.asset: a.balance for a in sim.assets(VECTOR_PUBLIC)}
    assert after["BTC"] != before_assets["BTC"] and after["ADA"] == 0
    rows = {r["pair"]: r for r in requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT).json()["data"]}
    assert all(r["bid"] < r["last"] < r["ask"] for r in rows.values())
    cross = rows["BTCTRY"]["last"] / rows["USDTTRY"]["last"]
    assert rows["BTCUSDT"]["last"] == pytest.approx(cross, rel=2e-3)


def test_exchangeinfo_shape(sim: Simulator) -> None:
    body = requests.get(sim.url + EXCHANGE_INFO_PATH, timeout=TIMEOUT).json()
    assert body["success"] is True
    info = body["data"]
    assert info["serverTime"] == VECTOR_STAMP
    symbols = {s["name"]: s for s in info["symbols"]}
    tickers = requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT).json()["data"]
    assert set(symbols) == {t["pair"] for t in tickers}
    assert symbols["BTCTRY"]["numerator"] == "BTC" and symbols["BTCTRY"]["denominator"] == "TRY"
    assert all(s["status"] == "TRADING" for s in info["symbols"])
    currencies = {c["symbol"]: c for c in info["currencies"]}
    assert currencies["TRY"]["currencyType"] == "FIAT" and currencies["TRY"]["name"] == "Türk Lirası"
    assert currencies["BTC"]["currencyType"] == "CRYPTO" and currencies["BTC"]["precision"] == 8
    assert "OLDTOKEN" in currencies


def test_unknown_path_is_wrapped_404(sim: Simulator) -> None:
    response = requests.get(sim.url + "/api/v2/nope", timeout=TIMEOUT)
    assert response.status_code == 404
    assert response.json() == {"data": None, "success": False, "message": "NOT_FOUND", "code": 404}


def test_demo_assets_are_realistic() -> None:
    assets = {a.asset: a for a in demo_assets(3)}
    assert assets["TRY"].name == "Türk Lirası" and assets["TRY"].precision == 2
    held = {symbol for symbol, asset in assets.items() if asset.balance > 0}
    assert {"USDT", "BTC", "ETH", "XRP", "AVAX", "OLDTOKEN"} <= held
    assert sum(1 for a in assets.values() if a.balance == 0) >= 40
    assert -assets["BTC"].free.as_tuple().exponent == 16
    assert demo_assets(3) == demo_assets(3) != demo_assets(4)
    assert generate_keypair(1) == generate_keypair(1) != generate_keypair(None)


# -- accounting, control API and connection handling ---------------------------------------------------


def test_wait_for_requests(sim: Simulator) -> None:
    def poll() -> None:
        for _ in range(3):
            requests.get(sim.url + SERVER_TIME_PATH, timeout=TIMEOUT)

    worker = threading.Thread(target=poll)
    worker.start()
    sim.wait_for_requests(SERVER_TIME_PATH, 3, timeout=TIMEOUT)
    worker.join()
    assert sim.count(SERVER_TIME_PATH) == 3
    with pytest.raises(TimeoutError):
        sim.wait_for_requests(SERVER_TIME_PATH, 4, timeout=0.05)
    with pytest.raises(TimeoutError):
        sim.wait_for_requests(SERVER_TIME_PATH, 1, timeout=0.05, status=500)


def test_control_api(sim: Simulator) -> None:
    spec = {
        "kind": "status",
        "status": 502,
        "body": "<html>bad gateway</html>",
        "endpoint": TICKER_PATH,
        "times": 1,
    }
    assert requests.post(sim.url + "/_sim/faults", json=spec, timeout=TIMEOUT).status_code == 200
    assert requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT).status_code == 502
    assert requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT).status_code == 200
    requests.post(sim.url + "/_sim/faults", json={"kind": "auth"}, timeout=TIMEOUT)
    assert signed_get(sim).status_code == 401
    assert requests.delete(sim.url + "/_sim/faults", timeout=TIMEOUT).status_code == 200
    assert signed_get(sim).status_code == 200
    requests.post(sim.url + "/_sim/config", json={"comma_decimals": True}, timeout=TIMEOUT)
    assert sim.comma_decimals is True
    bad = requests.post(sim.url + "/_sim/faults", json={"kind": "explode"}, timeout=TIMEOUT)
    assert bad.status_code == 400
    stats = requests.get(sim.url + "/_sim/stats", timeout=TIMEOUT).json()["requests"]
    assert stats[TICKER_PATH] == {"200": 1, "502": 1}
    assert stats[BALANCES_PATH] == {"200": 1, "401": 1}


def test_keep_alive_serves_several_requests_on_one_connection(sim: Simulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(sim.url.rsplit(":", 1)[1]), timeout=TIMEOUT)
    try:
        sockets = []
        for _ in range(3):
            connection.request("GET", SERVER_TIME_PATH)
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["serverTime"] == VECTOR_STAMP
            assert not response.will_close
            sockets.append(connection.sock)
        # http.client reconnects (new socket) whenever the server closed; one socket proves keep-alive.
        assert sockets[0] is not None and sockets.count(sockets[0]) == 3
    finally:
        connection.close()


def test_survives_clients_that_disconnect_mid_request(sim: Simulator) -> None:
    host, port = "127.0.0.1", int(sim.url.rsplit(":", 1)[1])
    for partial in (b"GET /api/v2/tick", b'POST /_sim/faults HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"ki'):
        with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
            raw.sendall(partial)
    assert requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT).status_code == 200


def test_concurrent_clients(sim: Simulator) -> None:
    def fetch(_: int) -> int:
        return requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(fetch, range(96)))
    assert statuses == [200] * 96
    assert sim.count(TICKER_PATH, 200) == 96


def test_stop_drops_kept_alive_connections_and_restart_reuses_port(clock: FakeClock) -> None:
    sim = Simulator(clock=clock).start()
    url = sim.url
    with requests.Session() as session:
        assert session.get(url + SERVER_TIME_PATH, timeout=TIMEOUT).status_code == 200
        sim.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(url + SERVER_TIME_PATH, timeout=TIMEOUT)
        sim.start()
        try:
            assert sim.url == url
            assert session.get(url + SERVER_TIME_PATH, timeout=TIMEOUT).status_code == 200
        finally:
            sim.stop()


def test_command_line_runs_and_stops_on_sigterm() -> None:
    command = [sys.executable, "-m", "exporter.simulator", "--port", "0", "--accounts", "2", "--seed", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        lines = [process.stdout.readline() for _ in range(2)]
        accounts = [dict(part.split("=", 1) for part in line.split()[2:]) for line in lines]
        assert url.startswith("http://127.0.0.1:")
        assert accounts[0]["public_key"] != accounts[1]["public_key"]
        key = accounts[1]
        stamp = requests.get(url + SERVER_TIME_PATH, timeout=TIMEOUT).json()["serverTime"]
        headers = auth_headers(key["public_key"], decode_private_key(key["private_key"]), stamp)
        assert requests.get(url + BALANCES_PATH, headers=headers, timeout=TIMEOUT).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
