"""ATR parsing (ISO 7816-3) and card detection from the table of real ATRs."""

from __future__ import annotations

from enum import Enum

from cartesim.core import layout


class CardKind(str, Enum):
    """What a card is; its value is the profile's ``type`` and the JSON outputs' ``type``."""

    CPS = "cps"
    VITALE = "vitale"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        """How the French tools name it."""
        return {"cps": "CPS", "vitale": "Carte Vitale"}.get(self.value, "carte inconnue")


def protocols(atr: bytes) -> set[int]:
    """The protocols (0, 1, ...) an ATR offers; T=0 when no TD byte names one."""
    if len(atr) < 2:
        return {0}
    found: set[int] = set()
    y = atr[1] >> 4
    i = 2
    while True:
        i += bin(y & 0x7).count("1")  # TA, TB, TC present
        if not y & 0x8 or i >= len(atr):
            break
        td = atr[i]
        found.add(td & 0x0F)
        y = td >> 4
        i += 1
    return found or {0}


def detect(atr: bytes) -> CardKind:
    """Which card this is, from the public ATRs (docs/card-layout.md)."""
    if atr == layout.ATR_CPS3:
        return CardKind.CPS
    # Vitale 2: 3B 75 13 00 00 xx 09 EA 90 00 with xx in 43/44/45/47.
    v2 = layout.ATR_VITALE2
    same_frame = len(atr) == len(v2) and atr[:5] == v2[:5] and atr[6:] == v2[6:]
    if same_frame and atr[5] in layout.VITALE2_ATR_VARIANTS:
        return CardKind.VITALE
    # Vitale 1: 3F 65 25 00 xx 09 xx 90 00 (inverse convention).
    if len(atr) == 9 and atr[:4] == b"\x3f\x65\x25\x00" and atr[5] == 0x09 and atr[7:] == b"\x90\x00":
        return CardKind.VITALE
    return CardKind.UNKNOWN
