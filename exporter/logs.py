"""Log setup in the Prometheus exporters' style: logfmt or JSON lines on stderr."""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
FORMATS = ("logfmt", "json")

# Attributes every LogRecord has; anything else was passed with extra= and is logged as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
        "level": {"WARNING": "warn", "CRITICAL": "error"}.get(record.levelname, record.levelname.lower()),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    fields.update((k, v) for k, v in record.__dict__.items() if k not in _STANDARD)
    if record.exc_info and record.exc_info[0] is not None:
        # One line: the exception type and text, never the frames' local variables.
        fields["err"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
    return fields


def _scalar(value: object) -> object:
    """The value as both formats show it: booleans, numbers and null as JSON spells them, else a string."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    # Decimals, non-finite floats (JSON has no NaN) and anything else: their text, quoted in JSON.
    return str(value)


def _logfmt_value(value: object) -> str:
    value = _scalar(value)
    # JSON's spelling, so tls=true in logfmt is "tls": true in JSON, and a missing value is null.
    text = json.dumps(value) if value is None or isinstance(value, bool) else str(value)
    if text and not any(c in text for c in ' ="\\\n\t'):
        return text
    return (
        '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'
    )


class LogfmtFormatter(logging.Formatter):
    """key=value pairs on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        fields = {key: _scalar(value) for key, value in _fields(record).items()}
        return json.dumps(fields, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "logfmt") -> None:
    """Send every log record to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # urllib3 logs every retry and connection at debug with full URLs; keep it to warnings.
    logging.getLogger("urllib3").setLevel(max(LEVELS[level], logging.WARNING))


class BoundedLog:
    """At most one line per key every `every` seconds; the next line says how many were held back.

    For failures that can repeat many times a second (a backfill meeting the same fault on every
    window): the first is logged at once, the rest at a rate a reader can follow.
    """

    def __init__(
        self, logger: logging.Logger, every: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *args: object) -> None:
        """Log `msg % args` unless a line of `key` was logged less than `every` seconds ago."""
        with self._lock:
            now = self._clock()
            last = self._last.get(key)
            if last is not None and now - last < self._every:
                self._held[key] = self._held.get(key, 0) + 1
                return
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            msg += " (and %d more like it in the last %gs)"
            args = (*args, held, self._every)
        self._logger.log(level, msg, *args)
