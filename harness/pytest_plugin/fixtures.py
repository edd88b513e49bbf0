"""The cartesim pytest plugin (entry point ``pytest11``): emulated cards as fixtures.

The same test runs in-process (``--cartesim-transport=direct``, the default) or through a real
pcscd + vpcd (``--cartesim-transport=pcsc``). In pcsc mode one emulated card per vpcd slot lives
for the whole session; each test gets a fresh card by swapping the emulator behind the slot, not
by re-inserting it (pcscd notices an insertion only every ~400 ms).

Fixtures:
- ``cartesim``: a factory, ``cartesim.insert(profile, state=None, slot=None) -> InsertedCard``;
- ``cps_card`` / ``vitale_card``: the samples cps-roulette / vitale-famille, inserted;
- ``cps_transport``: the engine's transport to ``cps_card``;
- ``apdu_trace``: every exchange of this test's transports (codes redacted).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cartesim.core.trace import ListTracer
from cartesim.core.transport import Transport
from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.harness.control import settings as card_settings
from cartesim.harness.control.local import SlotCard

if TYPE_CHECKING:  # pyscard and pcscd are needed only with --cartesim-transport=pcsc
    from cartesim.emulator.vpcd import VpcdCard
    from cartesim.harness.stack.pcscd import Pcscd

TRANSPORTS = ("direct", "pcsc")
CARD_TIMEOUT = 5.0  # pcscd polls vpcd slots every 400 ms; generous for a loaded CI machine
CPS_SLOT, VITALE_SLOT = 0, 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cartesim", "cartesim emulated cards")
    group.addoption(
        "--cartesim-transport",
        choices=TRANSPORTS,
        default=os.environ.get("CARTESIM_TRANSPORT", "direct"),
        help="direct: the emulator in-process; pcsc: through pcscd + vpcd (default: direct)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"cartesim transport: {config.getoption('--cartesim-transport')}"


def unavailable(reason: str) -> None:
    """Skip for want of pcscd/vpcd; under CI=true fail, so CI cannot pass by skipping."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"pcscd/vpcd needed under CI: {reason}")
    pytest.skip(reason)


@dataclass
class InsertedCard:
    """An emulated card in a reader: ``os`` is the emulator (white-box), ``transport`` the engine's."""

    os: CardOS
    transport: Transport
    slot: int
    rig: Rig = field(repr=False)
    profile: str | Path = field(default="", repr=False)  # what reset() goes back to

    def remove(self) -> None:
        self.rig.remove(self)

    def insert(self) -> None:
        """Put the card back; ``transport`` is a new one afterwards."""
        self.rig.reinsert(self)

    def power_cycle(self) -> None:
        self.transport.power_cycle()

    # The calls of `cartesim card` (harness/control.py), on this card.
    def status(self) -> card_settings.CardStatus:
        """Tries left, blocked or not (never the codes)."""
        return card_settings.card_status(self.os)

    def set(self, *states: str) -> card_settings.CardStatus:
        """``"last-try"``, ``"blocked"``, ``"unblock-last-try"``, ``"definitively-blocked"``,
        ``"fresh"``, ``"pin_tries_left=N"``…, applied in order; the state file follows."""
        return card_settings.set_card(self.os, states)

    def reset(self) -> card_settings.CardStatus:
        """Back to the profile as issued: code porteur and counters."""
        return card_settings.reset_card(self.os, self.profile)

    def save_state(self, path: Path) -> Path:
        """The exact state (cartesim-state/1, 0600): for ``emulate --state-file`` or a scenario."""
        return card_settings.save_card_state(self.os, path)


