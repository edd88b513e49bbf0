"""End-to-end fixtures: the session's PC/SC stack, emulated cards behind vpcd.

Without pcscd + vpcd the tests are skipped, with the reason; under CI=true they fail instead,
so a CI image that lost a package cannot pass by skipping everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from cartesim.emulator.cards import load_card
from cartesim.harness.pytest_plugin.cards import CardSession
from cartesim.harness.stack.slots import VpcdSlot
from cartesim.harness.stack.stacks import Stack

if TYPE_CHECKING:  # pyscard may be missing: pcscd_available() says so, the fixtures skip
    from cartesim.core.transport.pcsc import PcscTransport

CPS_SLOT, VITALE_SLOT = 0, 1


@pytest.fixture
def pcscd(pcscd_free_slots: CardSession) -> Stack:
    """The session's PC/SC stack (private by default), with no plugin card in the vpcd slots:
    vpcd takes one client per port."""
    assert pcscd_free_slots.stack is not None
    return pcscd_free_slots.stack


def _served(profile: str, slot: int) -> Iterator[VpcdSlot]:
    served = VpcdSlot(slot, load_card(profile)).start()
    try:
        yield served
    finally:
        served.close()  # waits until pcscd shows the slot empty, for the next test


@pytest.fixture
def cps_vpcd(pcscd: Stack) -> Iterator[VpcdSlot]:
    """A fresh cps-roulette card in slot 0 (PIN 1234, unblock code 12345678)."""
    yield from _served("cps-roulette", CPS_SLOT)


@pytest.fixture
def vitale_vpcd(pcscd: Stack) -> Iterator[VpcdSlot]:
    """A fresh vitale-famille card in slot 1."""
    yield from _served("vitale-famille", VITALE_SLOT)


@pytest.fixture
def cps_pcsc(cps_vpcd: VpcdSlot) -> Iterator[PcscTransport]:
    """The CPS of ``cps_vpcd`` through pcscd."""
    with cps_vpcd.open() as t:
        yield t


@pytest.fixture
def vitale_pcsc(vitale_vpcd: VpcdSlot) -> Iterator[PcscTransport]:
    """The Vitale of ``vitale_vpcd`` through pcscd."""
    with vitale_vpcd.open() as t:
        yield t
