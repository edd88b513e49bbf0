"""SHA-256 (FIPS 180-4) from a given intermediate state: what a card does for PSO HASH.

The host hashes all the whole 64-byte blocks of a long message itself and sends the card the
intermediate state, the number of bits already hashed and the last, partial block; the card
finishes the hash. ``hashlib`` cannot start from a given state, hence this module.
"""

from __future__ import annotations

from math import isqrt

BLOCK = 64
STATE_SIZE = 32
_MASK = 0xFFFFFFFF


def _primes(n: int) -> list[int]:
    out: list[int] = []
    k = 2
    while len(out) < n:
        if all(k % p for p in out if p * p <= k):
            out.append(k)
        k += 1
    return out


def _icbrt(n: int) -> int:
    """The integer cube root of n (floor)."""
    x = 1 << ((n.bit_length() + 2) // 3)
    while True:
        y = (2 * x + n // (x * x)) // 3
        if y >= x:
            return x
        x = y


# FIPS 180-4 §4.2.2 and §5.3.3: the first 32 bits of the fractional parts of the cube roots of
# the first 64 primes, and of the square roots of the first 8 primes.
_K = [_icbrt(p << 96) & _MASK for p in _primes(64)]
INITIAL_STATE = tuple(isqrt(p << 64) & _MASK for p in _primes(8))


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _MASK


def compress(state: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    """One SHA-256 compression step: the state after hashing one 64-byte ``block``."""
    if len(block) != BLOCK:
        raise ValueError("a SHA-256 block is 64 bytes")
    w = [int.from_bytes(block[i : i + 4], "big") for i in range(0, BLOCK, 4)]
    for t in range(16, 64):
        s0 = _rotr(w[t - 15], 7) ^ _rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
        s1 = _rotr(w[t - 2], 17) ^ _rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & _MASK)
    a, b, c, d, e, f, g, h = state
    for t in range(64):
        t1 = (h + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (~e & g)) + _K[t] + w[t]) & _MASK
        t2 = ((_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) & _MASK
        a, b, c, d, e, f, g, h = (t1 + t2) & _MASK, a, b, c, (d + t1) & _MASK, e, f, g
    return tuple((x + y) & _MASK for x, y in zip(state, (a, b, c, d, e, f, g, h), strict=True))


def state_from_bytes(raw: bytes) -> tuple[int, ...]:
    if len(raw) != STATE_SIZE:
        raise ValueError("a SHA-256 state is 32 bytes")
    return tuple(int.from_bytes(raw[i : i + 4], "big") for i in range(0, STATE_SIZE, 4))


def state_to_bytes(state: tuple[int, ...]) -> bytes:
    return b"".join(x.to_bytes(4, "big") for x in state)


def update(state: tuple[int, ...], blocks: bytes) -> tuple[int, ...]:
    """The state after hashing ``blocks`` (a whole number of 64-byte blocks)."""
    if len(blocks) % BLOCK:
        raise ValueError("update takes whole 64-byte blocks")
    for i in range(0, len(blocks), BLOCK):
        state = compress(state, blocks[i : i + BLOCK])
    return state


def finish(state: tuple[int, ...], hashed_bits: int, tail: bytes) -> bytes:
    """The digest of a message whose first ``hashed_bits`` bits gave ``state`` and whose
    remaining bytes are ``tail``: FIPS 180-4 §5.1.1 padding over the whole length."""
    if hashed_bits % (BLOCK * 8):
        raise ValueError("the hashed part must be a whole number of blocks")
    total_bits = hashed_bits + 8 * len(tail)
    padded = tail + b"\x80" + b"\x00" * ((55 - len(tail)) % BLOCK) + total_bits.to_bytes(8, "big")
    return state_to_bytes(update(state, padded))


def digest(message: bytes) -> bytes:
    return finish(INITIAL_STATE, 0, message)
