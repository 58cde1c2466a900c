"""An API key pair, the thing every signed request is made for, and the Secret that hides its private key.

Here in the api layer because the client signs with it; config builds Accounts from the file and the
BTCTURK_* variables.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.api.signing import decode_private_key

MASK = "********"


class Secret:
    """A secret string that never shows its value in repr, str or format."""

    # A plain class rather than a dataclass so dataclasses.asdict(config) cannot unwrap the value.
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value; call only where it is used, never to log or print."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))


@dataclass(frozen=True)
class Account:
    """One BTCTurk API key pair to poll."""

    name: str
    public_key: str
    private_key: Secret

    def private_key_bytes(self) -> bytes:
        """The decoded private key (load_config has already checked that it decodes)."""
        return decode_private_key(self.private_key.reveal())
