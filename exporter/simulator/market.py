"""The simulated market: listed assets, trading pairs, their prices and how prices move."""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass
from decimal import Decimal

from exporter.simulator.amounts import WIDE, ZERO, jitter, random_amount, to_decimal

USDT_TRY = Decimal("41.20")
MARKETS = ("default", "live")
# How strongly prices are pulled back towards their base each drift step (0 = a free random walk).
REVERSION = 0.02


@dataclass(frozen=True)
class Listing:
    """An asset the exchange lists: its reference price in USD and the quote currencies it trades in."""

    symbol: str
    name: str
    precision: int
    usd: str | None  # reference price; None means the asset has no market at all
    quotes: tuple[str, ...] = ("TRY",)
    fiat: bool = False


_TU = ("TRY", "USDT")

# Only TRY- and USDT-quoted pairs, as on the live exchange. Chosen so every valuation route a client needs
# shows up: direct (BTCTRY), inverse (TRY in USDT via USDTTRY), two legs through USDT (XRP has only
# XRPUSDT) and none (OLDTOKEN, and ZRX). BTC-quoted pairs are an opt-in oddity (btc_quoted): ETHBTC, and
# ZRXBTC, ZRX's only market then, so that both currencies route through BTC.
CATALOG: tuple[Listing, ...] = (
    Listing("TRY", "Türk Lirası", 2, None, (), fiat=True),
    Listing("USDT", "Tether", 2, "1", ("TRY",)),
    Listing("BTC", "Bitcoin", 8, "85000", _TU),
    Listing("ETH", "Ethereum", 8, "3150", _TU),
    Listing("XRP", "Ripple", 4, "2.35", ("USDT",)),
    Listing("AVAX", "Avalanche", 8, "24.3", _TU),
    Listing("ZRX", "0x Protocol", 8, "0.25", ()),
    Listing("OLDTOKEN", "Old Token", 8, None, ()),
    Listing("USDC", "USD Coin", 2, "1", _TU),
    Listing("SOL", "Solana", 8, "180", _TU),
    Listing("ADA", "Cardano", 6, "0.65", _TU),
    Listing("DOGE", "Dogecoin", 8, "0.18", _TU),
    Listing("LTC", "Litecoin", 8, "90", _TU),
    Listing("LINK", "Chainlink", 8, "15", _TU),
    Listing("DOT", "Polkadot", 8, "3.5", _TU),
    Listing("TRX", "TRON", 6, "0.30", _TU),
    Listing("SHIB", "Shiba Inu", 2, "0.000012", _TU),
    Listing("UNI", "Uniswap", 8, "7", ("TRY",)),
    Listing("ATOM", "Cosmos", 6, "4", ("TRY",)),
    Listing("XLM", "Stellar", 6, "0.30", ("TRY",)),
    Listing("XTZ", "Tezos", 6, "0.60", ("TRY",)),
    Listing("DASH", "Dash", 8, "40", ("TRY",)),
    Listing("BAT", "Basic Attention Token", 8, "0.15", ("TRY",)),
    Listing("ZIL", "Zilliqa", 8, "0.010", ("TRY",)),
    Listing("ENJ", "Enjin Coin", 8, "0.07", ("TRY",)),
    Listing("CHZ", "Chiliz", 8, "0.04", ("TRY",)),
    Listing("MKR", "Maker", 8, "1500", ("TRY",)),
    Listing("COMP", "Compound", 8, "40", ("TRY",)),
    Listing("AAVE", "Aave", 8, "250", ("TRY",)),
    Listing("GRT", "The Graph", 8, "0.08", ("TRY",)),
    Listing("FIL", "Filecoin", 8, "2.5", ("TRY",)),
    Listing("APE", "ApeCoin", 8, "0.50", ("TRY",)),
    Listing("SAND", "The Sandbox", 8, "0.25", ("TRY",)),
    Listing("MANA", "Decentraland", 8, "0.28", ("TRY",)),
    Listing("AXS", "Axie Infinity", 8, "2.5", ("TRY",)),
    Listing("FET", "Fetch.ai", 8, "0.60", ("TRY",)),
    Listing("NEAR", "NEAR Protocol", 8, "2.5", ("TRY",)),
    Listing("ALGO", "Algorand", 6, "0.20", ("TRY",)),
    Listing("ARB", "Arbitrum", 8, "0.35", ("TRY",)),
    Listing("OP", "Optimism", 8, "0.60", ("TRY",)),
    Listing("PEPE", "Pepe", 2, "0.00001", ("TRY",)),
    Listing("FLOKI", "Floki", 2, "0.00008", ("TRY",)),
    Listing("GALA", "Gala", 8, "0.015", ("TRY",)),
    Listing("ANKR", "Ankr", 8, "0.015", ("TRY",)),
    Listing("HOT", "Holo", 8, "0.001", ("TRY",)),
    Listing("RENDER", "Render", 8, "3.5", ("TRY",)),
    Listing("INJ", "Injective", 8, "12", ("TRY",)),
    Listing("SUI", "Sui", 8, "3", ("TRY",)),
    Listing("APT", "Aptos", 8, "4.5", ("TRY",)),
)
LISTINGS = {listing.symbol: listing for listing in CATALOG}
BTC_QUOTED = ("ETH", "ZRX")
# Pairs whose exchangeinfo entry says commissionFromNumerator: true, so a buy pays fee and tax in the
# asset bought (activity.trade). One the seeded histories buy often (backfill.PORTFOLIO, against TRY),
# so every demo account meets one; all others keep the vendor notes' rule, fees in the denominator.
COMMISSION_FROM_NUMERATOR = frozenset({"ETHTRY"})
# Used to split a pair name passed to set_price(); longest first so "USDT" wins over "T...".
_QUOTE_SYMBOLS = ("USDT", "USDC", "TRY", "BTC", "ETH")
# A day's turnover in TRY, (low, high) in millions; other listings trade 2-50 million.
_TURNOVER = {
    "BTC": (1500, 3000),
    "USDT": (1000, 2000),
    "ETH": (500, 1000),
    "XRP": (100, 300),
    "SOL": (100, 300),
    "AVAX": (50, 150),
    "DOGE": (50, 150),
    "USDC": (50, 150),
}
# Stablecoins barely move against the lira; small tokens move more than the majors.
_VOLATILITY = {"USDT": 0.1, "USDC": 0.1, "BTC": 0.8, "ETH": 0.9}
_LIVE_BASES = 189


