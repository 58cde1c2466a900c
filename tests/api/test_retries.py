"""The retry engine (tenacity, configured for this API): what is retried, how long it waits, when it stops."""

import threading
import time

import pytest
from support import wait_for

from exporter.api.budget import Budget
from exporter.api.errors import ApiError
from exporter.api.ratelimit import Gate
from exporter.api.retries import Policy, call
from exporter.loops import Stopped

ENDPOINT = "/api/v1/users/balances"
POLICY = Policy(attempt_time=0.2, backoff_max=0.2, backoff_base=0.05)


class Attempts:
    """An attempt that fails with the given errors in turn, then answers "ok"; records when it ran."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.started: list[float] = []

    def __call__(self, left: float) -> str:
        self.started.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def gate(limit: int = 100) -> Gate:
    return Gate(Budget("x", limit, (ENDPOINT,)))


def run(
    attempt: Attempts, seconds: float, the_gate: Gate | None = None, stop: threading.Event | None = None
) -> str:
    deadline = time.monotonic() + seconds
    return call(
        attempt,
        gate=the_gate or gate(),
        endpoint=ENDPOINT,
        who="account main",
        deadline=deadline,
        policy=POLICY,
        stop=stop,
    )


def test_transient_failures_are_retried_until_an_answer() -> None:
    attempt = Attempts(ApiError("server_error", ENDPOINT, 500), ApiError("timeout", ENDPOINT))
    assert run(attempt, 5.0) == "ok"
    assert len(attempt.started) == 3


@pytest.mark.parametrize("error", [ApiError("auth", ENDPOINT, 401), KeyError("a bug")])
def test_other_failures_are_not_retried(error: BaseException) -> None:
    attempt = Attempts(error)
    with pytest.raises(type(error)):
        run(attempt, 5.0)
    assert len(attempt.started) == 1


def test_the_wait_honours_the_retry_after_pause() -> None:
    the_gate = gate()
    attempt = Attempts(ApiError("rate_limited", ENDPOINT, 429, retry_after=0.5))
    assert run(attempt, 5.0, the_gate) == "ok"
    first, second = attempt.started
    # Backoff alone would wait at most backoff_max (0.2 s): the pause the answer asked for wins.
    assert second - first >= 0.5


def test_no_attempt_starts_that_could_outlive_the_deadline() -> None:
    attempt = Attempts(*[ApiError("server_error", ENDPOINT, 503)] * 1000)
    start = time.monotonic()
    with pytest.raises(ApiError) as raised:
        run(attempt, 1.0)
    assert raised.value.reason == "server_error"
    assert len(attempt.started) >= 2
    assert max(attempt.started) <= start + 1.0 - POLICY.attempt_time


def test_an_endpoint_without_a_token_fails_as_rate_limited_without_sending() -> None:
    the_gate = gate()
    the_gate.pause(30)
    attempt = Attempts()
    with pytest.raises(ApiError) as raised:
        run(attempt, 0.5, the_gate)
    assert raised.value.reason == "rate_limited"
    assert "no request sent" in str(raised.value)
    assert attempt.started == []


def test_a_failure_then_no_token_ends_with_the_failure() -> None:
    # The 429's pause outlasts the deadline: the call ends with the 429, not with the gate's refusal.
    attempt = Attempts(ApiError("rate_limited", ENDPOINT, 429, retry_after=30))
    with pytest.raises(ApiError) as raised:
        run(attempt, 1.0)
    assert raised.value.status == 429
    assert len(attempt.started) == 1


def test_a_stop_interrupts_the_wait_and_is_no_failure() -> None:
    stop = threading.Event()
    attempt = Attempts(*[ApiError("rate_limited", ENDPOINT, 429, retry_after=30)] * 10)
    outcome: list[BaseException] = []

    def worker() -> None:
        try:
            run(attempt, 100.0, stop=stop)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=worker)
    asked = time.monotonic()
    thread.start()
    wait_for(lambda: attempt.started, what="the first attempt")
    stop.set()
    # The call was sleeping out a 30 s Retry-After pause: a stop must end it long before that.
    thread.join(15)
    assert not thread.is_alive()
    assert time.monotonic() - asked < 15
    assert len(outcome) == 1 and isinstance(outcome[0], Stopped)
    assert len(attempt.started) == 1


def test_a_stop_during_an_attempt_starts_no_other() -> None:
    stop = threading.Event()

    class Stopping(Attempts):
        def __call__(self, left: float) -> str:
            stop.set()
            return super().__call__(left)

    attempt = Stopping(ApiError("server_error", ENDPOINT, 500))
    with pytest.raises(Stopped):
        run(attempt, 5.0, stop=stop)
    assert len(attempt.started) == 1


def test_each_retry_is_logged_with_who_what_and_why(caplog: pytest.LogCaptureFixture) -> None:
    attempt = Attempts(ApiError("server_error", ENDPOINT, 503))
    with caplog.at_level("INFO", logger="exporter.api.retries"):
        run(attempt, 5.0)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"account main: retrying {ENDPOINT} in ")
    assert "server_error" in line and "HTTP 503" in line
