"""A streaming OpenMetrics text writer for files that `promtool tsdb create-blocks-from openmetrics` reads.

OpenMetrics wants each metric family's samples contiguous, each series' samples together and in
increasing time order, and the file closed by `# EOF`. promtool 2.42 is lenient about the first two and,
worse, silently drops a sample that goes back in time, so this writer enforces all three itself and
raises instead of writing a file that would lose data. Nothing is kept but the names already written:
samples go to the stream series by series.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

from exporter.metrics.exposition import METRIC_TYPES, MetricType, Number, escape_label, format_stored, labels

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


class OrderError(ValueError):
    """Samples offered in an order OpenMetrics (or promtool) would reject or silently drop."""


def format_timestamp(ms: int) -> str:
    """A Unix time in ms as OpenMetrics seconds: `1700000000` or `1700000000.250`."""
    if ms < 0:
        raise ValueError(f"timestamp {ms} ms is before 1970; OpenMetrics files here never need one")
    seconds, rest = divmod(ms, 1000)
    return str(seconds) if rest == 0 else f"{seconds}.{rest:03d}"


@dataclass(frozen=True, slots=True)
class Written:
    """What a writer has put in its file so far."""

    families: int
    series: int
    samples: int
    first_ms: int | None
    last_ms: int | None


class OpenMetricsWriter:
    """Writes families one after another and, in each, whole series one after another."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._families: set[str] = set()
        self._family: str | None = None
        self._sample_name = ""
        self._header = ""
        self._series: set[str] = set()  # label texts of the open family: only its series, not the file's
        self._closed = False
        self.families = 0
        self.series_count = 0
        self.samples = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None

    def family(self, name: str, kind: MetricType, help_text: str) -> None:
        """Open a family (closing the one before); its HELP and TYPE are written with its first series."""
        self._check_open()
        if not _NAME.match(name):
            raise ValueError(f"metric name {name!r} is not valid")
        if kind not in METRIC_TYPES:
            raise ValueError(f"metric type {kind!r} is not one of {', '.join(METRIC_TYPES)}")
        if kind == "counter" and name.endswith("_total"):
            raise ValueError(f"counter family {name!r}: name it without _total, its samples carry it")
        if name in self._families:
            raise OrderError(f"family {name} written twice: each family's samples must be contiguous")
        self._families.add(name)
        self._family = name
        self._sample_name = name + "_total" if kind == "counter" else name
        # OpenMetrics escapes HELP text like a label value (0.0.4 leaves quotes alone).
        self._header = f"# HELP {name} {escape_label(help_text)}\n# TYPE {name} {kind}\n"
        self._series = set()

    def series(self, label_pairs: Sequence[tuple[str, str]], points: Iterable[tuple[int, Number]]) -> int:
        """Write one series of the open family: (time in ms, value) points in increasing time order.

        Returns how many samples were written; a series with no points writes nothing.
        """
        self._check_open()
        if self._family is None:
            raise OrderError("a series was written before any family was opened")
        for name, _ in label_pairs:
            if not _LABEL.match(name) or name.startswith("__"):
                raise ValueError(f"label name {name!r} is not valid")
        label_text = labels(label_pairs)
        if label_text in self._series:
            raise OrderError(f"series {self._sample_name}{label_text} written twice")
        prefix = f"{self._sample_name}{label_text} "
        lines: list[str] = []
        first: int | None = None
        previous: int | None = None
        for ms, value in points:
            if previous is None:
                first = ms
            elif ms <= previous:
                raise OrderError(
                    f"series {self._sample_name}{label_text}: sample at {ms} ms after one at {previous} ms"
                )
            previous = ms
            lines.append(f"{prefix}{format_stored(value)} {format_timestamp(ms)}\n")
        if first is None or previous is None:
            return 0
        self._series.add(label_text)
        if self._header:
            self._out.write(self._header)
            self._header = ""
            self.families += 1
        self._out.write("".join(lines))
        self.series_count += 1
        self.samples += len(lines)
        if self.first_ms is None or first < self.first_ms:
            self.first_ms = first
        if self.last_ms is None or previous > self.last_ms:
            self.last_ms = previous
        return len(lines)

    def close(self) -> Written:
        """Write `# EOF` (without it promtool refuses the file) and return what was written."""
        self._check_open()
        self._out.write("# EOF\n")
        self._closed = True
        return self.written()

    def written(self) -> Written:
        """The counts so far."""
        return Written(self.families, self.series_count, self.samples, self.first_ms, self.last_ms)

    def _check_open(self) -> None:
        if self._closed:
            raise OrderError("the file is already closed by # EOF")