class Rig:
    """Session-wide: the transport mode, and in pcsc mode pcscd and one vpcd card per slot."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.pcscd: Pcscd | None = None
        self.slots: dict[int, tuple[VpcdCard, SlotCard]] = {}
        self.present: dict[int, bool] = {}

    # --- pcsc plumbing ----------------------------------------------------------------------
    def _start_pcscd(self) -> None:
        from cartesim.harness.stack.pcscd import Pcscd, PcscdUnavailable, pcscd_available

        ok, why = pcscd_available()
        if not ok:
            unavailable(why)
        daemon = Pcscd()
        try:
            daemon.start()
        except PcscdUnavailable as e:
            unavailable(str(e))
        self.pcscd = daemon

    def _reader(self, slot: int) -> str:
        from cartesim.harness.stack.pcscd import vpcd_reader

        return vpcd_reader(slot)

    def _wait(self, slot: int, present: bool) -> None:
        from cartesim.core.transport.pcsc import wait_reader

        if wait_reader(self._reader(slot), present=present, timeout=CARD_TIMEOUT) is None:
            state = "present" if present else "absent"
            raise TimeoutError(f"{self._reader(slot)}: card not {state} after {CARD_TIMEOUT:g} s")

    def _open(self, slot: int) -> Transport:
        from cartesim.core.transport.pcsc import PcscTransport

        return PcscTransport(self._reader(slot), timeout=CARD_TIMEOUT)

    def _put(self, card: CardOS, slot: int) -> None:
        from cartesim.emulator.vpcd import VpcdCard

        if self.pcscd is None:
            self._start_pcscd()
        if slot not in self.slots:
            holder = SlotCard(card)
            served = VpcdCard.for_slot(holder, slot).start()
            self.slots[slot] = (served, holder)
            self._wait(slot, present=True)
            self.present[slot] = True
            return
        served, holder = self.slots[slot]
        if self.present[slot] and holder.atr == card.atr:
            holder.card = card  # same kind of card: swap it under pcscd's feet, no re-insertion
            return
        if self.present[slot]:
            served.remove()
            self._wait(slot, present=False)
        holder.card = card
        served.insert()
        self._wait(slot, present=True)
        self.present[slot] = True

    # --- API --------------------------------------------------------------------------------
    def insert(self, card: CardOS, slot: int) -> Transport:
        if self.mode == "direct":
            return DirectTransport(card)
        self._put(card, slot)
        return self._open(slot)

    def remove(self, inserted: InsertedCard) -> None:
        if self.mode == "direct":
            assert isinstance(inserted.transport, DirectTransport)
            inserted.transport.remove()
            return
        served, _ = self.slots[inserted.slot]
        served.remove()
        self._wait(inserted.slot, present=False)
        self.present[inserted.slot] = False

    def reinsert(self, inserted: InsertedCard) -> None:
        if self.mode == "direct":
            assert isinstance(inserted.transport, DirectTransport)
            inserted.transport.insert(inserted.os)
            return
        tracers = inserted.transport.tracers
        inserted.transport.close()
        self._put(inserted.os, inserted.slot)
        inserted.transport = self._open(inserted.slot)
        inserted.transport.tracers.extend(tracers)

    def ensure_pcscd(self) -> None:
        if self.pcscd is None:
            self._start_pcscd()

    def release(self) -> None:
        """Take every served card out of its slot (pcscd keeps running): the slots are free
        for another card process, such as ``cartesim emulate``."""
        for slot, (served, _) in list(self.slots.items()):
            served.stop()
            self._wait(slot, present=False)
        self.slots.clear()
        self.present.clear()

    def close(self) -> None:
        if self.pcscd is not None:
            self.release()
            self.pcscd.stop()


class CardFactory:
    """The ``cartesim`` fixture: insert emulated cards for one test."""

    def __init__(self, rig: Rig, trace: ListTracer) -> None:
        self.rig, self.trace = rig, trace
        self.cards: list[InsertedCard] = []

    @property
    def mode(self) -> str:
        return self.rig.mode

    def insert(self, profile: str | Path, state: Path | None = None, slot: int | None = None) -> InsertedCard:
        """Insert the card of ``profile`` (a path or a sample name) in ``slot`` (default: by kind)."""
        card = load_card(profile, state)
        if slot is None:
            slot = CPS_SLOT if card.pin is not None else VITALE_SLOT
        transport = self.rig.insert(card, slot)
        transport.tracers.append(self.trace)
        inserted = InsertedCard(card, transport, slot, self.rig, profile)
        self.cards.append(inserted)
        return inserted

    def close(self) -> None:
        for c in self.cards:
            c.transport.close()
            if self.rig.mode == "pcsc" and not self.rig.present.get(c.slot, True):
                self.rig.reinsert(c)  # leave every slot holding a card for the next test
                c.transport.close()


@pytest.fixture(scope="session")
def cartesim_rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    rig = Rig(request.config.getoption("--cartesim-transport"))
    yield rig
    rig.close()


@pytest.fixture
def pcscd_free_slots(cartesim_rig: Rig) -> Rig:
    """pcscd with the vpcd readers and no card of ours in them: for tests that run their own card
    process. Skips (fails under CI=true) without pcscd + vpcd."""
    cartesim_rig.ensure_pcscd()
    cartesim_rig.release()
    return cartesim_rig


@pytest.fixture
def apdu_trace() -> ListTracer:
    """Every APDU exchange of this test's cards, codes redacted."""
    return ListTracer()


@pytest.fixture
def cartesim(cartesim_rig: Rig, apdu_trace: ListTracer) -> Iterator[CardFactory]:
    factory = CardFactory(cartesim_rig, apdu_trace)
    yield factory
    factory.close()


@pytest.fixture
def cps_card(cartesim: CardFactory) -> InsertedCard:
    """The sample CPS (cps-roulette: PIN 1234, unblock code 12345678), fresh for this test."""
    return cartesim.insert("cps-roulette")


@pytest.fixture
def vitale_card(cartesim: CardFactory) -> InsertedCard:
    """The sample Carte Vitale (vitale-famille), fresh for this test."""
    return cartesim.insert("vitale-famille")


@pytest.fixture
def cps_transport(cps_card: InsertedCard) -> Transport:
    return cps_card.transport
