"""The requests Grafana's Prometheus data source sends for a panel query, reproduced for tests.

From Grafana's pkg/promlib (models/query.go, intervalv2, client.go) and the plugin SDK's gtime:
the interval is range / maxDataPoints rounded to a "nice" duration, at least the data source's
scrape interval (jsonData.timeInterval) and at least range / 11000 rounded; $__rate_interval is
max(interval + scrape interval, 4 x scrape interval); a range query's start and end are rounded
DOWN to a multiple of the step; an instant query runs at the end of the range, not rounded.

An annotation query (public/app/features/annotations/executeAnnotationQuery.ts) is a range query
asking for one point per pixel of the browser window, its `step` the minimum interval; Grafana's
Prometheus data source marks each step where a series is above 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter.durations import parse_duration_ms

Json = dict[str, Any]
# Grafana's variable syntaxes: $name, ${name}, ${name:format}, [[name]].
VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")

SAFE_RESOLUTION = 11000
# An annotation query asks for one point per pixel of the window (window.innerWidth): a common width.
WINDOW_WIDTH = 1920
# gtime.RoundInterval: (upper bound, rounded), in seconds.
ROUNDING = [
    (0.015, 0.01), (0.035, 0.02), (0.075, 0.05), (0.15, 0.1), (0.35, 0.2), (0.75, 0.5), (1.5, 1),
    (3.5, 2), (7.5, 5), (12.5, 10), (17.5, 15), (25, 20), (45, 30), (90, 60), (210, 120), (450, 300),
    (750, 600), (1050, 900), (1500, 1200), (2700, 1800), (5400, 3600), (9000, 7200), (16200, 10800),
    (32400, 21600), (86400, 43200), (604800, 86400), (1814400, 604800), (3628800, 2592000),
]  # fmt: skip


def substitute(expr: str, values: Mapping[str, str], *, strict: bool = True) -> str:
    """Expand Grafana variables; an unknown name raises KeyError, or stays as written if not strict."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in values:
            return values[name]
        if strict:
            raise KeyError(f"undefined variable ${name} in {expr!r}")
        return match.group()

    return VARIABLE.sub(replace, expr)


def variables(expr: str) -> set[str]:
    """Names of the Grafana variables the expression uses."""
    return {m.group(1) or m.group(2) or m.group(3) for m in VARIABLE.finditer(expr)}


def round_interval(seconds: float) -> float:
    """gtime.RoundInterval."""
    return next((rounded for bound, rounded in ROUNDING if seconds <= bound), 31536000)


def format_interval(seconds: float) -> str:
    """gtime.FormatInterval: the largest whole unit (1m, 30s, 500ms)."""
    for unit, size in (("y", 31536000), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(int(seconds * 1000), 1)}ms"


def go_duration(seconds: float) -> str:
    """time.Duration.String() for whole seconds, as Grafana writes $__rate_interval (2m0s)."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class GrafanaRequest:
    """One request to Prometheus's HTTP API, as Grafana would send it for one panel query."""

    path: str
    params: dict[str, str]


def step(range_s: float, max_data_points: int, min_interval_s: float) -> tuple[float, float]:
    """(interval, step): the frontend's interval, and the step the backend derives from it."""
    interval = max(round_interval(range_s / max_data_points), min_interval_s)
    return interval, max(interval, round_interval(range_s / SAFE_RESOLUTION))


def grafana_request(
    panel: Json, target: Json, values: dict[str, str], range_s: float, now: float, scrape_s: float
) -> GrafanaRequest:
    """The request for one target of `panel`, for a picker of `range_s` seconds ending at `now`."""
    max_data_points = int(panel.get("maxDataPoints") or 1500)  # 1500: Grafana's default resolution
    # The data source's timeInterval is the lower limit; the query's own `interval` (its min step)
    # overrides it (gtime.GetIntervalFrom), as a panel `interval` would.
    minimum = target.get("interval")
    min_s = parse_duration_ms(minimum, 2**63) / 1000 if minimum else scrape_s
    interval, step_s = step(range_s, max_data_points, min_s)
    grafana = {
        "__interval": format_interval(step_s),
        "__interval_ms": str(int(step_s * 1000)),
        "__range": f"{round(range_s)}s",
        "__range_s": str(round(range_s)),
        "__range_ms": str(int(range_s * 1000)),
        "__rate_interval": go_duration(max(interval + scrape_s, 4 * scrape_s)),
    }
    expr = substitute(target["expr"], {**values, **grafana})
    if target.get("instant") and not target.get("range"):
        return GrafanaRequest("query", {"query": expr, "time": f"{now:.3f}"})
    start = (now - range_s) // step_s * step_s
    end = now // step_s * step_s
    return GrafanaRequest(
        "query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s:g}"}
    )


def annotation_request(
    annotation: Json, values: dict[str, str], range_s: float, now: float, scrape_s: float
) -> GrafanaRequest:
    """The range query Grafana sends for a Prometheus annotation, in a WINDOW_WIDTH-pixel window."""
    target = {"expr": annotation["expr"], "range": True, "interval": annotation.get("step") or ""}
    return grafana_request({"maxDataPoints": WINDOW_WIDTH}, target, values, range_s, now, scrape_s)
