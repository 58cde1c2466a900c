"""Reading an answer's body: in chunks, never past a size cap or the attempt's deadline.

A body past the cap is no answer of the API's, and reading it whole would take that much memory; an error
body only feeds a one-line message, so it is cut short rather than refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import requests
import urllib3.exceptions

from exporter.api.network_errors import TransportError, network_failure
from exporter.api.watchdog import Watch

_CHUNK = 64 * 1024


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


@dataclass(frozen=True)
class BodyReader:
    """Reads bodies from one host, each read bounded by the per-read `timeout` and the attempt's end."""

    host: str
    timeout: float
    monotonic: Callable[[], float]

    def answer_body(
        self, response: requests.Response, end: float, watch: Watch, limit: int, error_limit: int
    ) -> bytes:
        """A 200's whole body (at most `limit` bytes); another status's, cut at `error_limit`, or empty."""
        if response.status_code == 200:
            return self.read(response, end, watch, limit)
        try:
            return self.read(response, end, watch, error_limit, truncate=True)
        except TransportError:
            response.close()
            return b""

    def read(
        self, response: requests.Response, end: float, watch: Watch, limit: int, truncate: bool = False
    ) -> bytes:
        """Read the body in chunks, never past `limit` bytes or the monotonic time `end`."""
        status = response.status_code
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > limit and not truncate:
            detail = f"body over {_size(limit)} (Content-Length {length})"
            raise TransportError("bad_response", "", detail, status)
        raw = response.raw
        parts: list[bytes] = []
        size = 0
        while True:
            left = end - self.monotonic()
            if left <= 0:
                raise self.timed_out()
            # Each read may block for the socket's timeout: never let it outlast the attempt.
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(min(self.timeout, left))
            try:
                chunk = raw.read1(_CHUNK, decode_content=True)
            except Exception as exc:
                raise self._failure(response, watch, exc) from None
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                if truncate:
                    parts.append(chunk[: limit - size])
                    response.close()
                    return b"".join(parts)
                raise TransportError("bad_response", "", f"body over {_size(limit)}", status)
            parts.append(chunk)
        if watch.expired:
            # A body without length or chunks ends at EOF, which a shut-down socket also gives.
            raise self.timed_out()
        watch.cancel()
        if sock is not None:
            # Back to the per-read timeout before the connection serves the next request.
            sock.settimeout(self.timeout)
        raw.release_conn()
        return b"".join(parts)

    def _failure(self, response: requests.Response, watch: Watch, exc: Exception) -> Exception:
        if watch.expired or isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return self.timed_out()
        if isinstance(exc, urllib3.exceptions.DecodeError):
            encoding = response.headers.get("Content-Encoding", "?")
            return TransportError("bad_response", "", f"body is not valid {encoding}", response.status_code)
        if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
            reason, kind, detail = network_failure(exc, self.host, self.timeout)
            return TransportError(reason, kind, f"reading the body: {detail}")
        return exc

    def timed_out(self) -> TransportError:
        """The failure of an answer not complete in time."""
        return TransportError(
            "timeout", "timeout", f"{self.host}: answer not complete within {self.timeout:g}s"
        )
