"""What a simulated exchange holds (market, accounts, history) and the methods that steer it."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from exporter.api.signing import decode_private_key
from exporter.simulator import activity, backfill
from exporter.simulator.accounts import Account, SimAsset, copy_assets, demo_assets
from exporter.simulator.activity import Ids
from exporter.simulator.amounts import ZERO, to_decimal
from exporter.simulator.ledger import History
from exporter.simulator.market import Market
from exporter.simulator.paths import normalize_path
from exporter.simulator.pricepath import PricePath
from exporter.simulator.quirks import Quirks
from exporter.simulator.transactions import DEFAULT_CAP, Served


class SimulatorState:
    """The exchange's state; every method takes the lock, so tests may steer it while it serves."""

    def __init__(
        self,
        seed: int,
        clock: Callable[[], float] = time.time,
        market: str = "default",
        btc_quoted: bool = False,
    ) -> None:
        self.seed, self.clock = seed, clock
        self.comma_decimals = False
        self.clock_skew = 0.0
        self.legacy_401 = False
        # Items per transaction answer; more matching items than this and the oldest are dropped.
        self.activity_cap = DEFAULT_CAP
        # TEST-ONLY hostile transaction answers, by endpoint path (serve_items).
        self.served: dict[str, Served] = {}
        # A fault: transaction answers hold only the newer half of what they should (no sign of it).
        self.activity_halved = False
        # A fault: transaction answers are full pages whatever the window (transactions.FULL_MODES).
        self.activity_full: str | None = None
        # currency -> (withdrawal disabled, deposit disabled); None leaves the field out of exchangeinfo.
        self.operation_blocks: dict[str, tuple[bool, bool]] | None = {}
        # exchangeinfo is served from a cache this many seconds old at most, as the live CDN does.
        self.exchange_info_max_age = 30.0
        self.exchange_info_cache: tuple[float, dict[str, object]] | None = None
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.accounts: dict[str, Account] = {}
        self.market = Market(self.rng, market, btc_quoted)
        symbols = {s for p in self.market.pairs.values() for s in (p.numerator, p.denominator)}
        base = {s: float(price) for s in symbols if (price := self.market.try_price(s)) is not None}
        self.prices = PricePath(seed, self.now(), base)
        self.quirks = Quirks(seed)
        self.ids = Ids()

    def now(self) -> float:
        """The simulator's clock in seconds, skew included."""
        return self.clock() + self.clock_skew

    def now_ms(self) -> int:
        """The simulator's clock in milliseconds, skew included."""
        return round(self.now() * 1000)

    def add_account(
        self,
        public_key: str,
        private_key_b64: str,
        assets: Iterable[SimAsset] | None = None,
        *,
        can_read_balances: bool = True,
        can_read_activity: bool = True,
        history_days: int = 0,
        seed: int | None = None,
    ) -> None:
        """Register an API key pair; assets None gives the demo account for `seed` (default: the
        simulator's). With history_days the account opens empty that long ago and its balances are
        built by seeded history (trades, deposits, withdrawals) up to now."""
        key = decode_private_key(private_key_b64)
        seed = self.seed if seed is None else seed
        chosen = copy_assets(demo_assets(seed) if assets is None else assets)
        account = Account(key, chosen, can_read_balances, can_read_activity)
        with self.lock:
            if history_days > 0:
                for asset in chosen.values():
                    asset.free = asset.locked = asset.request_fund = ZERO
                rng = random.Random(f"history-{seed}")
                backfill.pregenerate(
                    account, self.market, self.prices, rng, self.now_ms(), history_days, self.ids
                )
            self.accounts[public_key] = account

    def serve_items(
        self,
        path: str,
        items: Iterable[Mapping[str, Any]] = (),
        hidden: Iterable[int] = (),
        *,
        reverse: bool = False,
    ) -> None:
        """Make a transaction endpoint hostile: raw `items` in every answer (an item with a recorded id
        replaces that record), the recorded ids in `hidden` left out, with `reverse` oldest first;
        replaces the endpoint's last call."""
        with self.lock:
            self.served[normalize_path(path)] = Served([dict(i) for i in items], set(hidden), reverse)

    def clear_items(self) -> None:
        """Serve every transaction endpoint as recorded again."""
        with self.lock:
            self.served.clear()

    def set_assets(self, public_key: str, assets: Iterable[SimAsset]) -> None:
        """Replace every asset of an account (outside its history: a test's fiat)."""
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

    def set_activity_permission(self, public_key: str, can_read_activity: bool) -> None:
        """Grant or revoke the key's permission to read transactions (401 there, balances unaffected)."""
        with self.lock:
            self.accounts[public_key].can_read_activity = can_read_activity

    def assets(self, public_key: str) -> list[SimAsset]:
        """A copy of the account's current assets."""
        with self.lock:
            return [dataclasses.replace(a) for a in self.accounts[public_key].assets.values()]

    def history(self, public_key: str) -> History:
        """The account's recorded trades and transfers, and its pending withdrawals (live objects)."""
        with self.lock:
            return self.accounts[public_key].history

    def block_operations(self, currency: str, *, withdrawal: bool = False, deposit: bool = False) -> None:
        """Disable (or enable again) a currency's withdrawals and deposits in exchangeinfo."""
        with self.lock:
            if self.operation_blocks is None:
                self.operation_blocks = {}
            self.operation_blocks[currency] = (withdrawal, deposit)

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
            now = self.now()
            for symbol in self.prices.base:
                price = self.market.try_price(symbol)
                if price is not None:
                    self.prices.record(symbol, now, float(price))
            for account in self.accounts.values():
                activity.step(account, self.market, self.rng, round(now * 1000), self.ids)
