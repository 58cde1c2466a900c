"""A stand-in for the BTCTurk REST API, for integration tests, benchmarks and ``btcturk-exporter --demo``."""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import hmac
import json
import math
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_DOWN, Context, Decimal, InvalidOperation
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from exporter.signing import decode_private_key, sign

__all__ = [
    "BALANCES_PATH",
    "EXCHANGE_INFO_PATH",
    "FAULT_KINDS",
    "SERVER_TIME_PATH",
    "TICKER_PATH",
    "Fault",
    "SimAsset",
    "Simulator",
    "demo_assets",
    "format_amount",
    "generate_keypair",
    "main",
]

BALANCES_PATH = "/api/v1/users/balances"
SERVER_TIME_PATH = "/api/v2/server/time"
TICKER_PATH = "/api/v2/ticker"
EXCHANGE_INFO_PATH = "/api/v2/server/exchangeinfo"
_API_PATHS = frozenset({BALANCES_PATH, SERVER_TIME_PATH, TICKER_PATH, EXCHANGE_INFO_PATH})
# Test-only steering endpoints; the real API has nothing under this prefix.
CONTROL_PREFIX = "/_sim"

FAULT_KINDS = frozenset({"latency", "hang", "status", "rate_limit", "reset", "body", "auth", "auth_json"})
STAMP_TOLERANCE_MS = 5000

_JSON = "application/json; charset=utf-8"
_WWW_AUTHENTICATE = 'Bearer error="invalid_token"'
_LEGACY_401 = {"success": True, "message": "Unauthorized - Invalid Nonce", "code": 1037}
_MAX_BODY = 1 << 20
_ZERO = Decimal(0)
_AMOUNT_QUANTUM = Decimal(1).scaleb(-16)
# Wide enough that quantizing a large balance to 16 places never raises InvalidOperation.
_WIDE = Context(prec=80)
_STAMP = re.compile(r"[0-9]{1,17}")
USDT_TRY = Decimal("41.20")


@dataclass
class SimAsset:
    """One asset of a simulated account; balance = free + locked and orderFund = locked."""

    asset: str
    name: str
    free: Decimal
    locked: Decimal
    request_fund: Decimal = _ZERO
    precision: int = 8

    def __post_init__(self) -> None:
        # Accept ints/strs/floats from callers so tests can write SimAsset("BTC", "Bitcoin", 1, 0).
        self.free = _to_decimal(self.free)
        self.locked = _to_decimal(self.locked)
        self.request_fund = _to_decimal(self.request_fund)

    @property
    def balance(self) -> Decimal:
        """Total holding: free plus locked."""
        return self.free + self.locked


@dataclass
class Fault:
    """A misbehaviour to inject; see FAULT_KINDS and the module docs for what each kind does."""

    kind: str
    seconds: float = 0.0
    status: int = 500
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        body: object = self.body  # callers may pass a str despite the annotation
        if isinstance(body, str):
            self.body = body.encode("utf-8")


