"""The card's SHA-256 compression step, from a given intermediate state (PSO HASH), against
hashlib and the NIST examples of FIPS 180-2 (appendix B)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartesim.emulator import sha256

# FIPS 180-2 appendix B: one-block, two-block and long messages, with their digests.
NIST = [
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]


@pytest.mark.parametrize(("message", "expected"), NIST, ids=["one-block", "two-block", "million-a"])
def test_nist_examples(message: bytes, expected: str) -> None:
    assert sha256.digest(message).hex() == expected
    assert hashlib.sha256(message).hexdigest() == expected


def test_nist_two_block_intermediate_state() -> None:
    """FIPS 180-2 B.2: the state after the first block, H(1), as the host would send it."""
    message = NIST[1][0]
    padded = message + b"\x80" + b"\x00" * ((55 - len(message)) % 64) + (len(message) * 8).to_bytes(8, "big")
    h1 = sha256.compress(sha256.INITIAL_STATE, padded[:64])
    assert (
        sha256.state_to_bytes(h1).hex() == "85e655d6417a17953363376a624cde5c76e09589cac5f811cc4b32c1f20e533a"
    )
    assert sha256.state_to_bytes(sha256.compress(h1, padded[64:])) == hashlib.sha256(message).digest()


def test_initial_state_and_constants_are_fips_180_4() -> None:
    assert sha256.state_to_bytes(sha256.INITIAL_STATE).hex().startswith("6a09e667bb67ae85")


@given(st.binary(max_size=700), st.data())
def test_finishing_from_any_intermediate_state_equals_hashlib(message: bytes, data: st.DataObject) -> None:
    """The host hashes whole blocks; the card finishes from the state and the bit count."""
    lowest = max(0, -(-(len(message) - sha256.BLOCK) // sha256.BLOCK))  # the card gets ≤ one block
    cut = data.draw(st.integers(lowest, len(message) // sha256.BLOCK)) * sha256.BLOCK
    head, tail = message[:cut], message[cut:]
    state = sha256.update(sha256.INITIAL_STATE, head)
    assert sha256.finish(state, len(head) * 8, tail) == hashlib.sha256(message).digest()


def test_state_round_trip_and_bad_sizes() -> None:
    state = sha256.update(sha256.INITIAL_STATE, b"x" * 128)
    assert sha256.state_from_bytes(sha256.state_to_bytes(state)) == state
    with pytest.raises(ValueError, match="64 bytes"):
        sha256.compress(state, b"short")
    with pytest.raises(ValueError, match="whole"):
        sha256.finish(state, 100, b"")
    with pytest.raises(ValueError, match="32 bytes"):
        sha256.state_from_bytes(b"\x00" * 31)
