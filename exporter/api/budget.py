"""The API's per-IP rate limits and how much of each the configured polling plans to use.

The rule, stated once: N accounts polled every `poll_interval` seconds cost N x 60 / poll_interval
balance calls a minute, and that must stay within `rate_limit_share` of the endpoint's per-IP limit.
The rest of the limit is headroom for retries, clock jitter and other clients behind the same IP.
Past that, the answer is more exporter instances, each on its own egress IP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from exporter.durations import format_duration

WINDOW = 60.0  # seconds; every BTCTurk limit is counted per fixed 60 s window
DEFAULT_SHARE = 0.8


@dataclass(frozen=True)
class Budget:
    """One per-IP rate limit and the request paths that draw on it."""

    name: str
    limit: int  # calls per WINDOW
    paths: tuple[str, ...]


# From btcturk-api-notes.md and btcturk-activity-api.md. exchangeinfo has no documented limit: it is
# treated like the ticker. The two graph-api paths share one table row, so they share one budget here
# (if they are separate upstream, that only costs headroom).
BUDGETS: tuple[Budget, ...] = (
    Budget("balances", 120, ("/api/v1/users/balances",)),
    Budget("ticker", 600, ("/api/v2/ticker",)),
    Budget("exchangeinfo", 600, ("/api/v2/server/exchangeinfo",)),
    Budget("transactions/trade", 120, ("/api/v1/users/transactions/trade",)),
    Budget("transactions/crypto", 90, ("/api/v1/users/transactions/crypto",)),
    Budget("transactions/fiat", 90, ("/api/v1/users/transactions/fiat",)),
    Budget("graph-api", 120, ("/v1/klines/history", "/v1/ohlcs")),
)
BY_NAME = {budget.name: budget for budget in BUDGETS}
BY_PATH = {path: budget for budget in BUDGETS for path in budget.paths}


def planned_calls(limit: int, share: float) -> int:
    """Calls a minute the plan may use: the share of the limit, rounded down to a whole call."""
    # The tiny epsilon keeps 120 x 0.8 at 96 whatever the float rounding of 0.8 does.
    return max(0, math.floor(limit * share + 1e-9))


def calls_per_minute(per_cycle: int, interval: float) -> float:
    """Calls a minute made by `per_cycle` calls every `interval` seconds."""
    return per_cycle * WINDOW / interval


def shortest_interval(per_cycle: int, limit: int, share: float = DEFAULT_SHARE) -> float:
    """The shortest poll interval, in seconds rounded up to the millisecond, that keeps within the plan."""
    planned = planned_calls(limit, share)
    if planned == 0:
        return math.inf
    return math.ceil(per_cycle * WINDOW * 1000 / planned - 1e-6) / 1000


def per_instance(interval: float, limit: int, share: float) -> int:
    """How many calls per cycle (accounts) one instance may make at `interval` within the plan."""
    return math.floor(planned_calls(limit, share) * interval / WINDOW + 1e-9)


def instances_needed(per_cycle: int, interval: float, limit: int, share: float) -> int | None:
    """Instances (each on its own egress IP) needed to spread the load; None when one call is too many."""
    fits = per_instance(interval, limit, share)
    if fits == 0:
        return None
    return math.ceil(per_cycle / fits)


def format_seconds(seconds: float) -> str:
    """A duration the config accepts, exact to the millisecond: 0.625 -> '625ms', 90 -> '1m30s'."""
    return format_duration(round(seconds, 3))


@dataclass(frozen=True)
class Use:
    """The planned use of one budget: `per_cycle` calls every `interval` seconds."""

    budget: Budget
    per_cycle: int
    what: str  # the thing polled, singular: "account", "call"
    interval: float
    share: float

    @property
    def per_minute(self) -> float:
        """Calls a minute this use makes."""
        return calls_per_minute(self.per_cycle, self.interval)

    @property
    def planned(self) -> int:
        """Calls a minute the plan allows."""
        return planned_calls(self.budget.limit, self.share)

    @property
    def fits(self) -> bool:
        """Whether the use stays within the plan."""
        return self.per_cycle * WINDOW <= self.planned * self.interval * (1 + 1e-12)

    def describe(self) -> str:
        """For --check-config: 'balances: 3 accounts every 30s = 6 calls/min of 120 (5%, plan 96)'."""
        things = self.what if self.per_cycle == 1 else self.what + "s"
        percent = _number(100 * self.per_minute / self.budget.limit)
        return (
            f"{self.budget.name}: {self.per_cycle} {things} every {format_seconds(self.interval)} = "
            f"{_number(self.per_minute)} calls/min of {self.budget.limit} ({percent}%, plan {self.planned})"
        )

    def problem(self) -> str | None:
        """Why the use is refused, with the shortest interval and the instances it takes; None if it fits."""
        if self.fits:
            return None
        things = self.what if self.per_cycle == 1 else self.what + "s"
        verb = "needs" if self.per_cycle == 1 else "need"
        shortest = shortest_interval(self.per_cycle, self.budget.limit, self.share)
        text = (
            f"{self.per_cycle} {things} every {format_seconds(self.interval)} {verb} "
            f"{_number(self.per_minute)} {self.budget.name} calls a minute, over the plan of {self.planned} "
            f"(rate_limit_share {self.share:g} of the API's per-IP limit of {self.budget.limit}); "
            f"use a poll_interval of at least {format_seconds(shortest)}"
        )
        instances = instances_needed(self.per_cycle, self.interval, self.budget.limit, self.share)
        if self.what == "account" and instances is not None and instances > 1:
            text += (
                f", or split the accounts over {instances} exporter instances, "
                "each on its own egress IP (README: Many accounts)"
            )
        return text


def plan(accounts: int, interval: float, share: float = DEFAULT_SHARE) -> Sequence[Use]:
    """The planned use of every budget the poller draws on: balances per account, one ticker call."""
    return (
        Use(BY_NAME["balances"], accounts, "account", interval, share),
        Use(BY_NAME["ticker"], 1, "call", interval, share),
    )


def _number(value: float) -> str:
    """One decimal at most: 6 -> '6', 0.33 -> '0.3'."""
    return f"{value:.1f}".rstrip("0").rstrip(".")
