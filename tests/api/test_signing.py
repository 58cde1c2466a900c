import pytest

from exporter.api.signing import auth_headers, decode_private_key, sign

PUBLIC = "test-public-key"
PRIVATE = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz"
STAMP = 1735689600000
EXPECTED = "7gyFGcOS+qnq46h/rl83VtpaEAsh8Th3Z3lQrF7g2I0="


def test_vector_from_the_api_notes() -> None:
    assert sign(PUBLIC, decode_private_key(PRIVATE), STAMP) == EXPECTED


def test_headers_send_the_stamp_that_was_signed() -> None:
    headers = auth_headers(PUBLIC, decode_private_key(PRIVATE), STAMP)
    assert headers == {"X-PCK": PUBLIC, "X-Stamp": str(STAMP), "X-Signature": EXPECTED}


def test_another_stamp_gives_another_signature() -> None:
    assert sign(PUBLIC, decode_private_key(PRIVATE), STAMP + 1) != EXPECTED


@pytest.mark.parametrize("bad", ["not base64!", "abc", "", "   "])
def test_invalid_private_key_is_rejected_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        decode_private_key(bad)
    assert bad.strip() == "" or bad not in str(info.value)
