"""One account's replay kept between passes, so a new record costs its own work, not the history's.

`ReplayState` holds what a full replay builds up (costbasis.Replay per valuation currency, with its
holdings and lot books, a returns.UnitTrack per currency) and the position of the last record fed.
`feed()` takes records after that position; `figures()` is what a full replay over the same records
gives, to the last digit (tests/ledger/test_replay.py checks it for random histories split at random
points). The rules stay in costbasis and returns: this module only decides what is fed when.

Records are fed strictly in costbasis.order(). A record that lands at or before the last one fed
cannot be fed: `tail()` then answers None and the caller replays the history from the start. So does
a price that was missing for a fed record and is known now (`priced_since()`): the record was left
out as unpriced, and its figures would be wrong. Nothing is persisted: after a restart, the first pass
replays in full.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from types import MappingProxyType

from exporter.api.records import Trade, Transfer
from exporter.config.activity_settings import CostMethod
from exporter.ledger.costbasis import CONTEXT, CostBasis, PriceAt, Replay, order, order_key
from exporter.ledger.counters import LedgerCounters, Totals, count
from exporter.ledger.pricememo import Bucket, BucketMemo
from exporter.ledger.quantities import Quantities
from exporter.ledger.returns import UnitTrack
from exporter.ledger.store import Ledger

Key = tuple[int, int, int]
Record = Trade | Transfer


@dataclass(frozen=True)
class Figures:
    """What the records fed so far add up to; never changes once made."""

    cost_basis: Mapping[str, CostBasis]  # per valuation currency
    units: Mapping[str, Decimal | None]  # per valuation currency, the units outstanding (None: unknown)
    last_trade_ms: int | None


class Cursor:
    """How far one account's history has been fed: the last record's order key and how many."""

    __slots__ = ("fed", "last")

    def __init__(self) -> None:
        self.last: Key | None = None
        self.fed = 0

    def advance(self, records: list[Record]) -> None:
        """Count records (in order()) as fed; ValueError when the first is not after the last one fed."""
        if not records:
            return
        first = order_key(records[0])
        if self.last is not None and first <= self.last:
            raise ValueError(f"record {records[0].id} is not after the last one fed ({self.last})")
        self.last = max(first, order_key(records[-1]))
        self.fed += len(records)


def tail(ledger: Ledger, account: str, cursor: Cursor, *, openings: bool = False) -> list[Record] | None:
    """The account's records after `cursor`, in order; None when the ledger holds one at or before it
    that was not fed (it landed behind the cursor: only a full replay can take it). With `openings`,
    the account's opening positions count among its records (a replay takes them in; counters not)."""
    since = None if cursor.last is None else cursor.last[0]
    transfers = ledger.history_transfers if openings else ledger.transfers
    records = order([*ledger.trades(account, since), *transfers(account, since)])
    if cursor.last is not None:
        last = cursor.last
        records = [r for r in records if order_key(r) > last]
    # Records are only ever added (a rebuilt file is a new history): more than fed plus new means one
    # landed behind the cursor. Counted after the read, so one written meanwhile counts as behind.
    held = ledger.record_count(account) + (len(ledger.openings(account)) if openings else 0)
    if held != cursor.fed + len(records):
        return None
    return records


class ReplayState:
    """The replay of one account's history in each valuation currency, resumable record by record."""

    def __init__(
        self,
        currencies: Iterable[str],
        price_at: PriceAt,
        method: CostMethod = "average",
        bucket_ms: int = 1,
    ) -> None:
        """`bucket_ms`: price_at answers the same for every time in one bucket (misses are kept per
        bucket, so a history unpriced for a year is some 9,000 misses per pair, not one per record),
        and whatever the caller's decimal context (pricing.routes rounds in its own)."""
        self.currencies = tuple(c.upper() for c in currencies)
        self.method: CostMethod = method
        self.cursor = Cursor()
        self._price_at = price_at
        self._memo = BucketMemo(price_at, bucket_ms)
        noted = self._memo.price_at
        self._replays = [Replay(c, noted, method) for c in self.currencies]
        self._quantities = Quantities()
        self._tracks = [UnitTrack(c, noted, self._quantities) for c in self.currencies]
        self._last_trade_ms: int | None = None

    @property
    def misses(self) -> set[Bucket]:
        """The (asset, currency, bucket) a fed record lacked a price for."""
        return self._memo.misses

    def feed(self, records: Iterable[Record]) -> None:
        """Replay these records, every one after the last fed (ValueError otherwise)."""
        ordered = order(records)
        self.cursor.advance(ordered)  # first: a record behind the cursor feeds nothing
        replays, tracks, quantities = self._replays, self._tracks, self._quantities
        last_trade = self._last_trade_ms
        try:
            with localcontext(CONTEXT):
                # quantities.advance() inlined: its call and list per record cost a twentieth of a
                # two-currency replay (callgrind, CPython 3.11), and a full replay runs this per record.
                for record in ordered:
                    if isinstance(record, Trade):
                        moves = record.moves()  # once for every currency, and the quantities
                        for replay in replays:
                            replay.trade(record, moves)
                        quantities.trade(record, moves)  # trades issue no units: no track moves
                        if last_trade is None or record.timestamp_ms > last_trade:
                            last_trade = record.timestamp_ms
                    else:
                        for replay in replays:
                            replay.transfer(record)
                        for track in tracks:  # before the quantities move: units see what was held
                            track.apply(record)
                        quantities.transfer(record)
        finally:
            self._last_trade_ms = last_trade
            # Prices are remembered for one feed (a full replay's 30-day chunk) only: the routes
            # behind one are looked up once per hour and currency, not once per record and
            # currency, and a year of them is not kept in memory.
            self._memo.forget()

    def priced_since(self, price_at: PriceAt | None = None) -> bool:
        """Whether a price missing for a fed record is known now (by `price_at`, else the replay's)."""
        return self._memo.priced_since(price_at or self._price_at)

    def figures(self) -> Figures:
        """The figures over the records fed so far (a copy: feeding on does not change it)."""
        return Figures(
            cost_basis=MappingProxyType({replay.currency: replay.result() for replay in self._replays}),
            units=MappingProxyType({track.currency: track.units for track in self._tracks}),
            last_trade_ms=self._last_trade_ms,
        )


class Counting:
    """The ledger's counters (ledger/counters.py) of one account, kept between reads of its tail."""

    def __init__(self) -> None:
        self.cursor = Cursor()
        self.counters = LedgerCounters()
        self.numerator: frozenset[str] | None = None  # the commission flags the counters were made with

    def update(self, ledger: Ledger, account: str) -> Totals:
        """The totals over every record: those added since the last update counted onto the kept
        ones, or all of them again after a record landed behind the cursor or the commission flags
        changed (a counted fee then belongs to another asset: Trade.fee_asset)."""
        numerator = ledger.numerator_pairs()  # before the records: a change between them is seen next time
        new = tail(ledger, account, self.cursor) if numerator == self.numerator else None
        self.numerator = numerator
        if new is None:
            self.cursor, self.counters = Cursor(), LedgerCounters()
            new = tail(ledger, account, self.cursor)
            if new is None:  # written to while it was read: count it all, and start over next time
                return count([*ledger.trades(account), *ledger.transfers(account)])
        self.cursor.advance(new)
        for record in new:
            self.counters.add(record)
        # A copy a reader can keep while the counters go on counting.
        return {counted: dict(values) for counted, values in self.counters.totals.items()}
