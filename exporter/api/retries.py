"""One API call with bounded retries: a total deadline, capped backoff, and the endpoint's gate."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from exporter.api.client import ApiError
from exporter.api.ratelimit import MAX_RETRY_AFTER, Gate, Sleep, capped_pause

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


def backoff(failures: int, base: float, cap: float) -> float:
    """Exponential backoff without jitter: base, 2 x base, 4 x base, ... capped at `cap`."""
    return min(cap, base * 2.0 ** min(failures - 1, 60))


def call(
    attempt: Callable[[float], T],
    *,
    gate: Gate,
    endpoint: str,
    who: str,
    deadline: float,
    policy: Policy,
    clock: Callable[[], float],
    sleep: Sleep,
    rng: random.Random,
) -> T:
    """Run `attempt(seconds_left)`, retrying transient failures until `deadline` (a `clock` time).

    Every attempt first takes a token from the endpoint's gate, waiting (at most until the last moment
    an attempt may start) for the limiter or a Retry-After pause; a poll that merely waited is not a
    failure until then. A Retry-After from the API pauses this endpoint only.
    """
    latest = deadline - policy.attempt_time
    failures = 0
    last: ApiError | None = None
    while True:
        why = gate.acquire(latest, sleep)
        if why is not None:
            if last is not None:
                raise last
            detail = "endpoint paused by a 429" if why == "paused" else "client-side rate limit"
            raise ApiError("rate_limited", endpoint, detail=f"{detail}, no request sent before the deadline")
        try:
            return attempt(deadline - clock())
        except ApiError as exc:
            last = exc
            if exc.reason == "rate_limited" or exc.retry_after is not None:
                if exc.retry_after is not None and exc.retry_after > MAX_RETRY_AFTER:
                    capped = (exc.retry_after, endpoint, MAX_RETRY_AFTER)
                    log.warning("Retry-After of %.0fs from %s capped to %.0fs", *capped)
                gate.pause(capped_pause(exc.retry_after))
            if not exc.transient:
                raise
        failures += 1
        step = backoff(failures, policy.backoff_base, policy.backoff_max)
        delay = max(step / 2 + rng.uniform(0, step / 2), gate.paused())
        if clock() + delay > latest:
            raise last
        log.info("%s: retrying %s in %.1fs after %s (%s)", who, endpoint, delay, last.reason, last)
        sleep(delay)
