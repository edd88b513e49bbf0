"""DER encoders for the PKCS#15 (ISO 7816-15) files of the CPS3's application: ODF, TokenInfo,
AODF, PrKDF, CDF, DODF. Field order and tags follow PKCS#15 v1.1, as OpenSC decodes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from cartesim.core import tlv

# --- DER primitives --------------------------------------------------------------------------------
SEQUENCE = 0x30


def seq(*items: bytes) -> bytes:
    return tlv.encode(SEQUENCE, b"".join(items))


def octets(value: bytes) -> bytes:
    return tlv.encode(0x04, value)


def utf8(text: str) -> bytes:
    return tlv.encode(0x0C, text.encode())


def integer(n: int) -> bytes:
    return tlv.encode(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big", signed=False))


def boolean(value: bool) -> bytes:
    return tlv.encode(0x01, b"\xff" if value else b"\x00")


def enumerated(n: int) -> bytes:
    return tlv.encode(0x0A, bytes((n,)))


def null() -> bytes:
    return tlv.encode(0x05, b"")


def bits(flags: int) -> bytes:
    """A named-bit BIT STRING: flag bit i is bit i of the string (the first byte's top bit is 0),
    trailing zero bits dropped as DER wants."""
    if not flags:
        return tlv.encode(0x03, b"\x00")
    count = flags.bit_length()
    raw = bytearray((count + 7) // 8)
    for i in range(count):
        if flags >> i & 1:
            raw[i // 8] |= 0x80 >> (i % 8)
    return tlv.encode(0x03, bytes(((-count) % 8,)) + bytes(raw))


def context(n: int, content: bytes, constructed: bool = True) -> bytes:
    return tlv.encode((0xA0 if constructed else 0x80) | n, content)


def path(fids: bytes) -> bytes:
    """Path ::= SEQUENCE { efidOrPath OCTET STRING }"""
    return seq(octets(fids))


# --- flags as OpenSC names them ----------------------------------------------------------------------
class ObjectFlag(IntFlag):
    PRIVATE = 0x01
    MODIFIABLE = 0x02


class PinFlag(IntFlag):
    CASE_SENSITIVE = 0x01
    LOCAL = 0x02
    CHANGE_DISABLED = 0x04
    UNBLOCK_DISABLED = 0x08
    INITIALIZED = 0x10
    NEEDS_PADDING = 0x20
    UNBLOCKING_PIN = 0x40
    SO_PIN = 0x80


class PinType(IntEnum):
    BCD = 0
    ASCII_NUMERIC = 1
    UTF8 = 2


class KeyUsage(IntFlag):
    ENCRYPT = 0x01
    DECRYPT = 0x02
    SIGN = 0x04
    SIGN_RECOVER = 0x08
    WRAP = 0x10
    UNWRAP = 0x20
    VERIFY = 0x40
    VERIFY_RECOVER = 0x80
    DERIVE = 0x100
    NON_REPUDIATION = 0x200


class KeyAccess(IntFlag):
    SENSITIVE = 0x01
    EXTRACTABLE = 0x02
    ALWAYS_SENSITIVE = 0x04
    NEVER_EXTRACTABLE = 0x08
    LOCAL = 0x10


class TokenFlag(IntFlag):
    READ_ONLY = 0x01
    LOGIN_REQUIRED = 0x02
    PRN_GENERATION = 0x04
    EID_COMPLIANT = 0x08


class AlgorithmOperation(IntFlag):
    COMPUTE_CHECKSUM = 0x01
    COMPUTE_SIGNATURE = 0x02
    VERIFY_CHECKSUM = 0x04
    VERIFY_SIGNATURE = 0x08
    ENCIPHER = 0x10
    DECIPHER = 0x20
    HASH = 0x40
    GENERATE_KEY = 0x80


class OdfTag(IntEnum):
    PRIVATE_KEYS = 0xA0
    CERTIFICATES = 0xA4
    DATA_OBJECTS = 0xA7
    AUTH_OBJECTS = 0xA8


# --- files -------------------------------------------------------------------------------------------
def odf(entries: list[tuple[OdfTag, bytes]]) -> bytes:
    return b"".join(tlv.encode(tag, path(fids)) for tag, fids in entries)


@dataclass(frozen=True)
class Algorithm:
    """One supportedAlgorithms entry: PKCS#11 mechanism, operations, IAS-ECC algorithm reference."""

    reference: int
    mechanism: int
    operations: AlgorithmOperation
    algorithm_ref: int

    def encode(self) -> bytes:
        return seq(
            integer(self.reference),
            integer(self.mechanism),
            null(),
            bits(self.operations),
            integer(self.algorithm_ref),
        )


def token_info(
    serial: bytes, manufacturer: str, label: str, flags: TokenFlag, algorithms: list[Algorithm]
) -> bytes:
    return seq(
        integer(0),
        octets(serial),
        utf8(manufacturer),
        tlv.encode(0x80, label.encode()),  # label [0] UTF8String, implicit
        bits(flags),
        context(2, b"".join(a.encode() for a in algorithms)),
    )


def _common(label: str, flags: ObjectFlag, auth_id: int | None = None) -> bytes:
    body = utf8(label) + bits(flags)
    if auth_id is not None:
        body += octets(bytes((auth_id,)))
    return seq(body)


@dataclass(frozen=True)
class PinObject:
    label: str
    auth_id: int
    reference: int
    pin_flags: PinFlag
    min_length: int
    max_length: int
    stored_length: int
    flags: ObjectFlag = ObjectFlag.PRIVATE | ObjectFlag.MODIFIABLE
    unblocked_by: int | None = None  # the auth ID of the code that unblocks this one
    pad_char: int | None = None

    def encode(self) -> bytes:
        attributes = bits(self.pin_flags) + enumerated(PinType.ASCII_NUMERIC)
        attributes += integer(self.min_length) + integer(self.stored_length) + integer(self.max_length)
        attributes += tlv.encode(0x80, bytes((self.reference,)))  # pinReference [0]
        if self.pad_char is not None:
            attributes += octets(bytes((self.pad_char,)))
        return seq(
            _common(self.label, self.flags, self.unblocked_by),
            seq(octets(bytes((self.auth_id,)))),
            context(1, seq(attributes)),
        )


@dataclass(frozen=True)
class RsaKeyObject:
    label: str
    key_id: bytes
    usage: KeyUsage
    access: KeyAccess
    key_reference: int
    auth_id: int
    modulus_bits: int
    key_path: bytes
    flags: ObjectFlag = ObjectFlag.PRIVATE

    def encode(self) -> bytes:
        common_key = octets(self.key_id) + bits(self.usage) + boolean(True) + bits(self.access)
        common_key += integer(self.key_reference)
        return seq(
            _common(self.label, self.flags, self.auth_id),
            seq(common_key),
            context(1, seq(path(self.key_path) + integer(self.modulus_bits))),
        )


@dataclass(frozen=True)
class CertificateObject:
    label: str
    cert_id: bytes
    cert_path: bytes

    def encode(self) -> bytes:
        return seq(
            _common(self.label, ObjectFlag(0)),
            seq(octets(self.cert_id)),
            context(1, seq(path(self.cert_path))),
        )


@dataclass(frozen=True)
class DataObject:
    label: str
    application: str
    data_path: bytes
    auth_id: int | None = None  # set: private, readable after that code

    def encode(self) -> bytes:
        flags = ObjectFlag.PRIVATE if self.auth_id is not None else ObjectFlag(0)
        return seq(
            _common(self.label, flags, self.auth_id),
            seq(utf8(self.application)),
            context(1, path(self.data_path)),
        )
