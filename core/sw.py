"""Status words: the one table of what a card answers and what it means."""

from __future__ import annotations

from enum import IntEnum


class SW(IntEnum):
    """ISO 7816-4 status words used by the emulator and understood by the engine."""

    OK = 0x9000
    WARN_EOF = 0x6282
    MEMORY_FAILURE = 0x6581  # only when the state file cannot be used (emulator.state.serve)
    WRONG_LENGTH = 0x6700
    SECURITY_NOT_SATISFIED = 0x6982
    AUTH_BLOCKED = 0x6983
    CONDITIONS_NOT_SATISFIED = 0x6985
    COMMAND_NOT_ALLOWED = 0x6986
    WRONG_DATA = 0x6A80
    FUNC_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    INCORRECT_P1P2 = 0x6A86
    LC_INCONSISTENT = 0x6A87
    DATA_NOT_FOUND = 0x6A88
    WRONG_P1P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00
    CHAINING_NOT_SUPPORTED = 0x6884
    # The CPS2ter volet's own words (CLA A0; ANS Cryptolib card-cps.c)
    CPS2TER_OUT_OF_FILE = 0x9402
    CPS2TER_FILE_NOT_FOUND = 0x9404
    CPS2TER_ACCESS_NOT_FULFILLED = 0x9804


# Families whose low byte carries a value.
SW1_MORE_DATA = 0x61  # 61xx: xx bytes wait for GET RESPONSE (T=0)
SW1_MORE_DATA_CPS2TER = 0x9F  # 9Fxx: the same in the CPS2ter volet (GET RESPONSE with CLA A0)
SW1_WRONG_LE = 0x6C  # 6Cxx: resend with Le = xx (T=0)
SW_COUNTER_BASE = 0x63C0  # 63Cx: verification failed, x tries left

_MEANINGS: dict[int, str] = {
    SW.OK: "success",
    SW.WARN_EOF: "end of file reached before Le bytes",
    SW.MEMORY_FAILURE: "memory failure",
    SW.WRONG_LENGTH: "wrong length",
    SW.SECURITY_NOT_SATISFIED: "security status not satisfied",
    SW.AUTH_BLOCKED: "authentication method blocked",
    SW.CONDITIONS_NOT_SATISFIED: "conditions of use not satisfied",
    SW.COMMAND_NOT_ALLOWED: "command not allowed",
    SW.WRONG_DATA: "incorrect data field",
    SW.FUNC_NOT_SUPPORTED: "function not supported",
    SW.FILE_NOT_FOUND: "file or application not found",
    SW.INCORRECT_P1P2: "incorrect P1-P2",
    SW.LC_INCONSISTENT: "Lc inconsistent with P1-P2",
    SW.DATA_NOT_FOUND: "referenced data not found",
    SW.WRONG_P1P2: "wrong parameters P1-P2 (offset outside the file)",
    SW.INS_NOT_SUPPORTED: "instruction not supported",
    SW.CLA_NOT_SUPPORTED: "class not supported",
    SW.NO_PRECISE_DIAGNOSIS: "no precise diagnosis",
    SW.CHAINING_NOT_SUPPORTED: "command chaining not supported",
    SW.CPS2TER_OUT_OF_FILE: "address outside the file (CPS2ter)",
    SW.CPS2TER_FILE_NOT_FOUND: "file not found (CPS2ter)",
    SW.CPS2TER_ACCESS_NOT_FULFILLED: "access condition not fulfilled (CPS2ter)",
}


def counter(tries_left: int) -> int:
    """63Cx for ``tries_left`` (0..15)."""
    return SW_COUNTER_BASE | (tries_left & 0x0F)


def tries_left(sw: int) -> int | None:
    """The x of a 63Cx status word, else None."""
    return sw & 0x0F if sw & 0xFFF0 == SW_COUNTER_BASE else None


def describe(sw: int) -> str:
    """A short English meaning of any status word, for errors and traces."""
    if sw in _MEANINGS:
        return _MEANINGS[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 in (SW1_MORE_DATA, SW1_MORE_DATA_CPS2TER):
        return f"{sw2 or 256} bytes available (GET RESPONSE)"
    if sw1 == SW1_WRONG_LE:
        return f"wrong Le, {sw2} bytes available"
    left = tries_left(sw)
    if left is not None:
        return f"verification failed, {left} tries left"
    return "unknown status"


def fmt(sw: int) -> str:
    return f"{sw:04X}"
