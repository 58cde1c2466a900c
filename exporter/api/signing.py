"""Request signing for BTCTurk's private endpoints."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def decode_private_key(private_key: str) -> bytes:
    """Decode a base64 private key; raise ValueError (without the key) when it is not valid base64."""
    try:
        key = base64.b64decode(private_key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None
    if not key:
        raise ValueError("empty")
    return key


def sign(public_key: str, private_key: bytes, stamp_ms: int) -> str:
    """Return base64(HMAC-SHA256(private_key, public_key + stamp)) as the API expects in X-Signature."""
    message = f"{public_key}{stamp_ms}".encode()
    return base64.b64encode(hmac.new(private_key, message, hashlib.sha256).digest()).decode("ascii")


def auth_headers(public_key: str, private_key: bytes, stamp_ms: int) -> dict[str, str]:
    """Headers for one signed request; the one stamp value is both sent and signed."""
    return {
        "X-PCK": public_key,
        "X-Stamp": str(stamp_ms),
        "X-Signature": sign(public_key, private_key, stamp_ms),
    }