def _to_decimal(value: Decimal | int | float | str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # repr() keeps the float's shortest form instead of its full binary expansion.
        return Decimal(repr(value))
    return Decimal(value)


def format_amount(value: Decimal, comma: bool = False) -> str:
    """Render an amount the way the balances endpoint does: plain notation, at most 16 fraction digits."""
    text = format(value.quantize(_AMOUNT_QUANTUM, rounding=ROUND_DOWN, context=_WIDE), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("", "-0"):
        text = "0"
    return text.replace(".", ",") if comma else text


# --------------------------------------------------------------------------------------------------------
# Market catalogue


@dataclass(frozen=True)
class _Listing:
    symbol: str
    name: str
    precision: int
    usd: str | None  # reference price; None means the asset has no market at all
    quotes: tuple[str, ...] = ("TRY",)
    fiat: bool = False


_TU = ("TRY", "USDT")

# Chosen so every valuation route a client needs shows up: direct (BTCTRY), inverse (TRY in USDT via
# USDTTRY), two legs through USDT (XRP has only XRPUSDT) or BTC (ZRX has only ZRXBTC), and none (OLDTOKEN).
_CATALOG: tuple[_Listing, ...] = (
    _Listing("TRY", "Türk Lirası", 2, None, (), fiat=True),
    _Listing("USDT", "Tether", 2, "1", ("TRY",)),
    _Listing("BTC", "Bitcoin", 8, "85000", _TU),
    _Listing("ETH", "Ethereum", 8, "3150", ("TRY", "USDT", "BTC")),
    _Listing("XRP", "Ripple", 4, "2.35", ("USDT",)),
    _Listing("AVAX", "Avalanche", 8, "24.3", _TU),
    _Listing("ZRX", "0x Protocol", 8, "0.25", ("BTC",)),
    _Listing("OLDTOKEN", "Old Token", 8, None, ()),
    _Listing("USDC", "USD Coin", 2, "1", _TU),
    _Listing("SOL", "Solana", 8, "180", _TU),
    _Listing("ADA", "Cardano", 6, "0.65", _TU),
    _Listing("DOGE", "Dogecoin", 8, "0.18", _TU),
    _Listing("LTC", "Litecoin", 8, "90", _TU),
    _Listing("LINK", "Chainlink", 8, "15", _TU),
    _Listing("DOT", "Polkadot", 8, "3.5", _TU),
    _Listing("TRX", "TRON", 6, "0.30", _TU),
    _Listing("SHIB", "Shiba Inu", 2, "0.000012", _TU),
    _Listing("UNI", "Uniswap", 8, "7", ("TRY",)),
    _Listing("ATOM", "Cosmos", 6, "4", ("TRY",)),
    _Listing("XLM", "Stellar", 6, "0.30", ("TRY",)),
    _Listing("XTZ", "Tezos", 6, "0.60", ("TRY",)),
    _Listing("DASH", "Dash", 8, "40", ("TRY",)),
    _Listing("BAT", "Basic Attention Token", 8, "0.15", ("TRY",)),
    _Listing("ZIL", "Zilliqa", 8, "0.010", ("TRY",)),
    _Listing("ENJ", "Enjin Coin", 8, "0.07", ("TRY",)),
    _Listing("CHZ", "Chiliz", 8, "0.04", ("TRY",)),
    _Listing("MKR", "Maker", 8, "1500", ("TRY",)),
    _Listing("COMP", "Compound", 8, "40", ("TRY",)),
    _Listing("AAVE", "Aave", 8, "250", ("TRY",)),
    _Listing("GRT", "The Graph", 8, "0.08", ("TRY",)),
    _Listing("FIL", "Filecoin", 8, "2.5", ("TRY",)),
    _Listing("APE", "ApeCoin", 8, "0.50", ("TRY",)),
    _Listing("SAND", "The Sandbox", 8, "0.25", ("TRY",)),
    _Listing("MANA", "Decentraland", 8, "0.28", ("TRY",)),
    _Listing("AXS", "Axie Infinity", 8, "2.5", ("TRY",)),
    _Listing("FET", "Fetch.ai", 8, "0.60", ("TRY",)),
    _Listing("NEAR", "NEAR Protocol", 8, "2.5", ("TRY",)),
    _Listing("ALGO", "Algorand", 6, "0.20", ("TRY",)),
    _Listing("ARB", "Arbitrum", 8, "0.35", ("TRY",)),
    _Listing("OP", "Optimism", 8, "0.60", ("TRY",)),
    _Listing("PEPE", "Pepe", 2, "0.00001", ("TRY",)),
    _Listing("FLOKI", "Floki", 2, "0.00008", ("TRY",)),
    _Listing("GALA", "Gala", 8, "0.015", ("TRY",)),
    _Listing("ANKR", "Ankr", 8, "0.015", ("TRY",)),
    _Listing("HOT", "Holo", 8, "0.001", ("TRY",)),
    _Listing("RENDER", "Render", 8, "3.5", ("TRY",)),
    _Listing("INJ", "Injective", 8, "12", ("TRY",)),
    _Listing("SUI", "Sui", 8, "3", ("TRY",)),
    _Listing("APT", "Aptos", 8, "4.5", ("TRY",)),
)
_LISTINGS = {listing.symbol: listing for listing in _CATALOG}
# Used to split a pair name passed to set_price(); longest first so "USDT" wins over "T...".
_QUOTE_SYMBOLS = ("USDT", "USDC", "TRY", "BTC", "ETH")

# asset -> (lowest total, highest total, largest share locked in open orders)
_DEMO_HOLDINGS: dict[str, tuple[float, float, float]] = {
    "TRY": (15_000, 35_000, 0.2),
    "USDT": (300, 2_500, 0.1),
    "BTC": (0.02, 0.6, 0.3),
    "ETH": (0.3, 6, 0.2),
    "XRP": (150, 3_000, 0.0),
    "AVAX": (4, 60, 0.1),
    "ZRX": (100, 900, 0.0),
    "OLDTOKEN": (1_000, 60_000, 0.0),
}


def _amount(rng: random.Random, low: float, high: float) -> Decimal:
    return Decimal(rng.randrange(int(low * 10**16), int(high * 10**16))).scaleb(-16)


def _quantize16(value: Decimal) -> Decimal:
    return value.quantize(_AMOUNT_QUANTUM, rounding=ROUND_DOWN, context=_WIDE)


def demo_assets(seed: int = 0) -> list[SimAsset]:
    """A realistic account: a few 16-fraction-digit holdings and every other listed asset at zero."""
    rng = random.Random(seed)
    assets: list[SimAsset] = []
    for listing in _CATALOG:
        holding = _DEMO_HOLDINGS.get(listing.symbol)
        if holding is None:
            assets.append(SimAsset(listing.symbol, listing.name, _ZERO, _ZERO, precision=listing.precision))
            continue
        low, high, locked_share = holding
        total = _amount(rng, low, high)
        locked = _quantize16(total * _to_decimal(rng.uniform(0.0, locked_share)))
        free = total - locked
        assets.append(SimAsset(listing.symbol, listing.name, free, locked, precision=listing.precision))
    return assets


def generate_keypair(seed: int | None = None) -> tuple[str, str]:
    """Return a throwaway (public_key, private_key_b64); deterministic when seeded."""
    rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()
    public_key = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    private_key = base64.b64encode(rng.getrandbits(256).to_bytes(32, "big")).decode("ascii")
    return public_key, private_key


@dataclass
class _Pair:
    numerator: str
    denominator: str
    scale: int
    last: Decimal
    bid: Decimal
    ask: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    order: int

    @property
    def name(self) -> str:
        return self.numerator + self.denominator

    @property
    def tick(self) -> Decimal:
        return Decimal(1).scaleb(-self.scale)

    def q(self, value: Decimal) -> Decimal:
        return value.quantize(self.tick, context=_WIDE)


def _scale_for(price: Decimal) -> int:
    # About five significant digits, like the exchange's own tick sizes.
    return min(8, max(0, 4 - price.adjusted())) if price > 0 else 2


def _jitter(rng: random.Random, fraction: float) -> Decimal:
    return 1 + _to_decimal(rng.uniform(-fraction, fraction))


def _spread(last: Decimal, scale: int) -> tuple[Decimal, Decimal]:
    tick = Decimal(1).scaleb(-scale)
    half = max(tick, (last * Decimal("0.0004")).quantize(tick, context=_WIDE))
    return max(tick, last - half), last + half


def _new_pair(
    numerator: str,
    denominator: str,
    last: Decimal,
    order: int,
    rng: random.Random,
    try_price: Decimal | None = None,
) -> _Pair:
    scale = _scale_for(last)
    tick = Decimal(1).scaleb(-scale)
    last = last.quantize(tick, context=_WIDE)
    bid, ask = _spread(last, scale)
    opened = (last * _jitter(rng, 0.04)).quantize(tick, context=_WIDE)
    high = (max(ask, opened) * (1 + _to_decimal(rng.uniform(0, 0.02)))).quantize(tick, context=_WIDE)
    low = (min(bid, opened) * (1 - _to_decimal(rng.uniform(0, 0.02)))).quantize(tick, context=_WIDE)
    # A day's turnover worth 50 thousand to 5 million TRY, expressed in the numerator.
    unit_price = try_price or last
    volume = _amount(rng, 50, 5_000) * 1000 / unit_price if unit_price else _ZERO
    return _Pair(
        numerator,
        denominator,
        scale,
        last,
        bid,
        ask,
        opened,
        high,
        low,
        volume.quantize(Decimal("0.00000001"), context=_WIDE),
        order,
    )


def _build_pairs(rng: random.Random) -> dict[str, _Pair]:
    usdt_try = USDT_TRY * _jitter(rng, 0.005)
    refs: dict[str, Decimal] = {"TRY": Decimal(1)}
    for listing in _CATALOG:
        if listing.usd is None:
            continue
        if listing.symbol == "USDT":
            wobble = Decimal(1)
        elif listing.symbol == "USDC":
            wobble = _jitter(rng, 0.001)
        else:
            wobble = _jitter(rng, 0.02)
        refs[listing.symbol] = Decimal(listing.usd) * usdt_try * wobble
    pairs: dict[str, _Pair] = {}
    for listing in _CATALOG:
        for quote in listing.quotes:
            # Derived from one set of reference prices so that cross rates agree across pairs.
            last = refs[listing.symbol] / refs[quote]
            pair = _new_pair(listing.symbol, quote, last, 1000 + len(pairs), rng, refs[listing.symbol])
            pairs[pair.name] = pair
    return pairs


# --------------------------------------------------------------------------------------------------------
# HTTP plumbing


# The request's headers: an email.message.Message from http.server, or a plain mapping in tests.
Headers = Mapping[str, str] | Message


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Account:
    private_key: bytes
    assets: dict[str, SimAsset]
    can_read_balances: bool


@dataclass
class _ArmedFault:
    fault: Fault
    endpoint: str | None
    remaining: int | None


def _wrapped(data: Any) -> dict[str, Any]:
    return {"data": data, "success": True, "message": None, "code": 0}


def _failure(message: str, code: int) -> dict[str, Any]:
    return {"data": None, "success": False, "message": message, "code": code}


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> _Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return _Response(status, body, {"Content-Type": _JSON, **(headers or {})})


def _normalize_path(path: str) -> str:
    path = urlsplit(path).path or "/"
    return path.rstrip("/") or "/"


def _guess_content_type(body: bytes) -> str:
    head = body.lstrip()[:1]
    if head == b"<":
        return "text/html; charset=utf-8"
    if head in (b"{", b"["):
        return _JSON
    return "text/plain; charset=utf-8"


def _period(window: float) -> str:
    if window >= 60 and window % 60 == 0:
        return f"{int(window // 60)}m"
    return f"{window:g}s"


def _retry_after_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        # Keep-alive connections would otherwise keep being served after stop(), hiding an "outage".
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients vanishing mid-request are routine in fault tests; only real bugs deserve a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "BTCTurkSimulator/1.0"
    sys_version = ""
    timeout = 120.0
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.sim.log_requests:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            self.server.sim._serve(self)
        except OSError:
            # The peer went away mid-exchange; there is nobody left to answer.
            self.close_connection = True

    def read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self.send(_json(411, _failure("LENGTH_REQUIRED", 411)))
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
            if not 0 <= length <= _MAX_BODY:
                raise ValueError(raw)
        except ValueError:
            self.close_connection = True
            self.send(_json(400, _failure("BAD_REQUEST", 400)))
            return None
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return None
        return body

    def _start(self, response: _Response, content_length: int) -> None:
        self.send_response(response.status)
        has_length = False
        for name, value in response.headers.items():
            if name.lower() == "content-length":
                # A fault may lie about the length on purpose; the stream cannot be reused after that.
                has_length = True
                self.close_connection = True
            self.send_header(name, value)
        if not has_length:
            self.send_header("Content-Length", str(content_length))
        self.end_headers()

    def send(self, response: _Response) -> None:
        self._start(response, len(response.body))
        if response.body:
            self.wfile.write(response.body)

    def send_partial(self, response: _Response) -> None:
        self.close_connection = True
        self._start(response, len(response.body))
        self.wfile.write(response.body[: max(1, len(response.body) // 2)])
        self.wfile.flush()
        # Linger 0 turns the close into a TCP RST, like a proxy or load balancer dropping the stream.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def abort(self) -> None:
        self.close_connection = True


# --------------------------------------------------------------------------------------------------------
# The simulator


class Simulator:
    """An HTTP server that answers like the BTCTurk REST API, with injectable faults and rate limits."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        balance_limit: int = 120,
        ticker_limit: int = 600,
        window: float = 60.0,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.port = port
        self.balance_limit = balance_limit
        self.ticker_limit = ticker_limit
        self.window = window
        self.seed = seed
        self.clock = clock
        self.comma_decimals = False
        self.clock_skew = 0.0
        self.legacy_401 = False
        self.log_requests = False
        self.url = ""
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._accounts: dict[str, _Account] = {}
        self._pairs = _build_pairs(self._rng)
        self._faults: list[_ArmedFault] = []
        self._quota: dict[tuple[str, str], tuple[int, int]] = {}
        self._counts: Counter[tuple[str, int]] = Counter()
        self._counts_changed = threading.Condition()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind and serve on a daemon thread; a restarted simulator reuses its first port."""
        with self._lock:
            if self._server is not None:
                return self
            self._stopping.clear()
            server = _Server((self.host, self.port), self)
            self.port = server.server_address[1]
            host = f"[{self.host}]" if ":" in self.host else self.host
            self.url = f"http://{host}:{self.port}"
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"btcturk-sim-{self.port}",
                daemon=True,
            )
            self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and wake any request held by a latency or hang fault."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

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
        with self._lock:
            self._accounts[public_key] = _Account(key, self._copy_assets(chosen), can_read_balances)

    def set_assets(self, public_key: str, assets: Iterable[SimAsset]) -> None:
        """Replace every asset of an account."""
        with self._lock:
            self._accounts[public_key].assets = self._copy_assets(assets)

    def remove_asset(self, public_key: str, asset: str) -> None:
        """Make an asset vanish from the account's balances response."""
        with self._lock:
            del self._accounts[public_key].assets[asset]

    def set_permission(self, public_key: str, can_read_balances: bool) -> None:
        """Grant or revoke the key's "Total Funds" permission."""
        with self._lock:
            self._accounts[public_key].can_read_balances = can_read_balances

    def assets(self, public_key: str) -> list[SimAsset]:
        """A copy of the account's current assets (after any drift)."""
        with self._lock:
            return [dataclasses.replace(a) for a in self._accounts[public_key].assets.values()]

    @staticmethod
    def _copy_assets(assets: Iterable[SimAsset]) -> dict[str, SimAsset]:
        # Copies, so drift() never mutates objects the caller still holds.
        return {a.asset: dataclasses.replace(a) for a in assets}

    def set_price(
        self, pair: str, last: Decimal, bid: Decimal | None = None, ask: Decimal | None = None
    ) -> None:
        """Set a pair's prices (adding the pair if new); bid/ask default to a small spread around last."""
        last = _to_decimal(last)
        name = pair.upper().replace("_", "")
        with self._lock:
            current = self._pairs.get(name)
            if current is None:
                numerator, denominator = self._split_pair(pair)
                current = _new_pair(numerator, denominator, last, 1000 + len(self._pairs), self._rng)
                self._pairs[name] = current
            scale = max(current.scale, _scale_for(last), -min(0, int(last.as_tuple().exponent)))
            current.scale = min(scale, 16)
            default_bid, default_ask = _spread(last, current.scale)
            current.last = last
            current.bid = default_bid if bid is None else _to_decimal(bid)
            current.ask = default_ask if ask is None else _to_decimal(ask)
            current.high = max(current.high, current.ask, last)
            current.low = min(current.low, current.bid, last)

    def price(self, pair: str) -> Decimal:
        """The pair's current last price."""
        with self._lock:
            return self._pairs[pair.upper().replace("_", "")].last

    def _split_pair(self, pair: str) -> tuple[str, str]:
        if "_" in pair:
            numerator, _, denominator = pair.upper().partition("_")
            return numerator, denominator
        name = pair.upper()
        for quote in _QUOTE_SYMBOLS:
            if name.endswith(quote) and len(name) > len(quote):
                return name[: -len(quote)], quote
        raise ValueError(f"cannot tell numerator from denominator in {pair!r}; write it as BASE_QUOTE")

    def drift(self, fraction: float = 0.002) -> None:
        """Random small walk of every non-zero balance and every price, keeping cross rates consistent."""
        with self._lock:
            symbols = {s for p in self._pairs.values() for s in (p.numerator, p.denominator)}
            # One factor per asset against TRY, so BTCUSDT moves exactly as BTCTRY / USDTTRY does.
            factors = {s: Decimal(1) if s == "TRY" else _jitter(self._rng, fraction) for s in sorted(symbols)}
            for pair in self._pairs.values():
                ratio = factors[pair.numerator] / factors[pair.denominator]
                ordered = pair.bid < pair.last < pair.ask
                pair.last = pair.q(pair.last * ratio)
                pair.bid = pair.q(pair.bid * ratio)
                pair.ask = pair.q(pair.ask * ratio)
                if ordered:
                    pair.bid = min(pair.bid, pair.last - pair.tick)
                    pair.ask = max(pair.ask, pair.last + pair.tick)
                pair.high = max(pair.high, pair.ask)
                pair.low = min(pair.low, pair.bid)
            for account in self._accounts.values():
                for asset in account.assets.values():
                    if asset.free:
                        asset.free = max(_ZERO, _quantize16(asset.free * _jitter(self._rng, fraction)))
                    if asset.locked:
                        asset.locked = max(_ZERO, _quantize16(asset.locked * _jitter(self._rng, fraction)))

    # -- faults ---------------------------------------------------------------------------------------

    def inject(self, fault: Fault, *, endpoint: str | None = None, times: int | None = None) -> None:
        """Arm a fault for one endpoint path (None = all) for `times` requests (None = until clear_faults)."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for unlimited)")
        with self._lock:
            path = None if endpoint is None else _normalize_path(endpoint)
            self._faults.append(_ArmedFault(fault, path, times))

    def clear_faults(self) -> None:
        """Disarm every injected fault."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for armed in self._faults:
                if armed.endpoint is None or armed.endpoint == path:
                    if armed.remaining is not None:
                        armed.remaining -= 1
                        if armed.remaining <= 0:
                            self._faults.remove(armed)
                    return armed.fault
        return None

    # -- request accounting ---------------------------------------------------------------------------

    def count(self, path: str, status: int | None = None) -> int:
        """How many requests hit path (optionally only those answered with status; 0 = hang/reset)."""
        path = _normalize_path(path)
        with self._counts_changed:
            return self._count_locked(path, status)

    def _count_locked(self, path: str, status: int | None) -> int:
        if status is not None:
            return self._counts[(path, status)]
        return sum(n for (p, _), n in self._counts.items() if p == path)

    def stats(self) -> dict[str, dict[str, int]]:
        """Request counts as {path: {status: n}}."""
        result: dict[str, dict[str, int]] = {}
        with self._counts_changed:
            for (path, status), n in sorted(self._counts.items()):
                result.setdefault(path, {})[str(status)] = n
        return result

    def wait_for_requests(self, path: str, n: int, timeout: float = 10.0, status: int | None = None) -> None:
        """Block until count(path, status) >= n, or raise TimeoutError."""
        path = _normalize_path(path)
        with self._counts_changed:
            if not self._counts_changed.wait_for(lambda: self._count_locked(path, status) >= n, timeout):
                seen = self._count_locked(path, status)
                raise TimeoutError(f"{path} (status {status}): {seen} requests after {timeout}s, wanted {n}")

    def _record(self, path: str, status: int) -> None:
        with self._counts_changed:
            self._counts[(path, status)] += 1
            self._counts_changed.notify_all()

    # -- request handling -----------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock() + self.clock_skew

    def _now_ms(self) -> int:
        return round(self._now() * 1000)

    def _limit_for(self, path: str) -> int | None:
        if path == BALANCES_PATH:
            return self.balance_limit
        if path == TICKER_PATH:
            return self.ticker_limit
        return None

    def _consume_quota(self, client: str, path: str) -> float | None:
        """Count one request against its fixed window; return Retry-After seconds when over the limit."""
        limit = self._limit_for(path)
        if limit is None:
            return None
        now = self._now()
        window = math.floor(now / self.window)
        with self._lock:
            seen_window, seen = self._quota.get((client, path), (window, 0))
            # Requests refused with 429 still count, so a blocked IP stays blocked until the window ends.
            seen = seen + 1 if seen_window == window else 1
            self._quota[(client, path)] = (window, seen)
        if seen <= limit:
            return None
        return max(1, math.ceil((window + 1) * self.window - now))

    def _too_many(self, path: str, retry_after: float | None, body: bytes = b"") -> _Response:
        limit = self._limit_for(path) or self.balance_limit
        headers = {} if retry_after is None else {"Retry-After": _retry_after_text(retry_after)}
        if body:
            return _Response(429, body, {"Content-Type": _guess_content_type(body), **headers})
        period = _period(self.window)
        return _json(
            429,
            {
                "message": "TOO_MANY_REQUESTS",
                "success": False,
                "code": 429,
                "details": f"Quota exceeded. Maximum allowed: {limit} per {period}.",
                "limit": str(limit),
                "period": period,
                "policy": "ip",
            },
            headers,
        )

    def _unauthorized(self, legacy: bool) -> _Response:
        if legacy:
            return _json(401, _LEGACY_401)
        return _Response(401, b"", {"WWW-Authenticate": _WWW_AUTHENTICATE})

    def _serve(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        path = _normalize_path(split.path)
        body = handler.read_body()
        if body is None:
            return
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            handler.send(self._control(handler.command, path, body))
            return
        retry_after = self._consume_quota(handler.client_address[0], path)
        fault = self._take_fault(path)
        if fault is not None and fault.kind == "latency":
            if self._stopping.wait(fault.seconds):
                self._record(path, 0)
                handler.abort()
                return
            fault = None
        if fault is not None:
            self._serve_fault(handler, fault, path, split.query)
            return
        if retry_after is not None:
            response = self._too_many(path, retry_after)
        else:
            response = self._route(handler.command, path, split.query, handler.headers)
        self._record(path, response.status)
        handler.send(response)

    def _serve_fault(self, handler: _Handler, fault: Fault, path: str, query: str) -> None:
        kind = fault.kind
        if kind == "hang":
            # Recorded first so a test can wait for the moment the client is left hanging.
            self._record(path, 0)
            self._stopping.wait(fault.seconds)
            handler.abort()
            return
        if kind == "reset":
            if fault.body:
                response = _Response(200, fault.body, {"Content-Type": _guess_content_type(fault.body)})
            else:
                response = self._route(handler.command, path, query, handler.headers)
                if not response.body:
                    response = _json(200, _wrapped([{"asset": "TRY", "assetname": "Türk Lirası"}] * 8))
            response.headers.update(fault.headers)
            self._record(path, 0)
            handler.send_partial(response)
            return
        if kind == "status":
            response = _Response(
                fault.status,
                fault.body,
                {"Content-Type": _guess_content_type(fault.body)} if fault.body else {},
            )
        elif kind == "rate_limit":
            response = self._too_many(path, fault.retry_after, fault.body)
        elif kind == "body":
            response = _Response(200, fault.body, {"Content-Type": _JSON})
        else:  # "auth" / "auth_json"
            response = self._unauthorized(legacy=kind == "auth_json")
        response.headers.update(fault.headers)
        self._record(path, response.status)
        handler.send(response)

    def _route(self, method: str, path: str, query: str, headers: Headers) -> _Response:
        if path not in _API_PATHS:
            return _json(404, _failure("NOT_FOUND", 404))
        if method != "GET":
            return _json(405, _failure("METHOD_NOT_ALLOWED", 405), {"Allow": "GET"})
        try:
            if path == BALANCES_PATH:
                return self._balances(headers)
            if path == SERVER_TIME_PATH:
                return self._server_time()
            if path == TICKER_PATH:
                return self._ticker(query)
            return _json(200, _wrapped(self._exchange_info()))
        except Exception:  # a simulator bug should look like a 500, not a dropped connection
            return _json(500, _failure("INTERNAL_ERROR", 500))

    def _authenticated(self, headers: Headers) -> _Account | None:
        public_key = headers.get("X-PCK") or ""
        stamp_text = (headers.get("X-Stamp") or "").strip()
        signature = (headers.get("X-Signature") or "").strip()
        if not public_key or not signature or not _STAMP.fullmatch(stamp_text):
            return None
        with self._lock:
            account = self._accounts.get(public_key)
        if account is None or not account.can_read_balances:
            return None
        stamp = int(stamp_text)
        if abs(stamp - self._now_ms()) > STAMP_TOLERANCE_MS:
            return None
        expected = sign(public_key, account.private_key, stamp).encode("ascii")
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            return None
        return account

    def _balances(self, headers: Headers) -> _Response:
        account = self._authenticated(headers)
        if account is None:
            return self._unauthorized(self.legacy_401)
        comma = self.comma_decimals
        stamp = self._now_ms()
        with self._lock:
            data = [
                {
                    "asset": a.asset,
                    "assetname": a.name,
                    "balance": format_amount(a.free + a.locked, comma),
                    "locked": format_amount(a.locked, comma),
                    "free": format_amount(a.free, comma),
                    "orderFund": format_amount(a.locked, comma),
                    "requestFund": format_amount(a.request_fund, comma),
                    "precision": a.precision,
                    "timestamp": stamp,
                }
                for a in account.assets.values()
            ]
        return _json(200, _wrapped(data))

    def _server_time(self) -> _Response:
        now = self._now()
        iso = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="microseconds")
        return _json(200, {"serverTime": round(now * 1000), "serverTime2": iso})

    def _ticker(self, query: str) -> _Response:
        params = {k.lower(): v for k, v in parse_qs(query).items()}
        wanted = {s.upper().replace("_", "") for s in params.get("pairsymbol", [])}
        stamp = self._now_ms()
        with self._lock:
            pairs = [p for p in self._pairs.values() if not wanted or p.name in wanted]
            data = [self._ticker_entry(p, stamp) for p in pairs]
        return _json(200, _wrapped(data))

    @staticmethod
    def _ticker_entry(pair: _Pair, stamp: int) -> dict[str, Any]:
        daily = pair.last - pair.open
        percent = (daily / pair.open * 100).quantize(Decimal("0.01"), context=_WIDE) if pair.open else _ZERO
        average = pair.q((pair.high + pair.low + pair.last) / 3)
        return {
            "pair": pair.name,
            "pairNormalized": f"{pair.numerator}_{pair.denominator}",
            "timestamp": stamp,
            "last": float(pair.last),
            "high": float(pair.high),
            "low": float(pair.low),
            "bid": float(pair.bid),
            "ask": float(pair.ask),
            "open": float(pair.open),
            "volume": float(pair.volume),
            "average": float(average),
            "daily": float(daily),
            "dailyPercent": float(percent),
            "denominatorSymbol": pair.denominator,
            "numeratorSymbol": pair.numerator,
            "order": pair.order,
        }

    def _exchange_info(self) -> dict[str, Any]:
        with self._lock:
            pairs = list(self._pairs.values())
            currencies: dict[str, tuple[str, int, bool]] = {
                listing.symbol: (listing.name, listing.precision, listing.fiat) for listing in _CATALOG
            }
            for account in self._accounts.values():
                for a in account.assets.values():
                    currencies.setdefault(a.asset, (a.name, a.precision, False))
            for pair in pairs:
                for symbol in (pair.numerator, pair.denominator):
                    currencies.setdefault(symbol, (symbol, 8, False))
            symbols = [self._symbol_entry(i, p) for i, p in enumerate(pairs, start=1)]
        return {
            "timeZone": "UTC",
            "serverTime": self._now_ms(),
            "symbols": symbols,
            "currencies": [
                {
                    "id": i,
                    "symbol": symbol,
                    "name": name,
                    "precision": precision,
                    "currencyType": "FIAT" if fiat else "CRYPTO",
                    "minWithdrawal": 0,
                    "minDeposit": 0,
                    "isAddressRenewable": False,
                    "getAutoAddressDisabled": False,
                    "isPartialWithdrawalEnabled": False,
                    "isNew": False,
                }
                for i, (symbol, (name, precision, fiat)) in enumerate(currencies.items(), start=1)
            ],
        }

    @staticmethod
    def _symbol_entry(index: int, pair: _Pair) -> dict[str, Any]:
        listing = _LISTINGS.get(pair.numerator)
        return {
            "id": index,
            "name": pair.name,
            "nameNormalized": f"{pair.numerator}_{pair.denominator}",
            "status": "TRADING",
            "numerator": pair.numerator,
            "denominator": pair.denominator,
            "numeratorScale": listing.precision if listing else 8,
            "denominatorScale": pair.scale,
            "hasFraction": pair.scale > 0,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": format_amount(pair.tick),
                    "maxPrice": format_amount(pair.q(pair.last * 10)),
                    "tickSize": format_amount(pair.tick),
                    "minExchangeValue": "100" if pair.denominator == "TRY" else "10",
                    "minAmount": None,
                    "maxAmount": None,
                }
            ],
            "orderMethods": ["MARKET", "LIMIT", "STOP_MARKET", "STOP_LIMIT"],
            "displayFormat": "#,###" if pair.scale == 0 else "#,###." + "#" * pair.scale,
            "commissionFromNumerator": False,
            "order": pair.order,
            "priceRounding": False,
            "isNew": False,
        }

    # -- test-only control API ------------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> _Response:
        """TEST-ONLY: lets a simulator in another process be steered; the real API has no such endpoints."""
        ok = _json(200, {"ok": True})
        try:
            if path == "/_sim/faults" and method == "POST":
                fault, endpoint, times = _fault_from_json(json.loads(body or b"{}"))
                self.inject(fault, endpoint=endpoint, times=times)
                return ok
            if path == "/_sim/faults" and method == "DELETE":
                self.clear_faults()
                return ok
            if path == "/_sim/stats" and method == "GET":
                return _json(200, {"requests": self.stats()})
            if path == "/_sim/config" and method == "POST":
                self._configure(json.loads(body or b"{}"))
                return ok
            if path == "/_sim/drift" and method == "POST":
                spec = json.loads(body or b"{}")
                self.drift(float(spec.get("fraction", 0.002)))
                return ok
        except (ValueError, TypeError, KeyError, AttributeError, InvalidOperation) as exc:
            return _json(400, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return _json(404, {"ok": False, "error": f"no control endpoint {method} {path}"})

    def _configure(self, spec: Mapping[str, Any]) -> None:
        unknown = set(spec) - {"clock_skew", "comma_decimals", "legacy_401"}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        if "clock_skew" in spec:
            self.clock_skew = float(spec["clock_skew"])
        if "comma_decimals" in spec:
            self.comma_decimals = bool(spec["comma_decimals"])
        if "legacy_401" in spec:
            self.legacy_401 = bool(spec["legacy_401"])


def _fault_from_json(spec: Mapping[str, Any]) -> tuple[Fault, str | None, int | None]:
    if "body_b64" in spec:
        body = base64.b64decode(spec["body_b64"], validate=True)
    else:
        body = str(spec.get("body", "")).encode("utf-8")
    retry_after = spec.get("retry_after")
    fault = Fault(
        kind=str(spec["kind"]),
        seconds=float(spec.get("seconds", 0.0)),
        status=int(spec.get("status", 500)),
        body=body,
        headers={str(k): str(v) for k, v in dict(spec.get("headers") or {}).items()},
        retry_after=None if retry_after is None else float(retry_after),
    )
    endpoint = spec.get("endpoint")
    times = spec.get("times")
    return fault, None if endpoint is None else str(endpoint), None if times is None else int(times)


# --------------------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    """Run a standalone simulator with demo accounts until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m exporter.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--accounts", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drift-interval", type=float, default=5.0, help="seconds between random walks")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    sim = Simulator(args.host, args.port, seed=args.seed)
    sim.log_requests = args.verbose
    sim.start()
    try:
        print(f"BTCTurk simulator listening on {sim.url}", flush=True)
        for index in range(args.accounts):
            public_key, private_key = generate_keypair(args.seed * 1000 + index)
            sim.add_account(public_key, private_key, demo_assets(args.seed + index))
            print(f"account {index + 1}: public_key={public_key} private_key={private_key}", flush=True)
        print("(throwaway test keys for this simulator only)", flush=True)
        while not stop.wait(args.drift_interval):
            sim.drift()
    finally:
        sim.stop()
    print("simulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
