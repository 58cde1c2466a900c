"""/api/v1/users/transactions/{trade,crypto,fiat}: an account's recorded history, as the API serves it.

Without dates an answer covers the last 30 days only; items come newest first; an answer holds at
most `cap` items, and when more match, the oldest beyond the cap are dropped (the client has to ask
again with an earlier window).

A test can make the answers hostile (`Served`): raw items served on an endpoint whatever the window
(one with a recorded id stands in for that record), and recorded ids left out; and (`FULL_MODES`) every
answer a full page whatever the window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.simulator.ledger import History, Trade, Transfer
from exporter.simulator.paths import CRYPTO_PATH, FIAT_PATH, TRADES_PATH

DEFAULT_WINDOW_MS = 30 * 86_400_000
DEFAULT_CAP = 100
TRADE_TYPES = frozenset({"buy", "sell"})
TRANSFER_TYPES = frozenset({"deposit", "withdrawal"})
TRANSACTION_PATHS = frozenset({TRADES_PATH, CRYPTO_PATH, FIAT_PATH})
# TEST-ONLY: answers that are full pages (`cap` items) whatever the window asked. `padded`: the window's
# records, then the endpoint's other records (outside the window, newest first; again from the newest
# when there are too few), as an API that ignores the dates once the window runs dry. `repeated`: the
# window's records over and over (an empty window stays empty), as a broken pager repeating its page.
FULL_MODES = frozenset({"padded", "repeated"})


class BadQuery(ValueError):
    """A query the API refuses with 400."""


def _ms(params: Mapping[str, Sequence[str]], key: str) -> int | None:
    values = params.get(key)
    if not values:
        return None
    text = values[0]
    if not text.isdigit() or len(text) > 16:
        raise BadQuery(f"{key}: expected Unix milliseconds, got {text[:20]!r}")
    return int(text)


def window(params: Mapping[str, Sequence[str]], now_ms: int) -> tuple[int, int]:
    """[start, end] in ms: 30 days up to now (or up to endDate) when a date is missing."""
    start, end = _ms(params, "startDate"), _ms(params, "endDate")
    end = now_ms if end is None else end
    start = end - DEFAULT_WINDOW_MS if start is None else start
    return start, end


def _wanted(params: Mapping[str, Sequence[str]], key: str, allowed: frozenset[str] | None = None) -> set[str]:
    values = {v.strip().lower() for value in params.get(key, []) for v in value.split(",") if v.strip()}
    if allowed is not None and values - allowed:
        raise BadQuery(f"{key}: expected {' or '.join(sorted(allowed))}")
    return values


def trades(
    history: History, params: Mapping[str, Sequence[str]], now_ms: int, cap: int
) -> list[dict[str, Any]]:
    """The items of /transactions/trade."""
    order_ids = params.get("orderId")
    if order_ids:
        if not order_ids[0].isdigit():
            raise BadQuery("orderId: expected a number")
        order_id = int(order_ids[0])
        return _newest([t for t in history.trades if t.order_id == order_id], cap)
    start, end = window(params, now_ms)
    types = _wanted(params, "type", TRADE_TYPES)
    symbols = _wanted(params, "symbol")
    pairs = {p.replace("_", "").upper() for p in params.get("pairSymbol", []) if p}
    chosen = [
        t
        for t in history.trades
        if start <= t.timestamp <= end
        and (not types or t.side in types)
        and (not symbols or t.numerator.lower() in symbols or t.denominator.lower() in symbols)
        and (not pairs or t.numerator + t.denominator in pairs)
    ]
    return _newest(chosen, cap)


def transfers(
    history: History, fiat: bool, params: Mapping[str, Sequence[str]], now_ms: int, cap: int
) -> list[dict[str, Any]]:
    """The items of /transactions/fiat (fiat True) or /transactions/crypto."""
    start, end = window(params, now_ms)
    types = _wanted(params, "type", TRANSFER_TYPES)
    symbols = _wanted(params, "symbol")
    chosen = [
        t
        for t in (history.fiat() if fiat else history.crypto())
        if start <= t.timestamp <= end
        and (not types or t.kind in types)
        and (not symbols or t.currency.lower() in symbols)
    ]
    return _newest(chosen, cap)


def _newest(records: Sequence[Trade | Transfer], cap: int) -> list[dict[str, Any]]:
    ordered = sorted(records, key=lambda r: (r.timestamp, r.id), reverse=True)
    return [r.to_json() for r in ordered[:cap]]


@dataclass
class Served:
    """TEST-ONLY hostile answers of one endpoint: raw `items` served in every answer (an item whose
    `id` is a recorded one's replaces it), the recorded ids in `hidden` left out, and with `reverse`
    the items oldest first."""

    items: list[dict[str, Any]] = field(default_factory=list)
    hidden: set[int] = field(default_factory=set)
    reverse: bool = False

    def apply(self, data: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The answer's items as this hostile server would send them."""
        extra = {item.get("id"): item for item in self.items}
        out = [extra.pop(item["id"], item) for item in data if item["id"] not in self.hidden]
        out += extra.values()
        return out[::-1] if self.reverse else out


def full_page(
    data: list[dict[str, Any]], everything: Sequence[Trade | Transfer], cap: int, mode: str
) -> list[dict[str, Any]]:
    """`data` made a full page of `cap` items the FULL_MODES `mode` way."""
    if mode not in FULL_MODES:
        raise ValueError(f"unknown full-page mode {mode!r}; expected one of {sorted(FULL_MODES)}")
    if mode == "repeated":
        filler = list(data)
    else:
        asked = {item["id"] for item in data}
        newest = sorted(everything, key=lambda r: (r.timestamp, r.id), reverse=True)
        filler = [r.to_json() for r in newest if r.id not in asked]
    out = list(data)
    while filler and len(out) < cap:
        out += filler[: cap - len(out)]
    return out


def answer(
    path: str,
    history: History,
    params: Mapping[str, Sequence[str]],
    now_ms: int,
    cap: int,
    served: Served | None = None,
    full: str | None = None,
) -> list[dict[str, Any]]:
    """The `data` of one transaction endpoint; `full` one of FULL_MODES, or None for honest pages."""
    if path == TRADES_PATH:
        data = trades(history, params, now_ms, cap)
        everything: Sequence[Trade | Transfer] = history.trades
    else:
        data = transfers(history, path == FIAT_PATH, params, now_ms, cap)
        everything = history.fiat() if path == FIAT_PATH else history.crypto()
    if full is not None:
        data = full_page(data, everything, cap, full)
    return data if served is None else served.apply(data)
