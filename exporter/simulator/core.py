"""The Simulator: lifecycle and the steering methods tests call; the work is done by its parts."""

from __future__ import annotations

import dataclasses
import functools
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from exporter.signing import decode_private_key
from exporter.simulator import activity, routes
from exporter.simulator.accounts import Account, SimAsset, copy_assets, demo_assets
from exporter.simulator.activity import Ids
from exporter.simulator.amounts import to_decimal
from exporter.simulator.faults import Fault, FaultBook
from exporter.simulator.ledger import History
from exporter.simulator.market import Market
from exporter.simulator.paths import BALANCES_PATH, LIMITS, TICKER_PATH, normalize_path
from exporter.simulator.quirks import Quirks
from exporter.simulator.ratelimit import RateLimiter
from exporter.simulator.requestlog import RequestLog
from exporter.simulator.server import Listener


class Simulator:
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
        self.host, self.port, self.seed, self.clock = host, port, seed, clock
        self.comma_decimals = False
        self.clock_skew = 0.0
        self.legacy_401 = False
        self.log_requests = False
        self.url = ""
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.accounts: dict[str, Account] = {}
        self.market = Market(self.rng, market, btc_quoted)
        self.quirks = Quirks(seed)
        self.ids = Ids()
        self.faults = FaultBook()
        budgets = {**LIMITS, BALANCES_PATH: balance_limit, TICKER_PATH: ticker_limit, **(limits or {})}
        self.limiter = RateLimiter(budgets, window)
        self.log = RequestLog()
        self.stopping = threading.Event()
        self._listener = Listener()
        self._lifecycle = threading.Lock()

    def now(self) -> float:
        """The simulator's clock in seconds, skew included."""
        return self.clock() + self.clock_skew

    def now_ms(self) -> int:
        """The simulator's clock in milliseconds, skew included."""
        return round(self.now() * 1000)

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

    # -- accounts and prices --------------------------------------------------------------------------

    def add_account(
        self,
        public_key: str,
        private_key_b64: str,
        assets: Iterable[SimAsset] | None = None,
        *,
        can_read_balances: bool = True,
    ) -> None:
        """Register an API key pair; assets None gives the demo account for this simulator's seed."""
        key = decode_private_key(private_key_b64)
        chosen = demo_assets(self.seed) if assets is None else assets
        with self.lock:
            self.accounts[public_key] = Account(key, copy_assets(chosen), can_read_balances)

    def set_assets(self, public_key: str, assets: Iterable[SimAsset]) -> None:
        """Replace every asset of an account."""
        with self.lock:
            self.accounts[public_key].assets = copy_assets(assets)

    def remove_asset(self, public_key: str, asset: str) -> None:
        """Make an asset vanish from the account's balances response."""
        with self.lock:
            del self.accounts[public_key].assets[asset]

    def set_permission(self, public_key: str, can_read_balances: bool) -> None:
        """Grant or revoke the key's "Total Funds" permission."""
        with self.lock:
            self.accounts[public_key].can_read_balances = can_read_balances

    def assets(self, public_key: str) -> list[SimAsset]:
        """A copy of the account's current assets."""
        with self.lock:
            return [dataclasses.replace(a) for a in self.accounts[public_key].assets.values()]

    def set_price(
        self, pair: str, last: Decimal, bid: Decimal | None = None, ask: Decimal | None = None
    ) -> None:
        """Set a pair's prices (adding the pair if new); bid/ask default to a small spread around last."""
        with self.lock:
            self.market.set_price(pair, to_decimal(last), bid, ask)

    def price(self, pair: str) -> Decimal:
        """The pair's current last price."""
        with self.lock:
            return self.market.price(pair)

    def drift(self, fraction: float = 0.002) -> None:
        """One step of time: prices move (mean-reverting); accounts may trade, deposit or withdraw."""
        with self.lock:
            self.market.drift(fraction)
            now_ms = self.now_ms()
            for account in self.accounts.values():
                activity.step(account, self.market, self.rng, now_ms, self.ids)

    def history(self, public_key: str) -> History:
        """The account's recorded trades and transfers, and its pending withdrawals (live objects)."""
        with self.lock:
            return self.accounts[public_key].history

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
