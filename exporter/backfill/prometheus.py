"""The live series in a Prometheus server: their `job` and `instance`, and when their samples begin.

A backfilled series joins the live one only when its labels are the very ones Prometheus attaches at
scrape time, and the two meet without overlap only when the file ends where the live samples begin.
Both are read from Prometheus's HTTP API (`/api/v1/series`, `/api/v1/query`), from the exporter's
`btcturk_exporter_build_info`, which every scrape carries whatever the polls do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import requests

LIVE_METRIC = "btcturk_exporter_build_info"
TIMEOUT_S = 10.0
# Earliest moment the search for the first live sample looks at: before BTCTurk's API or this exporter.
SEARCH_FROM_S = 1_262_304_000  # 2010-01-01T00:00:00Z


class PrometheusError(Exception):
    """Prometheus could not be asked, or its answer does not name one live target."""


@dataclass(frozen=True, slots=True)
class LiveTarget:
    """The scrape target's labels, and the time (ms) of its first sample in Prometheus."""

    job: str
    instance: str
    begins_ms: int


def live_target(
    url: str, job: str | None = None, instance: str | None = None, session: requests.Session | None = None
) -> LiveTarget:
    """The one live exporter target at `url` (narrowed by `job`/`instance` when given), and its start."""
    http = session or requests.Session()
    base = url.rstrip("/")
    matchers = ", ".join(
        f'{name}="{_quote(value)}"' for name, value in (("job", job), ("instance", instance)) if value
    )
    selector = f"{LIVE_METRIC}{{{matchers}}}"
    found = _get(http, base, "/api/v1/series", {"match[]": selector, "start": str(SEARCH_FROM_S)})
    series = found if isinstance(found, list) else []
    targets = sorted({(s.get("job", ""), s.get("instance", "")) for s in series if isinstance(s, dict)})
    if not targets:
        raise PrometheusError(
            f"{base} has no {selector} series: is it scraping the exporter (give --label.job and "
            "--label.instance to backfill without it)?"
        )
    if len(targets) > 1:
        listed = ", ".join(f"job={j} instance={i}" for j, i in targets)
        raise PrometheusError(
            f"{base} scrapes {len(targets)} exporter targets ({listed}): choose one with --label.job "
            "and --label.instance"
        )
    target_job, target_instance = targets[0]
    exact = f'{LIVE_METRIC}{{job="{_quote(target_job)}", instance="{_quote(target_instance)}"}}'
    now_s = _now_s(http, base)
    return LiveTarget(target_job, target_instance, _first_sample_ms(http, base, exact, now_s))


def _first_sample_ms(http: requests.Session, base: str, selector: str, now_s: float) -> int:
    """The time of the selector's first sample, to the millisecond, by bisection over count_over_time.

    `count_over_time(x[d])` at time t counts the samples in (t-d, t]: exact at the sample, where the
    series API answers per chunk. About 40 instant queries, each over one series.
    """
    lo_ms, hi_ms = SEARCH_FROM_S * 1000, int(now_s * 1000)
    if not _has_samples(http, base, selector, lo_ms, hi_ms):
        raise PrometheusError(f"{base} holds no sample of {selector} yet: let it scrape once, then run again")
    while hi_ms - lo_ms > 1:
        mid = (lo_ms + hi_ms) // 2
        if _has_samples(http, base, selector, lo_ms, mid):
            hi_ms = mid
        else:
            lo_ms = mid
    return hi_ms


def _has_samples(http: requests.Session, base: str, selector: str, after_ms: int, until_ms: int) -> bool:
    """Whether the series has a sample in (after_ms, until_ms]."""
    window_ms = until_ms - after_ms
    data = _get(
        http,
        base,
        "/api/v1/query",
        {"query": f"count_over_time({selector}[{window_ms}ms])", "time": f"{until_ms / 1000:.3f}"},
    )
    result = data.get("result") if isinstance(data, dict) else None
    return bool(result)


def _now_s(http: requests.Session, base: str) -> float:
    """Prometheus's own time: the evaluation time of `time()` with no time given."""
    data = _get(http, base, "/api/v1/query", {"query": "time()"})
    try:
        return float(data["result"][0])  # type: ignore[index]
    except (KeyError, IndexError, TypeError, ValueError):
        raise PrometheusError(f"{base}/api/v1/query: unexpected answer to time()") from None


def _get(http: requests.Session, base: str, path: str, params: Mapping[str, str]) -> object:
    try:
        answer = http.get(base + path, params=params, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise PrometheusError(f"{base}{path}: {type(exc).__name__}") from None
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise PrometheusError(f"{base}{path}: HTTP {answer.status_code}" + (f": {error}" if error else ""))
    return body.get("data")


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