def live_catalog(seed: int) -> tuple[Listing, ...]:
    """A live-sized catalogue: 189 bases each quoted in TRY and USDT, plus USDTTRY (379 pairs)."""
    rng = random.Random(f"live-{seed}")
    listings = [c if c.usd is None or c.symbol == "USDT" else _both(c) for c in CATALOG]
    taken = {c.symbol for c in listings}
    while sum(1 for c in listings if len(c.quotes) == 2) < _LIVE_BASES:
        symbol = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(3, 5)))
        if symbol in taken:
            continue
        taken.add(symbol)
        usd = f"{math.exp(rng.uniform(math.log(1e-5), math.log(500))):.6g}"
        listings.append(Listing(symbol, f"{symbol.title()} Token", rng.choice((2, 4, 6, 8)), usd, _TU))
    return tuple(listings)


def _both(listing: Listing) -> Listing:
    return Listing(listing.symbol, listing.name, listing.precision, listing.usd, _TU, listing.fiat)


@dataclass
class Pair:
    """One trading pair's state, as the ticker shows it."""

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
    commission_from_numerator: bool = False

    @property
    def name(self) -> str:
        return self.numerator + self.denominator

    @property
    def tick(self) -> Decimal:
        return Decimal(1).scaleb(-self.scale)

    def q(self, value: Decimal) -> Decimal:
        """Round a price to this pair's tick."""
        return value.quantize(self.tick, context=WIDE)


def scale_for(price: Decimal) -> int:
    """About five significant digits, like the exchange's own tick sizes."""
    return min(8, max(0, 4 - price.adjusted())) if price > 0 else 2


def spread(last: Decimal, scale: int) -> tuple[Decimal, Decimal]:
    """A default bid and ask a few basis points either side of last."""
    tick = Decimal(1).scaleb(-scale)
    half = max(tick, (last * Decimal("0.0004")).quantize(tick, context=WIDE))
    return max(tick, last - half), last + half


def new_pair(
    numerator: str,
    denominator: str,
    last: Decimal,
    order: int,
    rng: random.Random,
    try_price: Decimal | None = None,
) -> Pair:
    """A pair around `last` with a plausible day of open, high, low and volume."""
    scale = scale_for(last)
    tick = Decimal(1).scaleb(-scale)
    last = last.quantize(tick, context=WIDE)
    bid, ask = spread(last, scale)
    opened = (last * jitter(rng, 0.04)).quantize(tick, context=WIDE)
    high = (max(ask, opened) * (1 + to_decimal(rng.uniform(0, 0.02)))).quantize(tick, context=WIDE)
    low = (min(bid, opened) * (1 - to_decimal(rng.uniform(0, 0.02)))).quantize(tick, context=WIDE)
    low_m, high_m = _TURNOVER.get(numerator, (2, 50))
    # USDT-quoted books are thinner than the lira ones on BTCTurk.
    share = 1 if denominator == "TRY" else 0.3
    unit_price = try_price or last
    turnover = random_amount(rng, low_m * share, high_m * share) * 1_000_000
    volume = turnover / unit_price if unit_price else ZERO
    return Pair(
        numerator,
        denominator,
        scale,
        last,
        bid,
        ask,
        opened,
        high,
        low,
        volume.quantize(Decimal("0.00000001"), context=WIDE),
        order,
    )


