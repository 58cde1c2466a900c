"""Simulated accounts: their API keys, their assets, and the signed-request check."""

from __future__ import annotations

import base64
import dataclasses
import hmac
import random
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import Message

from exporter.api.signing import sign
from exporter.simulator.amounts import ZERO, quantize16, random_amount, to_decimal
from exporter.simulator.ledger import History
from exporter.simulator.market import CATALOG

STAMP_TOLERANCE_MS = 5000
_STAMP = re.compile(r"[0-9]{1,17}")

# The request's headers: an email.message.Message from http.server, or a plain mapping in tests.
Headers = Mapping[str, str] | Message


@dataclass
class SimAsset:
    """One asset of a simulated account: balance = free + locked.

    `locked` holds open orders and pending withdrawals; the latter also show in `request_fund`, so the
    balances endpoint reports orderFund = locked - requestFund.
    """

    asset: str
    name: str
    free: Decimal
    locked: Decimal
    request_fund: Decimal = ZERO
    precision: int = 8

    def __post_init__(self) -> None:
        self.free = to_decimal(self.free)
        self.locked = to_decimal(self.locked)
        self.request_fund = to_decimal(self.request_fund)

    @property
    def balance(self) -> Decimal:
        """Total holding: free plus locked."""
        return self.free + self.locked


# asset -> (lowest total, highest total, largest share locked in open orders)
_DEMO_HOLDINGS: dict[str, tuple[float, float, float]] = {
    "TRY": (15_000, 35_000, 0.2),
    "USDT": (300, 2_500, 0.1),
    "BTC": (0.02, 0.6, 0.3),
    "ETH": (0.3, 6, 0.2),
    "XRP": (150, 3_000, 0.0),
    "AVAX": (4, 60, 0.1),
    "OLDTOKEN": (1_000, 60_000, 0.0),
}


def demo_assets(seed: int = 0) -> list[SimAsset]:
    """A realistic account: a few 16-fraction-digit holdings and every other listed asset at zero."""
    rng = random.Random(seed)
    assets: list[SimAsset] = []
    for listing in CATALOG:
        holding = _DEMO_HOLDINGS.get(listing.symbol)
        if holding is None:
            assets.append(SimAsset(listing.symbol, listing.name, ZERO, ZERO, precision=listing.precision))
            continue
        low, high, locked_share = holding
        total = random_amount(rng, low, high)
        locked = quantize16(total * to_decimal(rng.uniform(0.0, locked_share)))
        free = total - locked
        assets.append(SimAsset(listing.symbol, listing.name, free, locked, precision=listing.precision))
    return assets


def generate_keypair(seed: int | None = None) -> tuple[str, str]:
    """Return a throwaway (public_key, private_key_b64); deterministic when seeded."""
    rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()
    public_key = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    private_key = base64.b64encode(rng.getrandbits(256).to_bytes(32, "big")).decode("ascii")
    return public_key, private_key


def copy_assets(assets: Iterable[SimAsset]) -> dict[str, SimAsset]:
    """Copies keyed by asset, so the simulator never mutates objects the caller still holds."""
    return {a.asset: dataclasses.replace(a) for a in assets}


@dataclass
class Account:
    """One API key pair, what its account holds, and the history that got it there."""

    private_key: bytes
    assets: dict[str, SimAsset]
    can_read_balances: bool
    can_read_activity: bool = True
    history: History = field(default_factory=History)


def authenticate(accounts: Mapping[str, Account], headers: Headers, now_ms: int) -> Account | None:
    """The account a request is correctly signed for (whatever its permissions), or None."""
    public_key = headers.get("X-PCK") or ""
    stamp_text = (headers.get("X-Stamp") or "").strip()
    signature = (headers.get("X-Signature") or "").strip()
    if not public_key or not signature or not _STAMP.fullmatch(stamp_text):
        return None
    account = accounts.get(public_key)
    if account is None:
        return None
    stamp = int(stamp_text)
    if abs(stamp - now_ms) > STAMP_TOLERANCE_MS:
        return None
    expected = sign(public_key, account.private_key, stamp).encode("ascii")
    if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        return None
    return account
