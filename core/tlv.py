"""BER-TLV (ISO 7816-4 / X.690 subset): the one codec for every file cartesim writes or reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


class TlvError(ValueError):
    """Bytes that are not well-formed BER-TLV."""


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        return bool(_first_tag_byte(self.tag) & 0x20)

    def children(self) -> list[Tlv]:
        return decode(self.value)

    def to_bytes(self) -> bytes:
        return encode(self.tag, self.value)


def _first_tag_byte(tag: int) -> int:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")[0]


def encode_tag(tag: int) -> bytes:
    if tag < 0:
        raise TlvError("negative tag")
    raw = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    if raw[0] in (0x00, 0xFF):
        raise TlvError(f"tag {tag:X}: 00 and FF are padding, not tags")
    if len(raw) > 4:
        raise TlvError("tag longer than 4 bytes")
    if len(raw) == 1 and raw[0] & 0x1F == 0x1F:
        raise TlvError(f"tag {tag:02X} announces subsequent bytes but has none")
    if len(raw) > 1:
        if raw[0] & 0x1F != 0x1F:
            raise TlvError(f"multi-byte tag {tag:X} must start with low bits 1F")
        if any(b & 0x80 == 0 for b in raw[1:-1]) or raw[-1] & 0x80:
            raise TlvError(f"malformed multi-byte tag {tag:X}")
    return raw


def encode_length(n: int) -> bytes:
    if n < 0:
        raise TlvError("negative length")
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(raw) > 4:
        raise TlvError("length too large")
    return bytes((0x80 | len(raw),)) + raw


def encode(tag: int, value: bytes) -> bytes:
    return encode_tag(tag) + encode_length(len(value)) + value


def encode_all(items: list[Tlv]) -> bytes:
    return b"".join(t.to_bytes() for t in items)


def iter_decode(data: bytes) -> Iterator[Tlv]:
    """Yield the TLVs of ``data`` in order; 00/FF padding between objects is skipped."""
    i, n = 0, len(data)
    while i < n:
        if data[i] in (0x00, 0xFF):
            i += 1
            continue
        start = i
        i += 1
        if data[start] & 0x1F == 0x1F:
            while True:
                if i >= n:
                    raise TlvError("truncated tag")
                i += 1
                if data[i - 1] & 0x80 == 0:
                    break
                if i - start > 4:
                    raise TlvError("tag longer than 4 bytes")
        tag = int.from_bytes(data[start:i], "big")
        if i >= n:
            raise TlvError(f"tag {tag:X}: missing length")
        first = data[i]
        i += 1
        if first < 0x80:
            length = first
        elif first == 0x80:
            raise TlvError(f"tag {tag:X}: indefinite length is not supported")
        else:
            count = first & 0x7F
            if count > 4 or i + count > n:
                raise TlvError(f"tag {tag:X}: bad length field")
            length = int.from_bytes(data[i : i + count], "big")
            i += count
        if i + length > n:
            raise TlvError(f"tag {tag:X}: value runs past the end ({length} bytes announced)")
        yield Tlv(tag, bytes(data[i : i + length]))
        i += length


def decode(data: bytes) -> list[Tlv]:
    return list(iter_decode(data))


def find(items: list[Tlv], tag: int) -> Tlv | None:
    return next((t for t in items if t.tag == tag), None)


def find_all(items: list[Tlv], tag: int) -> list[Tlv]:
    return [t for t in items if t.tag == tag]
