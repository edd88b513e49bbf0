"""ATR parsing and card detection from the public ATRs."""

from __future__ import annotations

import pytest

from cartesim.core import layout
from cartesim.core.atr import CardKind, detect, protocols


@pytest.mark.parametrize(
    ("atr", "kind"),
    [
        ("3BAC00402A001225006480000310009000", CardKind.CPS),
        ("3B751300004509EA9000", CardKind.VITALE),
        ("3B751300004309EA9000", CardKind.VITALE),
        ("3B751300004709EA9000", CardKind.VITALE),
        ("3F65250024096A9000", CardKind.VITALE),  # Vitale 1, inverse convention
        ("3B751300004609EA9000", CardKind.UNKNOWN),
        ("3B8F8001804F0CA000000306030001000000006A", CardKind.UNKNOWN),
        ("", CardKind.UNKNOWN),
    ],
)
def test_detect(atr: str, kind: CardKind) -> None:
    assert detect(bytes.fromhex(atr)) is kind


def test_protocols() -> None:
    assert protocols(layout.ATR_CPS3) == {0}  # TD1 = 40: T=0
    assert protocols(layout.ATR_VITALE2) == {0}  # no TD1: T=0
    assert protocols(bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")) == {0, 1}
    assert protocols(bytes.fromhex("3BD518FF8091FE1FC38073C821100A")) == {0, 1, 15}  # TD1=80 names T=0 too
    assert protocols(b"\x3b") == {0}
