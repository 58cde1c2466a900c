"""One API call with bounded retries on tenacity: a total deadline, capped backoff, and the endpoint's gate.

tenacity runs the attempts; this module only says how for this API: which failures are worth another
attempt (transient ApiErrors), how long to wait (jittered exponential backoff, but never less than the
endpoint's Retry-After pause), when to give up (no attempt starts that could outlive the deadline; a
stop of the process ends the wait at once and is not a failure) and what each retry logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import tenacity
from tenacity.stop import stop_base

from exporter.api.errors import ApiError
from exporter.api.ratelimit import MAX_RETRY_AFTER, Gate, capped_pause
from exporter.loops import Stopped, sleep_unless_stopped

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    """How one call retries."""

    # Time an attempt may take (config.timeout): no attempt starts unless that much time is left before
    # the poll's deadline, and the client also cuts each attempt off at that deadline.
    attempt_time: float
    backoff_max: float
    backoff_base: float = 0.5


class _NoToken(Exception):
    """The gate gave no token before the last moment an attempt could start; ends with `error`."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error)
        self.error = error


class stop_before(stop_base):
    """Stop unless the next attempt would start, after its wait, by `latest` (a `clock` time)."""

    def __init__(self, latest: float, clock: Callable[[], float]) -> None:
        self.latest = latest
        self.clock = clock

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        """Whether the next attempt would start too late."""
        return self.clock() + retry_state.upcoming_sleep > self.latest


def _backoff(policy: Policy) -> tenacity.wait.wait_base:
    # Equal jitter: half the exponential step for sure, the other half at random.
    half = {"multiplier": policy.backoff_base / 2, "max": policy.backoff_max / 2}
    return tenacity.wait_exponential(**half) + tenacity.wait_random_exponential(**half)


def backoff(failures: int, policy: Policy) -> float:
    """The wait after `failures` failures in a row, by the same jittered backoff as between attempts.

    For loops that retry a whole turn (a backfill's next window after a failed one), not one request.
    """
    state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    state.attempt_number = max(1, failures)
    return _backoff(policy)(state)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.transient


def call(
    attempt: Callable[[float], T],
    *,
    gate: Gate,
    endpoint: str,
    who: str,
    deadline: float,
    policy: Policy,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `attempt(seconds_left)`, retrying transient failures until `deadline` (a `clock` time).

    Every attempt first takes a token from the endpoint's gate, waiting (at most until the last moment
    an attempt may start) for the limiter or a Retry-After pause; a poll that merely waited is not a
    failure until then. A Retry-After from the API pauses this endpoint only. Setting `stop` ends any
    wait at once with Stopped.
    """
    stop = stop or threading.Event()
    latest = deadline - policy.attempt_time
    last: list[ApiError] = []

    def sleep(seconds: float) -> None:
        sleep_unless_stopped(stop, seconds)

    def once() -> T:
        why = gate.acquire(latest, sleep)
        if why is not None:
            detail = "endpoint paused by a 429" if why == "paused" else "client-side rate limit"
            no_send = ApiError(
                "rate_limited", endpoint, detail=f"{detail}, no request sent before the deadline"
            )
            raise _NoToken(last[-1] if last else no_send)
        try:
            return attempt(deadline - clock())
        except ApiError as exc:
            last.append(exc)
            if exc.reason == "rate_limited" or exc.retry_after is not None:
                if exc.retry_after is not None and exc.retry_after > MAX_RETRY_AFTER:
                    capped = (exc.retry_after, endpoint, MAX_RETRY_AFTER)
                    log.warning("Retry-After of %.0fs from %s capped to %.0fs", *capped)
                gate.pause(capped_pause(exc.retry_after))
            raise

    backoff = _backoff(policy)

    def wait(state: tenacity.RetryCallState) -> float:
        return max(backoff(state), gate.paused())

    def give_up(state: tenacity.RetryCallState) -> NoReturn:
        if stop.is_set():
            raise Stopped
        # Only transient ApiErrors are retried, so the last one is the failure that ran out of time.
        raise last[-1]

    def log_retry(state: tenacity.RetryCallState) -> None:
        error = last[-1]
        log.info(
            "%s: retrying %s in %.1fs after %s (%s)", who, endpoint, state.upcoming_sleep, error.reason, error
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_transient),
        wait=wait,
        stop=tenacity.stop_when_event_set(stop) | stop_before(latest, clock),
        sleep=sleep,
        before_sleep=log_retry,
        retry_error_callback=give_up,
    )
    try:
        return retrying(once)
    except _NoToken as exc:
        raise exc.error from None
