"""Cost basis and realised profit over an account's trades and transfers: pure functions, no I/O.

The rules (docs/cost-basis.md has them with a worked example):

* Every trade gives one asset and receives another, and both legs are valued at one amount in the
  valuation currency at the trade's time, so a trade never makes profit out of two price sources. That
  amount is the leg in the valuation currency when there is one (what a TRY-quoted buy paid, fees and tax
  included, or what a sell received, net of them); otherwise the quote leg at the quote's market price,
  or failing that the base quantity at the base's market price.
* What a trade moves is Trade.moves(): fee and tax come off the quote, or, on a pair whose exchangeinfo
  says commissionFromNumerator, off the base a buy receives (its cost is then the gross it paid, so
  the unit cost of what is held rises by the fee; a sale pays in the quote it receives).
* Receiving adds quantity and that amount to the asset's cost. Giving removes cost in proportion to the
  quantity held (average cost) or from lots (ledger/lots.py: oldest first for FIFO, newest first for
  LIFO, highest unit cost first for HIFO), and realises the amount minus the removed cost. The
  valuation currency itself always has cost equal to its amount.
* A deposit enters at its market value at its time; a withdrawal removes cost like a sale and realises
  nothing. An opening (ledger/openings.py: what was held where `activity.since` cuts the history) is
  a deposit at that moment, ordered before every record of it. Transfer fees are not taken from
  holdings (the API does not say whether `amount` already includes them); `ledger report` totals them.
* Giving more than is held (history before the first synced record is missing) never makes cost
  negative: all that is held is removed, only the proceeds of the held part are realised, and the rest
  is counted in `shortfalls`, `shortfall_quantity` and `unmatched_proceeds`.
* A sale whose fee and tax exceed its proceeds gives away the excess quote too; the loss is realised
  on the asset sold.
* A deposit or trade that cannot be valued (no price at its time) is left out and counted in `unpriced`;
  a withdrawal still removes its cost and is left out of `net_deposits`. A transfer without a currency
  is left out and counted in `unattributed`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext
from typing import NamedTuple

from exporter.api.records import OPENING, Trade, Transfer
from exporter.config.activity_settings import COST_METHODS, CostMethod
from exporter.ledger.lots import LOT_METHODS, Lot, LotBook, LotMethod, Taken

PriceAt = Callable[[str, str, int], "Decimal | None"]
"""`price_at(asset, currency, when_ms)`: one unit of `asset` in `currency` at that time, or None.

It routes (pricing.routes: the pair, the inverse pair or a bridge), so nothing here inverts or bridges a
price again: every path values an asset at a moment by the same route.
"""

# Sums and products of API amounts and prices stay exact at this precision; only proportional splits
# of cost (average cost, partial lots) round, at the 60th significant digit. Prices arrive routed
# (an inverted one already rounded, at the route rule's precision).
CONTEXT = Context(prec=60)
_ZERO = Decimal(0)
_ONE = Decimal(1)
# Same-millisecond records: money arrives before it is traded, and is traded before it leaves; an
# opening (what was held where the history begins) comes before anything at its moment.
_RANK = {"opening": -1, "deposit": 0, "trade": 1, "withdrawal": 2}


@dataclass(frozen=True, slots=True)
class Position:
    """One asset's holding, cost and realised profit in the valuation currency."""

    asset: str
    quantity: Decimal
    cost: Decimal
    realised: Decimal
    shortfalls: int = 0
    shortfall_quantity: Decimal = _ZERO
    unmatched_proceeds: Decimal = _ZERO


class Valued(NamedTuple):
    """One record with its value in the valuation currency at its time and the profit it realised.

    `realised` is set when the record gave away an asset other than the valuation currency (a sale, or
    a buy paid in another asset); `value` is None when the record could not be valued. Under a lot
    method, `lots` are the parts of lots the record gave away (a sale's, a withdrawal's). `shortfall`
    is the quantity it gave away beyond what the ledger showed held (a sale's base, a buy's quote).
    A NamedTuple: a replay makes one per record and currency.
    """

    record: Trade | Transfer
    value: Decimal | None
    realised: Decimal | None
    lots: tuple[Taken, ...] = ()
    shortfall: Decimal | None = None  # what it gave beyond the holding, in the asset given; None: none


