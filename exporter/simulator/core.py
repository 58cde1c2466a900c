"""The Simulator: an HTTP server in front of the exchange's state, with faults and rate limits."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping

from exporter.simulator import routes
from exporter.simulator.faults import Fault, FaultBook
from exporter.simulator.paths import BALANCES_PATH, LIMITS, TICKER_PATH, normalize_path
from exporter.simulator.ratelimit import RateLimiter
from exporter.simulator.requestlog import RequestLog
from exporter.simulator.server import Listener
from exporter.simulator.state import SimulatorState


class Simulator(SimulatorState):
    """An HTTP server that answers like the BTCTurk REST API, with injectable faults and rate limits."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        balance_limit: int = LIMITS[BALANCES_PATH],
        ticker_limit: int = LIMITS[TICKER_PATH],
        limits: Mapping[str, int] | None = None,
        window: float = 60.0,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        market: str = "default",
        btc_quoted: bool = False,
    ) -> None:
        """`limits` overrides the per-path budgets of paths.LIMITS; `market` is "default" or "live"
        (about 380 pairs, as the live exchange lists); `btc_quoted` adds ETHBTC and ZRXBTC."""
        super().__init__(seed, clock, market, btc_quoted)
        self.host, self.port = host, port
        self.log_requests = False
        self.url = ""
        self.faults = FaultBook()
        budgets = {**LIMITS, BALANCES_PATH: balance_limit, TICKER_PATH: ticker_limit, **(limits or {})}
        self.limiter = RateLimiter(budgets, window)
        self.log = RequestLog()
        self.stopping = threading.Event()
        self._listener = Listener()
        self._lifecycle = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind and serve on a daemon thread; a restarted simulator reuses its first port."""
        with self._lifecycle:
            if not self._listener.running:
                self.stopping.clear()
                serve = functools.partial(routes.serve, self)
                self.port = self._listener.start(self.host, self.port, serve, lambda: self.log_requests)
                host = f"[{self.host}]" if ":" in self.host else self.host
                self.url = f"http://{host}:{self.port}"
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and wake any request held by a latency or hang fault."""
        with self._lifecycle:
            self.stopping.set()
            self._listener.stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- faults and request accounting ----------------------------------------------------------------

    def inject(self, fault: Fault, *, endpoint: str | None = None, times: int | None = None) -> None:
        """Arm a fault for one endpoint path (None = all) for `times` requests (None = until clear_faults)."""
        with self.lock:
            self.faults.arm(fault, None if endpoint is None else normalize_path(endpoint), times)

    def clear_faults(self) -> None:
        """Disarm every injected fault."""
        with self.lock:
            self.faults.clear()

    def count(self, path: str, status: int | None = None) -> int:
        """How many requests hit path (optionally only those answered with status; 0 = hang/reset)."""
        return self.log.count(normalize_path(path), status)

    def stats(self) -> dict[str, dict[str, int]]:
        """Request counts as {path: {status: n}}."""
        return self.log.stats()

    def wait_for_requests(self, path: str, n: int, timeout: float = 10.0, status: int | None = None) -> None:
        """Block until count(path, status) >= n, or raise TimeoutError."""
        self.log.wait_for(normalize_path(path), n, timeout, status)
