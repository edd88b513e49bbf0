"""Short command APDUs (ISO 7816-3 cases 1 to 4) and response APDUs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class ApduFormatError(ValueError):
    """Bytes that are not a short command APDU."""


@dataclass(frozen=True, slots=True)
class CommandApdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None  # None: no Le field; 1..256 otherwise (256 is sent as 00)

    def __post_init__(self) -> None:
        for name, value in (("cla", self.cla), ("ins", self.ins), ("p1", self.p1), ("p2", self.p2)):
            if not 0 <= value <= 0xFF:
                raise ApduFormatError(f"{name} out of range")
        if len(self.data) > 255:
            raise ApduFormatError("data longer than 255 bytes (extended APDUs are not supported)")
        if self.le is not None and not 1 <= self.le <= 256:
            raise ApduFormatError("Le out of range 1..256")

    @property
    def case(self) -> int:
        if self.data:
            return 4 if self.le is not None else 3
        return 2 if self.le is not None else 1

    def to_bytes(self) -> bytes:
        out = bytes((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out += bytes((self.le & 0xFF,))
        return out

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        """Parse a short APDU; raise ApduFormatError on anything else."""
        n = len(raw)
        if n < 4:
            raise ApduFormatError("shorter than a header")
        if n == 4:
            return _trusted(cls, raw, b"", None)
        if n == 5:
            return _trusted(cls, raw, b"", raw[4] or 256)
        lc = raw[4]
        if lc == 0:
            raise ApduFormatError("extended length APDUs are not supported")
        if n == 5 + lc:
            return _trusted(cls, raw, bytes(raw[5:]), None)
        if n == 6 + lc:
            return _trusted(cls, raw, bytes(raw[5:-1]), raw[-1] or 256)
        raise ApduFormatError("Lc does not match the APDU length")


_new = object.__new__
_set = object.__setattr__


def _trusted(cls: type[CommandApdu], raw: bytes, data: bytes, le: int | None) -> CommandApdu:
    """A CommandApdu from parsed bytes, without ``__post_init__``'s checks: bytes are in range
    and ``parse`` has checked the lengths. The card parses every APDU it gets, and through pcscd
    each microsecond spent here costs several in the round trip (README, Performance)."""
    apdu = _new(cls)
    _set(apdu, "cla", raw[0])
    _set(apdu, "ins", raw[1])
    _set(apdu, "p1", raw[2])
    _set(apdu, "p2", raw[3])
    _set(apdu, "data", data)
    _set(apdu, "le", le)
    return apdu


@dataclass(frozen=True)
class ResponseApdu:
    data: bytes = field(default=b"")
    sw: int = 0x9000

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def parse(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise ApduFormatError("response shorter than a status word")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))


class ApduCard(Protocol):
    """What answers APDUs as a card in a reader: the emulator's CardOS, or a card in a slot.

    ``process`` takes a raw command and returns the raw response (data‖SW). It may raise the
    engine's transport errors (CardRemoved, CardMute, LinkDropped): the reader telling what
    happened to the card."""

    @property
    def atr(self) -> bytes: ...

    def process(self, raw: bytes) -> bytes: ...

    def reset(self) -> None: ...


# Instruction bytes, named once.
INS_VERIFY = 0x20
INS_CHANGE_REFERENCE_DATA = 0x24
INS_RESET_RETRY_COUNTER = 0x2C
INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_GET_RESPONSE = 0xC0
INS_GET_DATA = 0xCA

# Commands whose data field carries a secret: traces and logs must redact it.
SECRET_INS = frozenset({INS_VERIFY, INS_CHANGE_REFERENCE_DATA, INS_RESET_RETRY_COUNTER})


def redact_hex(raw: bytes) -> str:
    """Hex of an APDU, secrets masked as '**' per byte."""
    if len(raw) > 5 and raw[1] in SECRET_INS:
        return raw[:5].hex().upper() + "**" * (len(raw) - 5)
    return raw.hex().upper()
