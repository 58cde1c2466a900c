"""Log lines: the same fields render as the same values in logfmt and in JSON."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest

from exporter.logs import BoundedLog, JsonFormatter, LogfmtFormatter


def record(**fields: object) -> logging.LogRecord:
    rec = logging.LogRecord("exporter", logging.INFO, __file__, 1, "started", None, None)
    rec.__dict__.update(fields)
    return rec


def logfmt(**fields: object) -> dict[str, str]:
    line = LogfmtFormatter().format(record(**fields))
    # Split on spaces outside quotes; the test values hold no quotes.
    pairs = [part.split("=", 1) for part in line.split(" ") if "=" in part]
    return {key: value for key, value in pairs}


def as_json(**fields: object) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(JsonFormatter().format(record(**fields)))
    return parsed


@pytest.mark.parametrize(
    ("value", "text", "decoded"),
    [
        (True, "true", True),
        (False, "false", False),
        (None, "null", None),
        (9788, "9788", 9788),
        (-3, "-3", -3),
        (1.5, "1.5", 1.5),
        (0.001, "0.001", 0.001),
    ],
)
def test_booleans_numbers_and_null_look_the_same_in_both_formats(
    value: object, text: str, decoded: object
) -> None:
    assert logfmt(field=value)["field"] == text
    got = as_json(field=value)["field"]
    assert got == decoded and type(got) is type(decoded)
    # Unquoted in JSON too: the raw line holds the same text as logfmt.
    assert f'"field": {text}' in JsonFormatter().format(record(field=value))


def test_the_start_line_fields_in_both_formats() -> None:
    fields = {"port": 9788, "accounts": 2, "tls": False, "demo": True}
    assert {k: logfmt(**fields)[k] for k in fields} == {
        "port": "9788",
        "accounts": "2",
        "tls": "false",
        "demo": "true",
    }
    assert {k: as_json(**fields)[k] for k in fields} == fields


@pytest.mark.parametrize(("value", "text"), [(Decimal("1.10"), "1.10"), (float("nan"), "nan")])
def test_other_values_are_their_text_in_both(value: object, text: str) -> None:
    assert logfmt(field=value)["field"] == text
    assert as_json(field=value)["field"] == text


def test_strings_stay_strings() -> None:
    assert 'field="a b"' in LogfmtFormatter().format(record(field="a b"))
    assert as_json(field="true")["field"] == "true"


def test_a_bounded_log_holds_back_repeats_and_says_how_many(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    bounded = BoundedLog(logging.getLogger("bounded"), 60.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="bounded"):
        for second in range(0, 130, 10):  # a line every 10 s for 2 minutes
            now[0] = second
            bounded.log(logging.WARNING, "a", "failed %s", "read")
        bounded.log(logging.WARNING, "b", "another key")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "failed read",
        "failed read (and 5 more like it in the last 60s)",
        "failed read (and 5 more like it in the last 60s)",
        "another key",
    ]
