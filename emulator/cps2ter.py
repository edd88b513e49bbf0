"""The CPS2ter "volet" of the CPS3: the older CPS's files, reached with CLA A0.

What the public sources show of it (ANS's Cryptolib CPS): SELECT by file ID only
(A0 A4 00 00 02 <FID>), an FCI in tag 85 (size, FID, type), answers announced by 9F xx and
fetched with GET RESPONSE A0 C0 00 00 xx, its own status words (94 04 file not found...), the
situations at 3F00/4010..401F and the billing situation at 3F00/7F01/4000. cartesim keeps
cartesim's own situation encoding in them and asks the code porteur's security status (shared
with the IAS-ECC application) to read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cartesim.core import apdu as A
from cartesim.core.apdu import CommandApdu
from cartesim.core.layout import FID_MF
from cartesim.core.sw import SW
from cartesim.emulator.fs import DF, EF

Reply = tuple[bytes, int]
_TYPE_MF, _TYPE_DF, _TYPE_EF = 0x01, 0x02, 0x04


def _fci(node: EF | DF) -> bytes:
    """85 { size (2), FID (2), type }: the fields Cryptolib reads of a CPS2ter FCI."""
    size = len(node.content()) if isinstance(node, EF) else 0
    kind = _TYPE_EF if isinstance(node, EF) else _TYPE_MF if node.fid == FID_MF else _TYPE_DF
    fid = node.fid if node.fid is not None else 0
    body = size.to_bytes(2, "big") + fid.to_bytes(2, "big") + bytes((kind,))
    return bytes((0x85, len(body))) + body


@dataclass(eq=False)
class Volet:
    """The volet's file tree and its current file."""

    mf: DF
    current: EF | DF = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.mf

    def reset(self) -> None:
        self.current = self.mf

    def handlers(self, pin_verified: Callable[[], bool]) -> dict[int, Callable[[CommandApdu], Reply]]:
        return {
            A.INS_SELECT: self._select,
            A.INS_READ_BINARY: lambda cmd: self._read_binary(cmd, pin_verified()),
        }

    def _select(self, cmd: CommandApdu) -> Reply:
        if (cmd.p1, cmd.p2) != (0x00, 0x00):
            return b"", SW.WRONG_P1P2
        if len(cmd.data) != 2:
            return b"", SW.WRONG_LENGTH
        fid = int.from_bytes(cmd.data, "big")
        df = self.current if isinstance(self.current, DF) else self.current.parent
        assert df is not None
        # by FID: the MF, the current DF, its children, its parent and the parent's children
        candidates: list[EF | DF | None] = [self.mf if fid == FID_MF else None, df if df.fid == fid else None]
        candidates.append(df.child(fid))
        if df.parent is not None:
            candidates += [df.parent if df.parent.fid == fid else None, df.parent.child(fid)]
        target = next((c for c in candidates if c is not None), None)
        if target is None:
            return b"", SW.CPS2TER_FILE_NOT_FOUND
        self.current = target
        return _fci(target), SW.OK

    def _read_binary(self, cmd: CommandApdu, pin_verified: bool) -> Reply:
        if cmd.p1 & 0x80:
            return b"", SW.WRONG_P1P2
        if not isinstance(self.current, EF):
            return b"", SW.CPS2TER_FILE_NOT_FOUND
        ef = self.current
        if ef.read_pin is not None and not pin_verified:
            return b"", SW.CPS2TER_ACCESS_NOT_FULFILLED
        data, offset = ef.content(), (cmd.p1 << 8) | cmd.p2
        if offset >= len(data):
            return b"", SW.CPS2TER_OUT_OF_FILE
        return data[offset : offset + (cmd.le or 256)], SW.OK
