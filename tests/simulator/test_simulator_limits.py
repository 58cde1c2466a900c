"""The simulator's rate limits and injected faults: no kinder than the live API."""

from __future__ import annotations

import time

import pytest
import requests
from support import (
    TIMEOUT,
    VECTOR_PRIVATE,
    VECTOR_PUBLIC,
    FakeClock,
    assert_bearer_401,
    signed_get,
)

from exporter.simulator import (
    BALANCES_PATH,
    EXCHANGE_INFO_PATH,
    SERVER_TIME_PATH,
    TICKER_PATH,
    Fault,
    Simulator,
)
from exporter.simulator.paths import CRYPTO_PATH, FIAT_PATH, KLINES_PATH, LIMITS, OHLCS_PATH, TRADES_PATH
from exporter.simulator.ratelimit import RateLimiter

# -- rate limits ---------------------------------------------------------------------------------------


def test_balance_limit_blocks_for_a_whole_window(clock: FakeClock) -> None:
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


def test_window_starts_at_the_first_request_not_the_clock_minute(clock: FakeClock) -> None:
    with Simulator(clock=clock, balance_limit=2) as sim:
        sim.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE)
        clock.now += 50  # ten seconds before the clock minute
        assert [signed_get(sim).status_code for _ in range(2)] == [200, 200]
        clock.now += 9
        assert signed_get(sim).headers["Retry-After"] == "60"  # blocked 60 s from here, not until :00
        clock.now += 2  # past the clock minute: a minute-aligned window would have reset
        blocked = signed_get(sim)
        assert blocked.status_code == 429 and blocked.headers["Retry-After"] == "58"
        clock.now += 58
        assert signed_get(sim).status_code == 200


def test_a_window_that_runs_out_unspent_starts_afresh(clock: FakeClock) -> None:
    with Simulator(clock=clock, balance_limit=2) as sim:
        sim.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE)
        assert signed_get(sim).status_code == 200
        clock.now += 59.9
        assert signed_get(sim).status_code == 200
        clock.now += 0.1  # the first window is over: two more fit
        assert [signed_get(sim).status_code for _ in range(3)] == [200, 200, 429]


def test_rate_limit_block_follows_skewed_clock(clock: FakeClock) -> None:
    with Simulator(clock=clock, balance_limit=1) as sim:
        sim.clock_skew = 15.0
        sim.add_account(VECTOR_PUBLIC, VECTOR_PRIVATE)
        assert signed_get(sim, 15_000).status_code == 200
        assert signed_get(sim, 15_000).headers["Retry-After"] == "60"
        sim.clock_skew = 75.0
        assert signed_get(sim, 75_000).status_code == 200


def test_limits_are_per_client_ip() -> None:
    limiter = RateLimiter({BALANCES_PATH: 1}, 60.0)
    assert limiter.consume("127.0.0.1", BALANCES_PATH, 0.0) is None
    assert limiter.consume("127.0.0.1", BALANCES_PATH, 1.0) == 60
    assert limiter.consume("127.0.0.2", BALANCES_PATH, 1.0) is None
    assert limiter.consume("127.0.0.1", SERVER_TIME_PATH, 1.0) is None  # no limit listed: never refused


def test_default_limits_follow_the_reference_tables() -> None:
    assert LIMITS[BALANCES_PATH] == LIMITS[TRADES_PATH] == 120
    assert LIMITS[CRYPTO_PATH] == LIMITS[FIAT_PATH] == 90
    assert LIMITS[TICKER_PATH] == 600
    assert LIMITS[KLINES_PATH] == LIMITS[OHLCS_PATH] == 120
    assert Simulator().limiter.limits == LIMITS


def test_the_real_balance_budget_is_120_a_minute(clock: FakeClock) -> None:
    limiter = Simulator(clock=clock).limiter
    answers = [limiter.consume("127.0.0.1", BALANCES_PATH, clock.now + i * 0.4) for i in range(121)]
    assert answers[:120] == [None] * 120 and answers[120] == 60


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
