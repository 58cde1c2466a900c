"""Failed API calls: the reasons, ApiError, and how an HTTP answer becomes its JSON or an ApiError.

Every failure maps to one of REASONS; an error's text names the endpoint and status, never a secret.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from typing import Any

from exporter.api.answer import Answer
from exporter.api.parsing import BadResponse, NotJSON, decode_json

REASONS = ("auth", "forbidden", "rate_limited", "server_error", "timeout", "connection", "bad_response")
TRANSIENT = frozenset({"rate_limited", "server_error", "timeout", "connection"})

# Statuses whose Retry-After says when to come back.
_RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass
class ApiError(Exception):
    """A failed API call, mapped to one of REASONS; its text names the endpoint and status, never secrets."""

    reason: str
    endpoint: str
    status: int | None = None
    detail: str = ""
    retry_after: float | None = None
    # For failures without an answer: refused, dns, tls, timeout, reset or other.
    kind: str = ""

    def __str__(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "no response"
        detail = f": {self.detail}" if self.detail else ""
        return f"GET {self.endpoint}: {status} ({self.reason}){detail}"

    @property
    def transient(self) -> bool:
        """Whether retrying soon can help."""
        return self.reason in TRANSIENT


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date); None if absent or unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _status_reason(status: int) -> str:
    if status == 401:
        return "auth"
    if status == 403:
        return "forbidden"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "bad_response"


def answer_json(endpoint: str, answer: Answer, now: float) -> Any:
    """The JSON of a 200 answer; any other status, or a body that is not JSON, as an ApiError."""
    status, body = answer.status, answer.body
    if status != 200:
        retry_after = None
        if status in _RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(answer.headers.get("Retry-After"), now)
        detail = _error_detail(answer)
        if 300 <= status < 400 and answer.headers.get("Location"):
            # Usually http:// redirected to https://: say where, so api_url can be fixed.
            detail = f"redirect to {answer.headers['Location'][:100]} (not followed)"
        raise ApiError(_status_reason(status), endpoint, status, detail, retry_after)
    try:
        return decode_json(body)
    except NotJSON as exc:
        kind = answer.headers.get("Content-Type", "no content type").split(";")[0]
        raise ApiError("bad_response", endpoint, status, f"{exc} ({kind})") from None
    except BadResponse as exc:
        raise ApiError("bad_response", endpoint, status, str(exc)) from None


def _error_detail(answer: Answer) -> str:
    """A short, safe description of an error body: the API's message code, or what kind of body it was."""
    if not answer.body:
        return "empty body"
    try:
        payload = decode_json(answer.body)
    except BadResponse:
        kind = answer.headers.get("Content-Type", "unknown").split(";")[0]
        return f"non-JSON body ({kind})"
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])[:80].replace("\n", " ")
    return "JSON body"