def build_pairs(rng: random.Random, catalog: tuple[Listing, ...], btc_quoted: bool) -> dict[str, Pair]:
    """Every catalogue pair, priced from one set of reference prices so that cross rates agree."""
    usdt_try = USDT_TRY * jitter(rng, 0.005)
    refs: dict[str, Decimal] = {"TRY": Decimal(1)}
    for listing in catalog:
        if listing.usd is None:
            continue
        if listing.symbol == "USDT":
            wobble = Decimal(1)
        elif listing.symbol == "USDC":
            wobble = jitter(rng, 0.001)
        else:
            wobble = jitter(rng, 0.02)
        refs[listing.symbol] = Decimal(listing.usd) * usdt_try * wobble
    pairs: dict[str, Pair] = {}
    for listing in catalog:
        quotes = listing.quotes + (("BTC",) if btc_quoted and listing.symbol in BTC_QUOTED else ())
        for quote in quotes:
            last = refs[listing.symbol] / refs[quote]
            pair = new_pair(listing.symbol, quote, last, 1000 + len(pairs), rng, refs[listing.symbol])
            pair.commission_from_numerator = pair.name in COMMISSION_FROM_NUMERATOR
            pairs[pair.name] = pair
    return pairs


def split_pair(pair: str) -> tuple[str, str]:
    """BTC_TRY or BTCTRY -> ("BTC", "TRY")."""
    if "_" in pair:
        numerator, _, denominator = pair.upper().partition("_")
        return numerator, denominator
    name = pair.upper()
    for quote in _QUOTE_SYMBOLS:
        if name.endswith(quote) and len(name) > len(quote):
            return name[: -len(quote)], quote
    raise ValueError(f"cannot tell numerator from denominator in {pair!r}; write it as BASE_QUOTE")


class Market:
    """The pairs and their prices; callers hold the simulator's lock."""

    def __init__(self, rng: random.Random, market: str = "default", btc_quoted: bool = False) -> None:
        if market not in MARKETS:
            raise ValueError(f"market must be one of {', '.join(MARKETS)}, got {market!r}")
        self.rng = rng
        self.catalog = CATALOG if market == "default" else live_catalog(rng.randrange(1 << 30))
        self.listings = {listing.symbol: listing for listing in self.catalog}
        self.pairs = build_pairs(rng, self.catalog, btc_quoted)
        # Each asset's log-distance from its base price against TRY; drift() pulls it back towards 0.
        self.deviation: dict[str, float] = {}

    def set_price(self, pair: str, last: Decimal, bid: Decimal | None, ask: Decimal | None) -> None:
        """Set a pair's prices (adding the pair if new); bid/ask default to a small spread around last."""
        name = pair.upper().replace("_", "")
        current = self.pairs.get(name)
        if current is None:
            numerator, denominator = split_pair(pair)
            current = new_pair(numerator, denominator, last, 1000 + len(self.pairs), self.rng)
            self.pairs[name] = current
        scale = max(current.scale, scale_for(last), -min(0, int(last.as_tuple().exponent)))
        current.scale = min(scale, 16)
        default_bid, default_ask = spread(last, current.scale)
        current.last = last
        current.bid = default_bid if bid is None else to_decimal(bid)
        current.ask = default_ask if ask is None else to_decimal(ask)
        current.high = max(current.high, current.ask, last)
        current.low = min(current.low, current.bid, last)

    def price(self, pair: str) -> Decimal:
        """The pair's current last price."""
        return self.pairs[pair.upper().replace("_", "")].last

    def try_price(self, symbol: str) -> Decimal | None:
        """What one unit of `symbol` is worth in TRY, directly or through USDT; None without a market."""
        if symbol == "TRY":
            return Decimal(1)
        direct = self.pairs.get(symbol + "TRY")
        if direct is not None:
            return direct.last
        via, usdt = self.pairs.get(symbol + "USDT"), self.pairs.get("USDTTRY")
        return via.last * usdt.last if via is not None and usdt is not None else None

    def drift(self, fraction: float) -> None:
        """One step of a mean-reverting walk of every price, keeping cross rates consistent."""
        symbols = {s for p in self.pairs.values() for s in (p.numerator, p.denominator)} - {"TRY"}
        # One factor per asset against TRY, so BTCUSDT moves exactly as BTCTRY / USDTTRY does.
        factors = {"TRY": Decimal(1)}
        for symbol in sorted(symbols):
            before = self.deviation.get(symbol, 0.0)
            step = self.rng.gauss(0.0, fraction * _VOLATILITY.get(symbol, 1.2))
            after = before * (1 - REVERSION) + step
            self.deviation[symbol] = after
            factors[symbol] = to_decimal(math.exp(after - before))
        for pair in self.pairs.values():
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
            pair.volume = (pair.volume * jitter(self.rng, 0.01)).quantize(pair.volume, context=WIDE)