# A replay makes a Valued per trade and currency: tuple.__new__ with every field, in Valued's order,
# skips the NamedTuple's own __new__, one more Python call per trade and currency.
_valued = tuple.__new__


@dataclass(frozen=True)
class CostBasis:
    """What the replay of one account's history produced in one valuation currency: only what depends
    on it (the counts of trades and the totals of trade fees and taxes, deposits and withdrawals
    are ledger/counters.py's)."""

    currency: str
    method: CostMethod
    positions: dict[str, Position]
    net_deposits: Decimal  # deposits minus withdrawals, each valued at its time
    unpriced: int
    unattributed: int
    events: tuple[Valued, ...] = field(default=())

    @property
    def realised(self) -> Decimal:
        """Realised profit over every asset."""
        return sum((p.realised for p in self.positions.values()), _ZERO)


class _Holding:
    """Mutable state of one asset during the replay; lots oldest first (under a lot method).

    `at_par`: the valuation currency, whose every receipt costs its own amount, so giving removes
    exactly what it gives and keeps no lots (under a lot method, half of all lot work otherwise).
    """

    __slots__ = (
        "at_par",
        "cost",
        "lots",
        "quantity",
        "realised",
        "short",
        "shortfall_quantity",
        "shortfalls",
        "taken",
        "unmatched",
    )

    def __init__(self, at_par: bool = False) -> None:
        self.at_par = at_par
        self.quantity = _ZERO
        self.cost = _ZERO
        self.realised = _ZERO
        self.shortfalls = 0
        self.shortfall_quantity = _ZERO
        self.unmatched = _ZERO
        self.lots: LotBook | None = None  # made by the first receipt under a lot method
        self.taken: list[Taken] = []  # what the last give() took from lots
        self.short: Decimal | None = None  # what the last give() lacked, None when it was all held

    def receive(self, quantity: Decimal, cost: Decimal, lots: LotMethod | None, when_ms: int) -> None:
        self.quantity += quantity
        self.cost += cost
        if lots is not None and not self.at_par:
            if self.lots is None:
                self.lots = LotBook(lots)
            self.lots.add(Lot(when_ms, quantity, cost))

    def give(
        self, quantity: Decimal, proceeds: Decimal | None, lots: LotMethod | None, parts: bool = False
    ) -> Decimal | None:
        """Remove `quantity`; realise `proceeds` (None: a withdrawal) minus the cost removed. With
        `parts`, `taken` is what it took from lots (else it stays empty: no part is made)."""
        held = self.quantity
        taken: list[Taken] = []
        self.taken = taken
        self.short = None
        if quantity > held:
            self.short = quantity - held
            self.shortfalls += 1
            self.shortfall_quantity += self.short
            if proceeds is not None and proceeds > 0:  # a loss is all realised, none of it unmatched
                covered = proceeds * held / quantity if held > 0 else _ZERO
                self.unmatched += proceeds - covered
                proceeds = covered
            removed = self.cost
            self.quantity = self.cost = _ZERO
            if self.lots is not None:
                cleared = self.lots.clear()
                if parts:
                    self.taken = cleared
        else:
            if self.at_par:
                removed = quantity
            elif lots is None:
                removed = self.cost if quantity == held else self.cost * quantity / held
            elif self.lots is None:  # nothing was ever received: only a give of zero gets here
                removed = _ZERO
            else:
                removed = self.lots.take(quantity, taken if parts else None)
            self.quantity = held - quantity
            self.cost -= removed
        if proceeds is None:
            return None
        self.realised += proceeds - removed
        return proceeds - removed


def compute(
    trades: Iterable[Trade],
    transfers: Iterable[Transfer],
    currency: str,
    price_at: PriceAt,
    method: CostMethod = "average",
    keep_events: bool = False,
) -> CostBasis:
    """Replay one account's history in time order and return its cost basis in `currency`."""
    replay = Replay(currency, price_at, method, parts=keep_events)
    events: list[Valued] = []
    with localcontext(CONTEXT):
        for record in order([*trades, *transfers]):
            valued = replay.step(record)
            if keep_events:
                events.append(valued)
    return replay.result(tuple(events))


