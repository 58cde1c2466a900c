"""Injectable misbehaviours: what each kind is, and the book of armed faults."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# latency: answer after `seconds`; hang: hold the request `seconds`, then close without an answer;
# status: answer `status` with `body`; rate_limit: a 429 (with `retry_after` when given); reset: send half
# the answer, then a TCP RST; body: a 200 with raw `body`; auth / auth_json: a 401, empty or legacy JSON;
# gaps: graph-api's own answer with every `drop_every`-th candle left out (a gappy but "ok" answer).
FAULT_KINDS = frozenset(
    {"latency", "hang", "status", "rate_limit", "reset", "body", "auth", "auth_json", "gaps"}
)


@dataclass
class Fault:
    """A misbehaviour to inject; see FAULT_KINDS for what each kind does."""

    kind: str
    seconds: float = 0.0
    status: int = 500
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    drop_every: int = 2

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.drop_every < 1:
            raise ValueError("drop_every must be at least 1")
        body: object = self.body  # callers may pass a str despite the annotation
        if isinstance(body, str):
            self.body = body.encode("utf-8")


@dataclass
class _Armed:
    fault: Fault
    endpoint: str | None
    remaining: int | None


class FaultBook:
    """Armed faults, first armed first served; callers hold the simulator's lock."""

    def __init__(self) -> None:
        self._armed: list[_Armed] = []

    def arm(self, fault: Fault, endpoint: str | None, times: int | None) -> None:
        """Arm for one normalized path (None = all) for `times` requests (None = until cleared)."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for unlimited)")
        self._armed.append(_Armed(fault, endpoint, times))

    def clear(self) -> None:
        """Disarm every fault."""
        self._armed.clear()

    def take(self, path: str) -> Fault | None:
        """The fault this request meets, if any, counting down its remaining uses."""
        for armed in self._armed:
            if armed.endpoint is None or armed.endpoint == path:
                if armed.remaining is not None:
                    armed.remaining -= 1
                    if armed.remaining <= 0:
                        self._armed.remove(armed)
                return armed.fault
        return None


def fault_from_json(spec: Mapping[str, Any]) -> tuple[Fault, str | None, int | None]:
    """Read a fault, its endpoint and its count from the control API's JSON."""
    if "body_b64" in spec:
        body = base64.b64decode(spec["body_b64"], validate=True)
    else:
        body = str(spec.get("body", "")).encode("utf-8")
    retry_after = spec.get("retry_after")
    fault = Fault(
        kind=str(spec["kind"]),
        seconds=float(spec.get("seconds", 0.0)),
        status=int(spec.get("status", 500)),
        body=body,
        headers={str(k): str(v) for k, v in dict(spec.get("headers") or {}).items()},
        retry_after=None if retry_after is None else float(retry_after),
        drop_every=int(spec.get("drop_every", 2)),
    )
    endpoint = spec.get("endpoint")
    times = spec.get("times")
    return fault, None if endpoint is None else str(endpoint), None if times is None else int(times)
