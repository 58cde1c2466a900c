"""The BTCTurk simulator must behave like the real API as the reference notes describe it: signing,
the balances payload, the envelope's harmless variations, and HTTP handling."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests
from support import (
    TIMEOUT,
    VECTOR_PRIVATE,
    VECTOR_PUBLIC,
    VECTOR_SIGNATURE,
    VECTOR_STAMP,
    FakeClock,
    assert_bearer_401,
    signed_get,
)

from exporter.simulator import (
    BALANCES_PATH,
    SERVER_TIME_PATH,
    TICKER_PATH,
    SimAsset,
    Simulator,
    demo_assets,
    format_amount,
    generate_keypair,
)
from exporter.simulator.quirks import SUCCESS_CODES

# -- signing and authentication ------------------------------------------------------------------------


def test_signature_test_vector_is_accepted(sim: Simulator) -> None:
    headers = {"X-PCK": VECTOR_PUBLIC, "X-Stamp": str(VECTOR_STAMP), "X-Signature": VECTOR_SIGNATURE}
    response = requests.get(sim.url + BALANCES_PATH, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["code"] in SUCCESS_CODES and body["message"] is None
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
    sim.quirks.exact()
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
        assert row["orderFund"] == row["locked"] and row["requestFund"] == "0"
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


def test_pending_withdrawal_is_locked_and_not_an_open_order(sim: Simulator) -> None:
    sim.quirks.exact()
    sim.set_assets(
        VECTOR_PUBLIC, [SimAsset("BTC", "Bitcoin", 1, Decimal("0.75"), request_fund=Decimal("0.5"))]
    )
    (row,) = signed_get(sim).json()["data"]
    assert (row["balance"], row["locked"], row["requestFund"], row["orderFund"]) == (
        "1.75",
        "0.75",
        "0.5",
        "0.25",
    )


# -- the live API's harmless variations, on by default ---------------------------------------------------


def envelope_sequence(seed: int, clock: FakeClock, n: int = 40) -> list[tuple[object, bool]]:
    with Simulator(clock=clock, seed=seed) as simulator:
        simulator.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE)
        bodies = [signed_get(simulator).json() for _ in range(n)]
    return [(b["code"], all("timestamp" in row for row in b["data"])) for b in bodies]


def test_success_code_and_balance_timestamp_vary_by_default_and_repeatably(clock: FakeClock) -> None:
    seen = envelope_sequence(3, clock)
    assert {code for code, _ in seen} == set(SUCCESS_CODES)
    assert {stamped for _, stamped in seen} == {True, False}
    assert envelope_sequence(3, clock) == seen != envelope_sequence(4, clock)


def test_public_envelopes_vary_too(sim: Simulator) -> None:
    codes = {requests.get(sim.url + TICKER_PATH, timeout=TIMEOUT).json()["code"] for _ in range(30)}
    assert len(codes) > 1 and codes <= set(SUCCESS_CODES)


def test_exact_quirks_always_answer_code_zero_with_timestamps(sim: Simulator) -> None:
    sim.quirks.exact()
    for _ in range(10):
        body = signed_get(sim).json()
        assert body["code"] == 0 and all(row["timestamp"] == VECTOR_STAMP for row in body["data"])


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


# -- HTTP details -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v2/nope", "/", "/api/v1/users/balance"])
def test_unknown_path_is_404_with_empty_body(sim: Simulator, path: str) -> None:
    response = requests.get(sim.url + path, timeout=TIMEOUT)
    assert response.status_code == 404
    assert response.content == b""


def test_head_answers_like_get_without_a_body(sim: Simulator) -> None:
    get = requests.get(sim.url + SERVER_TIME_PATH, timeout=TIMEOUT)
    head = requests.head(sim.url + SERVER_TIME_PATH, timeout=TIMEOUT)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert int(head.headers["Content-Length"]) == len(get.content)
    assert requests.head(sim.url + "/api/v2/nope", timeout=TIMEOUT).status_code == 404
    # The connection stays usable after a HEAD: the client must not wait for a body.
    with requests.Session() as session:
        assert session.head(sim.url + TICKER_PATH, timeout=TIMEOUT).status_code == 200
        assert session.get(sim.url + SERVER_TIME_PATH, timeout=TIMEOUT).json()["serverTime"] == VECTOR_STAMP
