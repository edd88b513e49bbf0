"""The card operating system: APDU dispatch, file selection, security status and T=0 rules.

``CardOS.process`` takes any byte string and always answers a valid R-APDU; it never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from cartesim.core import apdu as A
from cartesim.core import layout, pins
from cartesim.core.apdu import ApduFormatError, CommandApdu
from cartesim.core.atr import protocols
from cartesim.core.sw import SW, SW1_MORE_DATA, SW1_WRONG_LE
from cartesim.emulator.faults import FaultPlan
from cartesim.emulator.fs import DF, EF, fci
from cartesim.emulator.pin import Pin, UnblockCode

log = logging.getLogger(__name__)

Reply = tuple[bytes, int]
Handler = Callable[[CommandApdu], Reply]


def _sw_only(sw: int) -> Reply:
    return b"", sw


@dataclass(eq=False)
class CardOS:
    """One card: its ATR, file system, PIN objects and volatile state."""

    atr: bytes
    mf: DF
    pin: Pin | None = None
    unblock: UnblockCode | None = None
    # Called whenever persistent state (codes, counters) changes, before the answer leaves.
    on_persist: Callable[[], None] | None = None
    # Faults from the profile; they may raise the transport errors of core.errors on purpose.
    faults: FaultPlan | None = None
    current: DF | EF = field(init=False)
    _pending: bytes = field(init=False, default=b"")
    _pending_cla: int = field(init=False, default=0x00)
    t0: bool = field(init=False)
    _table: dict[int, Handler] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.current = self.mf
        self.t0 = protocols(self.atr) == {0}
        self._table = self._handlers()

    # --- power ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Power off/on or warm reset: security status and selection go, counters stay."""
        self.current = self.mf
        self._pending = b""
        if self.pin:
            self.pin.verified = False
        if self.unblock:
            self.unblock.verified = False

    def _persist(self) -> None:
        if self.on_persist:
            self.on_persist()

    # --- entry point ------------------------------------------------------------------------
    def process(self, raw: bytes) -> bytes:
        if self.faults is not None:
            injected = self.faults.before()
            if injected is not None:
                return injected
        try:
            data, sw = self._process(bytes(raw))
        except Exception:  # a card never crashes; tests assert this path is never taken
            log.exception("card OS internal error")
            self._pending = b""
            data, sw = b"", SW.NO_PRECISE_DIAGNOSIS
        return data + int(sw).to_bytes(2, "big")

    def _process(self, raw: bytes) -> Reply:
        try:
            cmd = CommandApdu.parse(raw)
        except ApduFormatError:
            self._pending = b""
            return _sw_only(SW.WRONG_LENGTH)
        return self._route(cmd)

    def _route(self, cmd: CommandApdu) -> Reply:
        """The ISO command set under CLA 00; a card that knows other classes extends this."""
        if cmd.cla != 0x00:
            self._pending = b""
            return _sw_only(SW.CLA_NOT_SUPPORTED)
        return self._run(cmd, self._table, SW1_MORE_DATA)

    def _run(self, cmd: CommandApdu, table: dict[int, Handler], more_sw1: int) -> Reply:
        """Run ``cmd`` with the handlers of its class; ``more_sw1`` announces data for GET
        RESPONSE (61 for ISO, 9F for the CPS2ter volet)."""
        if cmd.ins == A.INS_GET_RESPONSE:
            return self._get_response(cmd, more_sw1)
        self._pending = b""
        handler = table.get(cmd.ins)
        if handler is None:
            return _sw_only(SW.INS_NOT_SUPPORTED)
        data, sw = handler(cmd)
        return self._deliver(cmd, data, sw, more_sw1)

    # --- T=0 / T=1 delivery -----------------------------------------------------------------
    def _deliver(self, cmd: CommandApdu, data: bytes, sw: int, more_sw1: int = SW1_MORE_DATA) -> Reply:
        if not data:
            return b"", sw
        if not self.t0:
            return data, sw
        if cmd.case == 2:
            # Case 2 on T=0: P3 is the exact length the reader will take; anything else is 6Cxx.
            if len(data) != cmd.le:
                return _sw_only((SW1_WRONG_LE << 8) | (len(data) & 0xFF))
            return data, sw
        # Cases 1, 3 and 4: T=0 cannot return data with the command; keep it for GET RESPONSE.
        self._pending, self._pending_cla = data, cmd.cla
        return _sw_only((more_sw1 << 8) | (len(data) & 0xFF))

    def _get_response(self, cmd: CommandApdu, more_sw1: int) -> Reply:
        if cmd.p1 or cmd.p2:
            self._pending = b""
            return _sw_only(SW.WRONG_P1P2)
        if cmd.data:
            self._pending = b""
            return _sw_only(SW.WRONG_LENGTH)
        pending = self._pending if cmd.cla == self._pending_cla else b""
        if not pending:
            return _sw_only(SW.CONDITIONS_NOT_SATISFIED)
        le = cmd.le or 256
        if le > len(pending):
            return _sw_only((SW1_WRONG_LE << 8) | (len(pending) & 0xFF))
        out, self._pending = pending[:le], pending[le:]
        if self._pending:
            return out, (more_sw1 << 8) | (len(self._pending) & 0xFF)
        return out, SW.OK

    # --- SELECT -----------------------------------------------------------------------------
    def _current_df(self) -> DF:
        node = self.current
        if isinstance(node, DF):
            return node
        assert node.parent is not None
        return node.parent

    def _select(self, cmd: CommandApdu) -> Reply:
        if cmd.p2 not in (0x00, 0x04, 0x0C):
            return _sw_only(SW.INCORRECT_P1P2)
        target: EF | DF | None
        if cmd.p1 == 0x00:  # MF, DF or EF by FID
            if not cmd.data:
                target = self.mf
            elif len(cmd.data) != 2:
                return _sw_only(SW.WRONG_LENGTH)
            else:
                target = self._by_fid(int.from_bytes(cmd.data, "big"))
        elif cmd.p1 == 0x02:  # EF under the current DF
            if len(cmd.data) != 2:
                return _sw_only(SW.WRONG_LENGTH)
            node = self._current_df().child(int.from_bytes(cmd.data, "big"))
            target = node if isinstance(node, EF) else None
        elif cmd.p1 == 0x04:  # DF name (AID)
            if not 1 <= len(cmd.data) <= 16:
                return _sw_only(SW.WRONG_LENGTH)
            target = self.mf.find_aid(cmd.data)
        elif cmd.p1 in (0x08, 0x09):  # path from the MF / from the current DF
            if not cmd.data or len(cmd.data) % 2:
                return _sw_only(SW.WRONG_LENGTH)
            target = self._by_path(cmd.data, self.mf if cmd.p1 == 0x08 else self._current_df())
        else:
            return _sw_only(SW.INCORRECT_P1P2)
        if target is None:
            return _sw_only(SW.FILE_NOT_FOUND)
        self.current = target
        if cmd.p2 == 0x0C:
            return _sw_only(SW.OK)
        return (target.fcp() if cmd.p2 == 0x04 else fci(target)), SW.OK

    def _by_fid(self, fid: int) -> EF | DF | None:
        if fid == layout.FID_MF:
            return self.mf
        df = self._current_df()
        found = df.child(fid)
        if found is None and df.parent is not None:
            # ISO 7816-4: the parent DF and its children are selectable by FID too.
            found = df.parent if df.parent.fid == fid else df.parent.child(fid)
        return found

    def _by_path(self, path: bytes, start: DF) -> EF | DF | None:
        node: EF | DF | None = start
        fids = [int.from_bytes(path[i : i + 2], "big") for i in range(0, len(path), 2)]
        if fids[0] == layout.FID_MF:
            node, fids = self.mf, fids[1:]
        for fid in fids:
            if not isinstance(node, DF):
                return None
            node = node.child(fid)
        return node

    # --- READ BINARY ------------------------------------------------------------------------
    def _read_binary(self, cmd: CommandApdu) -> Reply:
        if cmd.data:
            return _sw_only(SW.WRONG_LENGTH)
        if cmd.p1 & 0x80:  # short file identifier in P1 bits 1-5, offset in P2
            if cmd.p1 & 0x60 or cmd.p1 & 0x1F in (0, 0x1F):  # SFIs are 1..30
                return _sw_only(SW.INCORRECT_P1P2)
            ef = self._current_df().ef_by_sfi(cmd.p1 & 0x1F)
            if ef is None:
                return _sw_only(SW.FILE_NOT_FOUND)
            offset = cmd.p2
        else:
            if not isinstance(self.current, EF):
                return _sw_only(SW.COMMAND_NOT_ALLOWED)
            ef = self.current
            offset = (cmd.p1 << 8) | cmd.p2
        if ef.read_pin is not None and not (self.pin and self.pin.verified):
            return _sw_only(SW.SECURITY_NOT_SATISFIED)
        self.current = ef
        data = ef.content()
        if offset > len(data) or (offset == len(data) and data):
            return _sw_only(SW.WRONG_P1P2)
        le = cmd.le or 256
        return data[offset : offset + le], SW.OK

    # --- PIN commands -----------------------------------------------------------------------
    def _pin_for(self, ref: int) -> Pin | None:
        return self.pin if ref == layout.PIN_REF_PORTEUR else None

    def _verify(self, cmd: CommandApdu) -> Reply:
        if cmd.p1 != 0x00:
            return _sw_only(SW.INCORRECT_P1P2)
        if cmd.p2 == layout.PIN_REF_DEBLOCAGE and self.unblock is not None:
            if not cmd.data:
                return _sw_only(self.unblock.status())
            if len(cmd.data) != pins.UNBLOCK_DIGITS:
                return _sw_only(SW.WRONG_LENGTH)
            return _sw_only(self.unblock.verify(cmd.data, self._persist))
        pin = self._pin_for(cmd.p2)
        if pin is None:
            return _sw_only(SW.DATA_NOT_FOUND)
        if not cmd.data:
            return _sw_only(pin.status())
        if not pins.PIN_MIN_DIGITS <= len(cmd.data) <= pins.PIN_MAX_DIGITS:
            return _sw_only(SW.WRONG_LENGTH)
        return _sw_only(pin.verify(cmd.data, self._persist))

    def _change(self, cmd: CommandApdu) -> Reply:
        if cmd.p1 != 0x00:
            return _sw_only(SW.INCORRECT_P1P2)
        pin = self._pin_for(cmd.p2)
        if pin is None:
            return _sw_only(SW.DATA_NOT_FOUND)
        if not cmd.data:
            return _sw_only(SW.WRONG_LENGTH)
        return _sw_only(pin.change(cmd.data, self._persist))

    def _reset_retry_counter(self, cmd: CommandApdu) -> Reply:
        """P1=00: unblock code ‖ new PIN in one command (Cryptolib); P1=02: the new PIN only,
        the unblock code having been verified first (OpenSC's IAS-ECC driver)."""
        if cmd.p1 not in (0x00, 0x02):
            return _sw_only(SW.INCORRECT_P1P2)
        pin = self._pin_for(cmd.p2)
        if pin is None or self.unblock is None:
            return _sw_only(SW.DATA_NOT_FOUND)
        if cmd.p1 == 0x02:
            return _sw_only(self.unblock.reset_with_verified(cmd.data, pin, self._persist))
        return _sw_only(self.unblock.reset_retry_counter(cmd.data, pin, self._persist))

    def _handlers(self) -> dict[int, Handler]:
        """The instructions this card answers under CLA 00."""
        return {
            A.INS_SELECT: self._select,
            A.INS_READ_BINARY: self._read_binary,
            A.INS_VERIFY: self._verify,
            A.INS_CHANGE_REFERENCE_DATA: self._change,
            A.INS_RESET_RETRY_COUNTER: self._reset_retry_counter,
        }
