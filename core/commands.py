"""ISO 7816-4 commands the engine uses, over any transport. Each returns data or raises."""

from __future__ import annotations

from cartesim.core import apdu as A
from cartesim.core import layout, tlv
from cartesim.core.apdu import CommandApdu, ResponseApdu
from cartesim.core.errors import CardError
from cartesim.core.sw import SW
from cartesim.core.transport import Transport

READ_CHUNK = 256


def check(op: str, resp: ResponseApdu) -> bytes:
    if resp.sw != SW.OK:
        raise CardError(op, resp.sw)
    return resp.data


def select_mf(t: Transport) -> None:
    check("SELECT MF", t.send(CommandApdu(0x00, A.INS_SELECT, 0x00, 0x0C, b"\x3f\x00")))


def select_aid(t: Transport, aid: bytes) -> None:
    check(f"SELECT {aid.hex().upper()}", t.send(CommandApdu(0x00, A.INS_SELECT, 0x04, 0x0C, aid)))


def select_path_apdu(*fids: int) -> CommandApdu:
    """SELECT by path from the MF (P1 08), no response data."""
    return CommandApdu(0x00, A.INS_SELECT, 0x08, 0x0C, b"".join(f.to_bytes(2, "big") for f in fids))


def select_path(t: Transport, *fids: int) -> ResponseApdu:
    """SELECT by path from the MF; returns the card's answer."""
    return t.send(select_path_apdu(*fids))


def read_binary(t: Transport, offset: int = 0, sfi: int | None = None) -> bytes:
    """The whole of the current (or short-id) file from ``offset``, in 256-byte reads."""
    out = b""
    op = "READ BINARY"
    while True:
        if sfi is not None and not out:
            cmd = CommandApdu(0x00, A.INS_READ_BINARY, 0x80 | sfi, offset, le=READ_CHUNK)
        else:
            pos = offset + len(out)
            cmd = CommandApdu(0x00, A.INS_READ_BINARY, pos >> 8, pos & 0xFF, le=READ_CHUNK)
        resp = t.send(cmd)
        if resp.sw == SW.WRONG_P1P2 and out:  # read exactly to the end of the file
            return out
        if resp.sw not in (SW.OK, SW.WARN_EOF):
            raise CardError(op, resp.sw)
        out += resp.data
        if len(resp.data) < READ_CHUNK or resp.sw == SW.WARN_EOF:
            return out
        if offset + len(out) > 0x7FFF:
            return out


def verify(t: Transport, ref: int, code: bytes | None = None) -> ResponseApdu:
    """VERIFY; without ``code`` this is the tries-left query."""
    return t.send(CommandApdu(0x00, A.INS_VERIFY, 0x00, ref, code or b""))


def change_reference_data(t: Transport, ref: int, old: bytes, new: bytes) -> ResponseApdu:
    return t.send(CommandApdu(0x00, A.INS_CHANGE_REFERENCE_DATA, 0x00, ref, old + new))


def reset_retry_counter(t: Transport, ref: int, unblock_code: bytes, new: bytes) -> ResponseApdu:
    return t.send(CommandApdu(0x00, A.INS_RESET_RETRY_COUNTER, 0x00, ref, unblock_code + new))


def get_data_sdo(t: Transport, sdo_class: int, ref: int, tag: int = layout.TAG_SDO_DOCP) -> ResponseApdu:
    """IAS-ECC GET DATA of a security data object's ``tag`` part:
    00 CB 3F FF { 4D { 70 { BF <class> <ref> { <tag> 80 } } } }."""
    header = tlv.encode((layout.TAG_SDO_HEADER << 16) | (sdo_class << 8) | ref, bytes((tag, 0x80)))
    data = tlv.encode(layout.TAG_SDO_EXTENDED_HEADER, tlv.encode(layout.TAG_SDO_TEMPLATE, header))
    return t.send(CommandApdu(0x00, layout.INS_GET_DATA_SDO, 0x3F, 0xFF, data, le=256))
