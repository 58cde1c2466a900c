"""One activity request: the sync's planned share of the budget first, then the shared gate and retries.

The activity sync plans to use only `rate_limit_share` of each activity budget (first attempts wait for
that share), so its retries, and the balances poller, keep headroom within the per-IP limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from exporter.api import budget, retries
from exporter.api.errors import ApiError
from exporter.api.ratelimit import Gate, Gates
from exporter.api.records import ENDPOINTS
from exporter.api.transactions import KLINES
from exporter.config.activity_settings import ActivitySettings
from exporter.loops import Loops

# Called once per HTTP exchange with (account or "", endpoint, code), like the poller's request hook.
RequestCounter = Callable[[str, str, str], None]

# The budgets whose first attempts wait for the planned share (the graph-api's two paths share one).
PLANNED = (*ENDPOINTS.values(), KLINES)


def _planned(
    path: str, share: float, monotonic: Callable[[], float], budgets: Sequence[budget.Budget]
) -> Gate:
    """A gate holding `share` of the path's per-IP budget."""
    full = next(b for b in budgets if path in b.paths)
    return Gate(budget.Budget(full.name, budget.planned_calls(full.limit, share), full.paths), monotonic)


class Calls:
    """Makes the sync's requests within its planned share, the shared gates and a deadline."""

    def __init__(
        self,
        settings: ActivitySettings,
        gates: Gates,
        loops: Loops,
        *,
        attempt_time: float,
        on_request: RequestCounter | None,
        monotonic: Callable[[], float],
        budgets: Sequence[budget.Budget],
    ) -> None:
        self.settings = settings
        self.gates = gates
        self.on_request = on_request
        self._loops = loops
        self._monotonic = monotonic
        share = settings.rate_limit_share
        self._plan = {path: _planned(path, share, monotonic, budgets) for path in PLANNED}
        self._policy = retries.Policy(attempt_time, backoff_max=30.0)
        self.attempt_time = attempt_time

    def call(
        self,
        path: str,
        who: str,
        attempt: Callable[[float], retries.T],
        plan_path: str | None,
        within: float | None = None,
    ) -> retries.T:
        """Run `attempt` within `within` seconds (default the request deadline); `plan_path` names the
        planned share it waits for."""
        deadline = self._monotonic() + (self.settings.request_deadline if within is None else within)
        if plan_path is not None and self._plan[plan_path].acquire(deadline, self._loops.sleep) is not None:
            raise ApiError("rate_limited", path, detail="planned share of the budget used up")
        return retries.call(
            attempt,
            gate=self.gates.for_path(path),
            endpoint=path,
            who=who,
            deadline=deadline,
            policy=self._policy,
            clock=self._monotonic,
            stop=self._loops.stop_event,
        )

    def hook(self, account: str) -> Callable[[str, str], None] | None:
        """The per-exchange request counter for `account` ("" for market and prices), if any."""
        counter = self.on_request
        if counter is None:
            return None
        return lambda endpoint, code: counter(account, endpoint, code)