def compute_chunks(
    chunks: Iterable[tuple[Iterable[Trade], Iterable[Transfer]]],
    currencies: Iterable[str],
    price_at: PriceAt,
    method: CostMethod = "average",
) -> dict[str, CostBasis]:
    """compute() in each valuation currency over a history given in chunks of ascending,
    non-overlapping time ranges.

    Only one chunk is in memory at a time (100,000 trades as objects take some 60 MB); the result is
    the same as compute() over all the records at once.
    """
    replays = {c.upper(): Replay(c, price_at, method) for c in currencies}
    with localcontext(CONTEXT):
        for trades, transfers in chunks:
            records = order([*trades, *transfers])
            for replay in replays.values():
                for record in records:
                    replay.step(record)
    return {currency: replay.result() for currency, replay in replays.items()}


def order_key(record: Trade | Transfer) -> tuple[int, int, int]:
    """A record's place in replay order (order()): time, then opening, deposit, trade, withdrawal, id."""
    if isinstance(record, Trade):
        rank = _RANK["trade"]
    else:
        rank = _RANK[OPENING if record.kind == OPENING else record.balance_type]
    return (record.timestamp_ms, rank, record.id)


def order(records: Iterable[Trade | Transfer]) -> list[Trade | Transfer]:
    """The records in replay order: by time; within a millisecond deposits, trades, withdrawals; then id."""
    return sorted(records, key=order_key)


def _unit_price(price_at: PriceAt, asset: str, currency: str, when_ms: int) -> Decimal | None:
    """One unit of `asset` in `currency` at a time: 1 for the currency itself, else what price_at says."""
    return _ONE if asset == currency else price_at(asset, currency, when_ms)


def _trade_value(trade: Trade, quote_leg: Decimal, currency: str, price_at: PriceAt) -> Decimal | None:
    """The one amount both legs of a trade neither of whose assets is `currency` are valued at (the
    first rule above); None if unpriced. (Replay.trade takes the leg in the valuation currency
    itself when there is one: what a quote-currency buy paid, fees included when taken from the
    quote, or what a base-currency leg moved net of a fee taken from it, so that currency keeps a
    cost equal to its amount.)

    `quote_leg` is what the quote side moved: paid on a buy, received on a sale.
    """
    rate = price_at(trade.quote, currency, trade.timestamp_ms)
    if rate is not None:
        return quote_leg * rate
    rate = price_at(trade.base, currency, trade.timestamp_ms)
    return None if rate is None else trade.quantity * rate


