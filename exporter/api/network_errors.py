"""Transport failures: TransportError, and requests/urllib3 exceptions mapped to a reason and a kind.

Reasons are from the client's list (timeout, connection, bad_response); kinds say what broke (refused,
dns, tls, timeout, reset, other). Details name the host and port, never a header.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

import requests
import urllib3.exceptions


@dataclass
class TransportError(Exception):
    """No usable answer; `sent` says whether the request went out (so it counts as an exchange)."""

    reason: str
    kind: str
    detail: str
    status: int | None = None
    sent: bool = True


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and every one it wraps (cause, context, urllib3's reason, exceptions in args)."""
    seen: list[BaseException] = []
    stack = [exc]
    while stack:
        current = stack.pop(0)
        if any(current is old for old in seen):
            continue
        seen.append(current)
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        inner.extend(current.args)
        stack.extend(e for e in inner if isinstance(e, BaseException))
    return seen


def network_failure(exc: BaseException, host: str, timeout: float) -> tuple[str, str, str]:
    """Map a requests/urllib3 exception chain to (reason, kind, one-line detail naming the host)."""
    chain = _chain(exc)

    def has(*types: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, types)), None)

    tls = has(ssl.SSLError)
    if tls is not None or isinstance(exc, requests.exceptions.SSLError):
        why = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or "handshake failed"
        return "connection", "tls", f"{host}: TLS failed ({why})"
    if has(socket.gaierror, urllib3.exceptions.NameResolutionError) is not None:
        return "connection", "dns", f"{host}: DNS lookup failed (no such host, or no resolver)"
    if has(ConnectionRefusedError) is not None:
        return "connection", "refused", f"{host}: connection refused"
    # urllib3's NewConnectionError subclasses ConnectTimeoutError for history's sake, whatever the
    # cause (network unreachable, say): like requests, only a real timeout counts as one.
    timed_out = any(
        isinstance(e, TimeoutError | urllib3.exceptions.TimeoutError)
        and not isinstance(e, urllib3.exceptions.NewConnectionError)
        for e in chain
    )
    if timed_out or isinstance(exc, requests.Timeout):
        connect = isinstance(exc, requests.ConnectTimeout) or any(
            type(e) is urllib3.exceptions.ConnectTimeoutError for e in chain
        )
        step = "connecting" if connect else "waiting for the answer"
        return "timeout", "timeout", f"{host}: timed out {step} (timeout {timeout:g}s)"
    if has(ConnectionResetError, BrokenPipeError, ConnectionAbortedError) is not None:
        return "connection", "reset", f"{host}: connection reset or closed before a whole answer"
    if has(urllib3.exceptions.ProtocolError) is not None:
        return "connection", "reset", f"{host}: connection broken before a whole answer"
    os_error = next((e for e in chain if type(e) is OSError or isinstance(e, ConnectionError)), None)
    if isinstance(os_error, OSError) and os_error.strerror:
        # e.g. "Network is unreachable", "No route to host": the system's words are the clearest.
        return "connection", "other", f"{host}: {os_error.strerror}"
    return "connection", "other", f"{host}: {type(exc).__name__}"
