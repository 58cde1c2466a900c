"""A whole HTTP answer, as the transport hands it over and the error mapping reads it.

Apart from transport.py so that reading an answer (errors.py) does not import the HTTP stack: the
ledger's readers catch ApiError without ever making a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    """A whole HTTP answer: status, headers and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
