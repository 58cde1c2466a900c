"""The text formats' spelling (Prometheus 0.0.4 and OpenMetrics) and the gzip-member chunks of /metrics.

The live renderer and the backfill writer spell labels, HELP and numbers here, so the two formats
cannot drift apart where they agree; where they differ (HELP escaping, how a value is spelled) each
function says which format it is for and why.
"""

from __future__ import annotations

import gzip
import math
import sys
from collections.abc import Iterable, Sequence
from decimal import Context, Decimal
from functools import cached_property
from typing import Literal

from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Values are products of prices; more digits than a float64 holds would only grow the scrape.
_VALUE_CONTEXT = Context(prec=17)
_FLOAT_MAX = Decimal(sys.float_info.max)

# The metric types the exporter writes (the TYPE line), in both formats.
MetricType = Literal["gauge", "counter"]
METRIC_TYPES: tuple[MetricType, ...] = ("gauge", "counter")
Number = Decimal | int

# One sample to render: family name, rendered label set, value text.
Sample = tuple[str, str, str]


def escape_label(value: str) -> str:
    """Escape a label value (both formats), or OpenMetrics HELP text: backslash, newline, double quote."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    # 0.0.4 escapes only backslash and newline in HELP; a quote stays as it is.
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def header(name: str, kind: str, help_text: str) -> str:
    """The HELP and TYPE lines of a family in the 0.0.4 format."""
    return f"# HELP {name} {_escape_help(help_text)}\n# TYPE {name} {kind}\n"


def labels(pairs: Iterable[tuple[str, str]]) -> str:
    """A rendered label set, values escaped; nothing at all for no labels."""
    text = ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs)
    return "{" + text + "}" if text else ""


def format_decimal(value: Decimal) -> str:
    """Exact decimal text; Prometheus parses it as a float64."""
    return str(value)


def format_value(value: Number) -> str:
    """A computed value, rounded to what a float64 can carry; beyond its range, +Inf or -Inf."""
    if isinstance(value, int):
        return str(value)
    # Checked before rounding: plus() raises Overflow past the context's exponent limit, and Prometheus
    # refuses a whole scrape holding a number beyond float64 (amount times price can get there).
    if value.copy_abs() > _FLOAT_MAX:
        return "-Inf" if value.is_signed() else "+Inf"
    if not value:
        return "0"  # str() would spell a zero product with its exponent, 0E-7, and -0 with its sign
    return str(_VALUE_CONTEXT.plus(value))


def format_float(value: float) -> str:
    """A float in the text format's spelling (NaN, +Inf, 1e-05)."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    return text


def format_stored(value: Number) -> str:
    """A backfilled value as Prometheus will store it: the float64 nearest the Decimal, shortest spelling.

    The backfill file is read once into the TSDB, where only the float64 survives; the live scrape
    keeps the exact decimal text (format_value) because users read it.
    """
    if isinstance(value, int):
        return str(value)
    number = float(value)  # the one place a float appears: the TSDB stores float64
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number)


class Chunk:
    """A piece of exposition text and, computed on first use, its gzip member."""

    __slots__ = ("__dict__", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    @cached_property
    def gz(self) -> bytes:
        """This chunk as one gzip member; members concatenate into a valid gzip stream."""
        # mtime=0 keeps the bytes reproducible.
        return gzip.compress(self.raw, compresslevel=6, mtime=0)


EMPTY = Chunk(b"")


def chunks(families: Sequence[tuple[str, str]], samples: Iterable[Sample]) -> dict[str, Chunk]:
    """Group samples by family, one Chunk per family (empty when it has none)."""
    lines: dict[str, list[str]] = {name: [] for name, _ in families}
    for name, label_text, value in samples:
        lines[name].append(f"{name}{label_text} {value}\n")
    return {name: Chunk("".join(text).encode()) for name, text in lines.items()}
