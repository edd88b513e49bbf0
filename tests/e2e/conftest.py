"""End-to-end fixtures: pcscd (running, or started for the session), emulated cards behind vpcd.

Without pcscd + vpcd the tests are skipped, with the reason; under CI=true they fail instead,
so a CI image that lost a package cannot pass by skipping everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.emulator.vpcd import VpcdCard
from cartesim.harness.pytest_plugin.fixtures import CARD_TIMEOUT, Rig
from cartesim.harness.stack.pcscd import Pcscd, vpcd_reader

if TYPE_CHECKING:  # pyscard may be missing: pcscd_available() says so, the fixtures skip
    from cartesim.core.transport.pcsc import PcscTransport

CPS_SLOT, VITALE_SLOT = 0, 1


@pytest.fixture
def pcscd(pcscd_free_slots: Rig) -> Pcscd:
    """The plugin's pcscd (running, or started for the session), with no plugin card in the
    vpcd slots: vpcd takes one client per port."""
    assert pcscd_free_slots.pcscd is not None
    return pcscd_free_slots.pcscd


def _serve(card: CardOS, slot: int) -> Iterator[VpcdCard]:
    # Imported here: the pcsc transport needs pyscard, and pcscd_available() reports its absence.
    from cartesim.core.transport.pcsc import wait_reader

    served = VpcdCard.for_slot(card, slot).start()
    try:
        assert served.wait_present(CARD_TIMEOUT), f"vpcd never polled slot {slot}"
        yield served
    finally:
        served.stop()
        # pcscd notices a removal at its next poll: wait for it, or the next test could see
        # this card still "present" in the reader.
        wait_reader(vpcd_reader(slot), present=False, timeout=CARD_TIMEOUT)


@pytest.fixture
def cps_vpcd(pcscd: Pcscd) -> Iterator[VpcdCard]:
    """A fresh cps-roulette card in slot 0 (PIN 1234, unblock code 12345678)."""
    yield from _serve(load_card("cps-roulette"), CPS_SLOT)


@pytest.fixture
def vitale_vpcd(pcscd: Pcscd) -> Iterator[VpcdCard]:
    """A fresh vitale-famille card in slot 1."""
    yield from _serve(load_card("vitale-famille"), VITALE_SLOT)


def _open(slot: int) -> Iterator[PcscTransport]:
    from cartesim.core.transport.pcsc import PcscTransport

    transport = PcscTransport(vpcd_reader(slot), timeout=CARD_TIMEOUT)
    try:
        yield transport
    finally:
        transport.close()


@pytest.fixture
def cps_pcsc(cps_vpcd: VpcdCard) -> Iterator[PcscTransport]:
    """The CPS of ``cps_vpcd`` through pcscd."""
    yield from _open(CPS_SLOT)


@pytest.fixture
def vitale_pcsc(vitale_vpcd: VpcdCard) -> Iterator[PcscTransport]:
    """The Vitale of ``vitale_vpcd`` through pcscd."""
    yield from _open(VITALE_SLOT)
