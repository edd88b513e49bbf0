"""Hardware-free fixtures: emulated cards in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.transport.direct import DirectTransport
from emulator.cardos import CardOS
from harness.session import emulated_card

ROOT = Path(__file__).resolve().parent.parent
CARDS = ROOT / "fixtures" / "cards"
DATA = Path(__file__).resolve().parent / "data"


def apdu(card: CardOS, hexcmd: str) -> str:
    """Send one APDU given in hex (spaces allowed); the response as upper-case hex."""
    return card.process(bytes.fromhex(hexcmd)).hex().upper()


@pytest.fixture
def cps_os() -> CardOS:
    return emulated_card(CARDS / "cps-roulette.yaml")


@pytest.fixture
def vitale_os() -> CardOS:
    return emulated_card(CARDS / "vitale-famille.yaml")


@pytest.fixture
def cps_t(cps_os: CardOS) -> DirectTransport:
    return DirectTransport(cps_os)
