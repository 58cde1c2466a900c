"""Answers as the simulator builds them before they go on the wire, and the API's JSON envelopes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"
WWW_AUTHENTICATE = 'Bearer error="invalid_token"'
LEGACY_401 = {"success": True, "message": "Unauthorized - Invalid Nonce", "code": 1037}


@dataclass
class Response:
    """Status, body and headers of one answer."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def wrapped(data: Any, code: int | str = 0) -> dict[str, Any]:
    """The success envelope."""
    return {"data": data, "success": True, "message": None, "code": code}


def failure(message: str, code: int) -> dict[str, Any]:
    """The failure envelope."""
    return {"data": None, "success": False, "message": message, "code": code}


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    """Compact UTF-8 JSON (raw non-ASCII, as the real API sends "Türk Lirası")."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, body, {"Content-Type": JSON_TYPE, **(headers or {})})


def unauthorized(legacy: bool) -> Response:
    """Today's empty-bodied 401, or the older deployments' JSON one."""
    if legacy:
        return json_response(401, LEGACY_401)
    return Response(401, b"", {"WWW-Authenticate": WWW_AUTHENTICATE})


def guess_content_type(body: bytes) -> str:
    """A plausible Content-Type for a raw fault body."""
    head = body.lstrip()[:1]
    if head == b"<":
        return "text/html; charset=utf-8"
    if head in (b"{", b"["):
        return JSON_TYPE
    return "text/plain; charset=utf-8"


def _period(window: float) -> str:
    if window >= 60 and window % 60 == 0:
        return f"{int(window // 60)}m"
    return f"{window:g}s"


def _retry_after_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def too_many(limit: int, window: float, retry_after: float | None, body: bytes = b"") -> Response:
    """The 429 the API sends over a quota (or a fault's own 429 body)."""
    headers = {} if retry_after is None else {"Retry-After": _retry_after_text(retry_after)}
    if body:
        return Response(429, body, {"Content-Type": guess_content_type(body), **headers})
    period = _period(window)
    return json_response(
        429,
        {
            "message": "TOO_MANY_REQUESTS",
            "success": False,
            "code": 429,
            "details": f"Quota exceeded. Maximum allowed: {limit} per {period}.",
            "limit": str(limit),
            "period": period,
            "policy": "ip",
        },
        headers,
    )
