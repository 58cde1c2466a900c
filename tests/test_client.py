"""The client against the simulator over loopback HTTP: every failure maps to its reason."""

import socket
from collections.abc import Iterator

import pytest

from exporter import __version__
from exporter.client import BALANCES, SERVER_TIME, TICKER, ApiError, Client, parse_retry_after
from exporter.config import Account, Secret
from exporter.simulator import Fault, Simulator, generate_keypair

PUBLIC, PRIVATE = generate_keypair(seed=7)
ACCOUNT = Account(name="main", public_key=PUBLIC, private_key=Secret(PRIVATE))


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_account(PUBLIC, PRIVATE)
        yield simulator


@pytest.fixture
def client(sim: Simulator) -> Client:
    return Client(sim.url, timeout=2.0)


def failure(call) -> ApiError:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def test_balances_and_ticker(client: Client) -> None:
    balances = client.balances(ACCOUNT)
    assert {b.asset for b in balances} >= {"TRY", "BTC", "USDT"}
    assert all(b.balance == b.free + b.locked for b in balances)
    assert any(t.pair == "BTCTRY" for t in client.ticker())


def test_user_agent_names_the_exporter_and_version(client: Client) -> None:
    assert client.session.headers["User-Agent"].startswith(f"btcturk-exporter/{__version__}")


def test_comma_decimals_parse_exactly(sim: Simulator, client: Client) -> None:
    dots = {b.asset: b.balance for b in client.balances(ACCOUNT)}
    sim.comma_decimals = True
    commas = {b.asset: b.balance for b in client.balances(ACCOUNT)}
    assert commas == dots


def test_request_hook_sees_every_exchange(sim: Simulator, client: Client) -> None:
    seen: list[tuple[str, str]] = []
    client.balances(ACCOUNT, lambda e, c: seen.append((e, c)))
    sim.inject(Fault("status", status=503), endpoint=BALANCES, times=1)
    failure(lambda: client.balances(ACCOUNT, lambda e, c: seen.append((e, c))))
    assert seen == [(BALANCES, "200"), (BALANCES, "503")]


@pytest.mark.parametrize("kind", ["auth", "auth_json"])
def test_401_with_empty_or_json_body_is_auth(sim: Simulator, client: Client, kind: str) -> None:
    sim.inject(Fault(kind), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.status) == ("auth", 401)
    assert str(error).startswith(f"GET {BALANCES}: HTTP 401 (auth)")
    assert not error.transient


def test_wrong_key_is_auth() -> None:
    with Simulator() as simulator:
        simulator.add_account(PUBLIC, generate_keypair(seed=8)[1])
        error = failure(lambda: Client(simulator.url, 2.0).balances(ACCOUNT))
    assert error.reason == "auth"


def test_403_html_is_forbidden(sim: Simulator, client: Client) -> None:
    html = b"<html><body>Access denied</body></html>"
    sim.inject(
        Fault("status", status=403, body=html, headers={"Content-Type": "text/html"}), endpoint=BALANCES
    )
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.status) == ("forbidden", 403)
    assert "non-JSON body (text/html)" in str(error)


def test_429_carries_retry_after(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("rate_limit", retry_after=17), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.status, error.retry_after) == ("rate_limited", 429, 17)
    assert error.transient


def test_429_without_retry_after(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("rate_limit", retry_after=None), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.retry_after) == ("rate_limited", None)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_server_error(sim: Simulator, client: Client, status: int) -> None:
    sim.inject(Fault("status", status=status, body=b"oops"), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.status) == ("server_error", status)
    assert error.transient


def test_slow_answer_is_timeout(sim: Simulator) -> None:
    sim.inject(Fault("latency", seconds=2.0), endpoint=BALANCES, times=1)
    error = failure(lambda: Client(sim.url, timeout=0.3).balances(ACCOUNT))
    assert (error.reason, error.status) == ("timeout", None)
    assert "no response" in str(error)


def test_refused_connection_is_connection() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    error = failure(lambda: Client(f"http://127.0.0.1:{port}", 1.0).balances(ACCOUNT))
    assert error.reason == "connection"


def test_reset_mid_body_is_connection_or_bad_response(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("reset"), endpoint=BALANCES)
    assert failure(lambda: client.balances(ACCOUNT)).reason in {"connection", "bad_response"}


@pytest.mark.parametrize(
    "body",
    [
        b"<html>maintenance</html>",
        b'{"data": [{"asset": "BTC", "bal',
        b'{"data": null, "success": false, "message": "FAILED_X", "code": 1}',
        b'{"data": [{"asset": "BTC"}], "success": true, "code": 0}',
        b'{"data": [{"asset": "BTC", "balance": "x", "free": "1", "locked": "0"}], "success": true}',
        b'{"data": [{"asset": "BTC", "balance": "-1", "free": "1", "locked": "0"}], "success": true}',
        b"",
    ],
)
def test_malformed_200_is_bad_response(sim: Simulator, client: Client, body: bytes) -> None:
    sim.inject(Fault("body", body=body), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.status) == ("bad_response", 200)


def test_clock_skew_is_measured_and_corrected(sim: Simulator, client: Client) -> None:
    sim.clock_skew = 30.0
    assert failure(lambda: client.balances(ACCOUNT)).reason == "auth"
    offset = client.sync_clock()
    assert offset == pytest.approx(30.0, abs=0.5)
    assert client.balances(ACCOUNT)


def test_server_time_failure_is_reported(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("body", body=b"{}"), endpoint=SERVER_TIME)
    assert failure(client.sync_clock).reason == "bad_response"
    sim.clear_faults()
    sim.inject(Fault("status", status=502), endpoint=TICKER)
    assert failure(client.ticker).reason == "server_error"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("17", 17.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("soon", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=1_800_000_000.0) == expected
