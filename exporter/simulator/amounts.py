"""Decimal helpers shared by the simulator's modules: conversion, rounding and the API's number format."""

from __future__ import annotations

import random
from decimal import ROUND_DOWN, Context, Decimal

ZERO = Decimal(0)
AMOUNT_QUANTUM = Decimal(1).scaleb(-16)
# Wide enough that quantizing a large balance to 16 places never raises InvalidOperation.
WIDE = Context(prec=80)


def to_decimal(value: Decimal | int | float | str) -> Decimal:
    """Accept ints, strs and floats from callers, so tests can write SimAsset("BTC", "Bitcoin", 1, 0)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # repr() keeps the float's shortest form instead of its full binary expansion.
        return Decimal(repr(value))
    return Decimal(value)


def quantize16(value: Decimal) -> Decimal:
    """Cut to the 16 fraction digits the balances endpoint shows."""
    return value.quantize(AMOUNT_QUANTUM, rounding=ROUND_DOWN, context=WIDE)


def round_down(value: Decimal, places: int) -> Decimal:
    """Cut to `places` fraction digits (an asset's precision), never rounding up into money not held."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN, context=WIDE)


def format_amount(value: Decimal, comma: bool = False) -> str:
    """Render an amount the way the balances endpoint does: plain notation, at most 16 fraction digits."""
    text = format(quantize16(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("", "-0"):
        text = "0"
    return text.replace(".", ",") if comma else text


def random_amount(rng: random.Random, low: float, high: float) -> Decimal:
    """A uniformly drawn amount in [low, high) with 16 fraction digits."""
    return Decimal(rng.randrange(int(low * 10**16), int(high * 10**16))).scaleb(-16)


def jitter(rng: random.Random, fraction: float) -> Decimal:
    """A factor drawn uniformly from 1 +- fraction."""
    return 1 + to_decimal(rng.uniform(-fraction, fraction))
