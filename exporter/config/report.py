"""The `report:` mapping of the configuration file: where `ledger report` and `holdings` cut time."""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter.describe import shown, type_name, unknown_key

REPORT_KEYS = ("timezone",)
# BTCTurk's users keep their books in Turkish time: a month ends at midnight in Istanbul, not in UTC.
DEFAULT_TIMEZONE = "Europe/Istanbul"


@dataclass(frozen=True)
class ReportSettings:
    """Settings of the ledger's reports."""

    timezone: str = DEFAULT_TIMEZONE  # an IANA zone name; periods and dates are cut in it


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone `name`; ValueError saying what is wrong otherwise."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {shown(name)} (an IANA name: Europe/Istanbul, UTC)") from None


def parse_report(raw: object, problems: list[str]) -> ReportSettings | None:
    """ReportSettings from the `report:` mapping (None or absent: the defaults); problems appended."""
    if raw is None:
        return ReportSettings()
    if not isinstance(raw, Mapping):
        problems.append(f"report: expected a mapping of settings, got {type_name(raw)}")
        return None
    data: Mapping[str, Any] = raw
    before = len(problems)
    problems.extend(unknown_key("report.", key, REPORT_KEYS) for key in data if key not in REPORT_KEYS)
    name = data.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(name, str):
        problems.append(f"report.timezone: expected an IANA time zone name, got {type_name(name)}")
    else:
        try:
            zone(name)
        except ValueError:
            problems.append(
                f"report.timezone: unknown time zone {shown(name)} (an IANA name: Europe/Istanbul, UTC)"
            )
    if len(problems) > before:
        return None
    return ReportSettings(timezone=name)