class Replay:
    """One account's history replayed record by record, for a caller that reads the state between them.

    apply() takes the records in order() order; position() and net_deposits are the state so far, and
    result() the CostBasis compute() would give over the records applied.
    """

    def __init__(
        self, currency: str, price_at: PriceAt, method: CostMethod = "average", parts: bool = False
    ) -> None:
        """With `parts`, each Valued names the parts of lots its record gave away (`ledger export
        --lots`); without, none is made (a replay that reads only its totals)."""
        if method not in COST_METHODS:
            raise ValueError(f"unknown cost-basis method {method!r} (expected {', '.join(COST_METHODS)})")
        self.currency = currency.upper()
        self.method = method
        self.price_at = price_at
        self.lots: LotMethod | None = next((m for m in LOT_METHODS if m == method), None)
        self.parts = parts
        self.holdings: dict[str, _Holding] = {}
        self.net_deposits = _ZERO
        self.unpriced = 0
        self.unattributed = 0

    def apply(self, record: Trade | Transfer) -> Valued:
        """Replay one record, the next in order(); its value and the profit it realised."""
        with localcontext(CONTEXT):
            return self.step(record)

    def apply_all(self, records: Iterable[Trade | Transfer]) -> None:
        """Replay these records, the next in order(), keeping no events (a resumed replay's step)."""
        with localcontext(CONTEXT):
            for record in records:
                self.step(record)

    def step(self, record: Trade | Transfer) -> Valued:
        """apply() under the caller's decimal context, which must be CONTEXT (entered once for many)."""
        return self.trade(record, record.moves()) if isinstance(record, Trade) else self.transfer(record)

    def position(self, asset: str) -> tuple[Decimal, Decimal, Decimal] | None:
        """(quantity, cost, realised) of `asset` so far; None if no record has moved it."""
        h = self.holdings.get(asset)
        return None if h is None else (h.quantity, h.cost, h.realised)

    def _holding(self, asset: str) -> _Holding:
        found = self.holdings.get(asset)
        if found is None:
            found = self.holdings[asset] = _Holding(asset == self.currency)
        return found

    def trade(self, trade: Trade, moves: tuple[Decimal, Decimal]) -> Valued:
        """Replay one trade whose Trade.moves() are `moves` (a caller replaying several currencies
        computes them once), under CONTEXT: the caller enters it, once for many records."""
        # The hottest code of a replay (twice per trade at two currencies): dict updates inlined.
        base_move, quote_move = moves
        base, quote, when = trade.base, trade.quote, trade.timestamp_ms
        if trade.side == "buy":
            given, given_qty, got, got_qty = quote, -quote_move, base, base_move
            quote_leg, base_leg = given_qty, got_qty
        else:
            given, given_qty, got, got_qty = base, -base_move, quote, quote_move
            quote_leg, base_leg = got_qty, given_qty
        currency = self.currency
        if quote == currency:
            value: Decimal | None = quote_leg
        elif base == currency:
            value = base_leg
        else:
            value = _trade_value(trade, quote_leg, self.currency, self.price_at)
        if value is None:
            self.unpriced += 1
            return _valued(Valued, (trade, None, None, (), None))
        holdings = self.holdings
        giver = holdings.get(given) or self._holding(given)
        realised = giver.give(given_qty, value, self.lots, self.parts)
        taken, short = giver.taken, giver.short  # before the receipt, which may be the same holding
        taker = holdings.get(got) or self._holding(got)
        if got_qty >= 0:
            taker.receive(got_qty, value, self.lots, when)
        else:
            # A trade whose fee and tax exceed what it receives (a dust sale) also gives that asset
            # away: the excess is disposed at its own value, so the whole loss lands on the asset given.
            taker.give(-got_qty, -value, self.lots)
        if given == currency:
            return _valued(Valued, (trade, value, None, (), short))
        return _valued(Valued, (trade, value, realised, tuple(taken) if taken else (), short))

    def transfer(self, transfer: Transfer) -> Valued:
        """Replay one transfer, under CONTEXT (as trade())."""
        asset = transfer.currency
        if asset is None:
            self.unattributed += 1
            return Valued(transfer, None, None)
        quantity = transfer.quantity
        rate = _unit_price(self.price_at, asset, self.currency, transfer.timestamp_ms)
        value = None if rate is None else quantity * rate
        if transfer.balance_type == "deposit":
            if value is None:
                self.unpriced += 1
                return Valued(transfer, None, None)
            self.net_deposits += value
            self._holding(asset).receive(quantity, value, self.lots, transfer.timestamp_ms)
        else:
            holding = self._holding(asset)
            holding.give(quantity, None, self.lots, self.parts)
            if value is None:
                self.unpriced += 1
            else:
                self.net_deposits -= value
            if asset != self.currency:
                return Valued(transfer, value, None, tuple(holding.taken), holding.short)
            return Valued(transfer, value, None, shortfall=holding.short)
        return Valued(transfer, value, None)

    def result(self, events: tuple[Valued, ...] = ()) -> CostBasis:
        """The cost basis over the records applied so far (with `events`, if they were kept)."""
        positions = {
            asset: Position(
                asset=asset,
                quantity=h.quantity,
                cost=h.cost,
                realised=h.realised,
                shortfalls=h.shortfalls,
                shortfall_quantity=h.shortfall_quantity,
                unmatched_proceeds=h.unmatched,
            )
            for asset, h in sorted(self.holdings.items())
        }
        return CostBasis(
            currency=self.currency,
            method=self.method,
            positions=positions,
            net_deposits=self.net_deposits,
            unpriced=self.unpriced,
            unattributed=self.unattributed,
            events=events,
        )
