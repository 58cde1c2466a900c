"""The `activity:` mapping of the configuration file: parsed into ActivitySettings, one line per problem."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from exporter.api import budget
from exporter.api.records import ENDPOINTS
from exporter.config.activity_settings import COST_METHODS, SINCE_FORMS, ActivitySettings, check_since
from exporter.describe import shown, type_name, unknown_key
from exporter.durations import DurationError, format_duration, parse_duration_ms

ACTIVITY_KEYS = ("enabled", "since", "interval", "cost_basis", "page_cap", "request_deadline")
# An answer longer than this is no page size any API serves; a typo more likely (the real cap is
# undocumented, the simulator's 100).
MAX_PAGE_CAP = 10_000
# A day between syncs is already more than anyone would want to wait for a trade to show.
MAX_INTERVAL_S = 86_400.0
# A day of retrying one request is already more than any outage worth waiting out within a sync turn.
MAX_REQUEST_DEADLINE_S = 86_400.0


def _since(raw: object, problems: list[str]) -> str | None:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        got = f"{raw:g}" if isinstance(raw, float) else type_name(raw)
        problems.append(f"activity.since: must be {SINCE_FORMS}, got {got}")
        return None
    try:
        check_since(raw, round(time.time() * 1000))
    except ValueError as exc:
        problems.append(f"activity.since: {exc}")
        return None
    return raw.strip() if isinstance(raw, str) else str(raw)


def _duration(key: str, raw: object, example: str, maximum_s: float, problems: list[str]) -> float | None:
    """Seconds from a duration of the `activity:` mapping (Prometheus's syntax, or whole seconds)."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        got = f"{raw:g}" if isinstance(raw, float) else type_name(raw)
        problems.append(f"{key}: expected a duration such as {example}, got {got}")
        return None
    try:
        return parse_duration_ms(raw, round(maximum_s * 1000)) / 1000
    except DurationError as exc:
        problems.append(f"{key}: {exc}")
        return None


def _page_cap(raw: object, problems: list[str]) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 2 <= raw <= MAX_PAGE_CAP:
        got = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else type_name(raw)
        problems.append(f"activity.page_cap: expected a whole number from 2 to {MAX_PAGE_CAP}, got {got}")
        return None
    return raw


def parse_activity(
    raw: object, currencies: tuple[str, ...], share: float, graph_api_url: str, problems: list[str]
) -> ActivitySettings | None:
    """ActivitySettings from the `activity:` mapping (None or absent: the defaults); problems appended."""
    base = ActivitySettings(currencies=currencies, rate_limit_share=share, graph_api_url=graph_api_url)
    if raw is None:
        return base
    if not isinstance(raw, Mapping):
        problems.append(f"activity: expected a mapping of settings, got {type_name(raw)}")
        return None
    data: Mapping[str, Any] = raw
    before = len(problems)
    problems.extend(unknown_key("activity.", key, ACTIVITY_KEYS) for key in data if key not in ACTIVITY_KEYS)
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(f"activity.enabled: expected true or false, got {type_name(enabled)}")
    since = _since(data["since"], problems) if "since" in data else base.since
    interval: float | None = base.interval
    if "interval" in data:
        interval = _duration("activity.interval", data["interval"], "5m", MAX_INTERVAL_S, problems)
    deadline: float | None = base.request_deadline
    if "request_deadline" in data:
        deadline = _duration(
            "activity.request_deadline", data["request_deadline"], "2m", MAX_REQUEST_DEADLINE_S, problems
        )
    page_cap = _page_cap(data["page_cap"], problems) if "page_cap" in data else base.page_cap
    method = data.get("cost_basis", base.cost_basis)
    if method not in COST_METHODS:
        got = shown(method) if isinstance(method, str) else type_name(method)
        problems.append(f"activity.cost_basis: must be one of {', '.join(COST_METHODS)}, got {got}")
    if len(problems) > before:
        return None
    assert since is not None and interval is not None and page_cap is not None and deadline is not None
    return replace(
        base,
        enabled=enabled,
        since=since,
        interval=interval,
        cost_basis=method,
        page_cap=page_cap,
        request_deadline=deadline,
    )


def plan(accounts: int, settings: ActivitySettings) -> Sequence[budget.Use]:
    """Steady-state use of each activity budget: one read per account and endpoint per interval."""
    uses = [
        budget.Use(budget.BY_PATH[path], accounts, "account", settings.interval, settings.rate_limit_share)
        for path in ENDPOINTS.values()
    ]
    uses.append(
        budget.Use(
            budget.BY_NAME["exchangeinfo"], 1, "call", settings.market_interval, settings.rate_limit_share
        )
    )
    return uses


def summary_lines(settings: ActivitySettings, accounts: int) -> list[str]:
    """The --check-config lines of the activity settings and their planned use of the API."""
    if not settings.enabled:
        return ["activity: disabled (no transaction reads, no ledger file)"]
    lines = [
        "activity: enabled",
        f"  since: {settings.since}",
        f"  interval: {format_duration(settings.interval)}",
        f"  cost_basis: {settings.cost_basis}",
        f"  page_cap: {settings.page_cap} (an answer this long, or the longest seen, is read again)",
        f"  request_deadline: {format_duration(settings.request_deadline)} (one request with its retries)",
        f"  graph_api_url: {settings.graph_api_url}",
        "  planned API use once backfilled (the first backfill reads faster, within the same plan):",
    ]
    lines.extend(f"    {use.describe()}" for use in plan(accounts, settings))
    return lines
