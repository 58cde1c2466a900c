"""Helpers shared by the simulator's tests: the signing test vector, a settable clock, signed requests."""

from __future__ import annotations

import requests

from exporter.signing import auth_headers, decode_private_key
from exporter.simulator import BALANCES_PATH, Simulator

# The signing test vector from btcturk-api-notes.md.
VECTOR_PUBLIC = "test-public-key"
VECTOR_PRIVATE = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz"
VECTOR_STAMP = 1735689600000
VECTOR_SIGNATURE = "7gyFGcOS+qnq46h/rl83VtpaEAsh8Th3Z3lQrF7g2I0="
TIMEOUT = 5.0


class FakeClock:
    """A settable clock, so windows and stamp checks are deterministic."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signed_get(
    sim: Simulator,
    offset_ms: int = 0,
    public: str = VECTOR_PUBLIC,
    private: str = VECTOR_PRIVATE,
    path: str = BALANCES_PATH,
    params: dict[str, str | list[str]] | None = None,
) -> requests.Response:
    """A GET signed with the simulator's own clock (plus offset_ms)."""
    stamp = round(sim.clock() * 1000) + offset_ms
    headers = auth_headers(public, decode_private_key(private), stamp)
    return requests.get(sim.url + path, headers=headers, params=params, timeout=TIMEOUT)


def assert_bearer_401(response: requests.Response) -> None:
    """Today's 401: empty body and a Bearer challenge."""
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
