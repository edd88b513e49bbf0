"""What the pytest plugins hand to tests: emulated cards in readers, and the session holding them.

Imported by the plugins only when a test needs a card (or ``--cartesim-transport=pcsc`` asks for
a PC/SC stack): it brings in the emulator, pydantic and yaml. Import the types from here to
annotate tests::

    from cartesim.harness.pytest_plugin.cards import CardFactory, InsertedCard
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cartesim.core.apdu import ApduCard
from cartesim.core.errors import NoService
from cartesim.core.trace import ListTracer
from cartesim.core.transport import Transport
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.harness.control import settings as card_settings
from cartesim.harness.control.socket import ENV_CONTROL
from cartesim.harness.pytest_plugin.shared import unavailable
from cartesim.harness.stack.private import PrivateStack
from cartesim.harness.stack.slots import CardSlot, InProcessSlot, VpcdSlot

if TYPE_CHECKING:  # pyscard and pcscd are needed only with --cartesim-transport=pcsc
    from cartesim.harness.stack.stacks import Stack

CPS_SLOT, VITALE_SLOT = 0, 1


@dataclass
class InsertedCard:
    """An emulated card in a reader: ``os`` is the emulator (white-box), ``transport`` the engine's."""

    os: CardOS
    transport: Transport
    slot: CardSlot = field(repr=False)
    profile: str | Path = field(default="", repr=False)  # what reset() goes back to

    def remove(self) -> None:
        self.slot.remove()

    def insert(self) -> None:
        """Put the card back; ``transport`` is a new one afterwards."""
        self.slot.insert()
        tracers = self.transport.tracers
        self.transport.close()
        self.transport = self.slot.open()
        self.transport.tracers.extend(tracers)

    def power_cycle(self) -> None:
        self.transport.power_cycle()

    # The calls of `cartesim card` (cartesim.harness.control), on this card.
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


class CardSession:
    """Session-wide: the transport mode, and in pcsc mode pcscd and one vpcd slot per number,
    kept from test to test (a card of the same kind is swapped in place: no wait for pcscd)."""

    def __init__(self, mode: str, pcscd: str = "private") -> None:
        self.mode = mode
        self.pcscd_mode = pcscd
        self.stack: Stack | None = None
        self.slots: dict[int, VpcdSlot] = {}
        self._saved_control: str | None = None
        self._started = False
        self.refused: str | None = None  # why this session has no stack, in one line

    def start_stack(self) -> None:
        """Start this session's PC/SC stack, or remember in one line why it cannot be had.

        Called as the session starts, before any test: pcsc-lite's client library reads the
        socket to use (``PCSCLITE_CSOCK_NAME``) once per process, at its first call. Once only:
        both plugins may ask."""
        if self._started:
            return
        self._started = True
        from cartesim.harness.stack.pcscd import pcscd_available
        from cartesim.harness.stack.stacks import new_stack

        if self.pcscd_mode == "system":
            ok, why = pcscd_available()
            if not ok:
                self.refused = why
                return
        stack = new_stack(self.pcscd_mode)
        try:
            stack.start()
        except NoService as e:  # a stack that cannot be had here: the reason, in one line
            hint = " (or --cartesim-pcscd=system)" if self.pcscd_mode == "private" else ""
            self.refused = f"{e}{hint}"
            return
        self.stack = stack
        if isinstance(stack, PrivateStack) and stack.folder is not None:
            # `cartesim emulate` and `card` run by this session's tests: their own control socket,
            # so that sessions side by side (xdist workers) never drive each other's cards.
            self._saved_control = os.environ.get(ENV_CONTROL)
            os.environ[ENV_CONTROL] = str(stack.folder / "control" / "control.sock")

    def ensure_pcscd(self) -> None:
        """The stack is there; else the test skips (fails under CI=true), saying why."""
        if self.stack is None:
            unavailable(self.refused or "no PC/SC stack in this session (--cartesim-transport=direct)")

    def insert(self, card: ApduCard, number: int) -> CardSlot:
        """``card`` in slot ``number``, seen by the reader."""
        if self.mode == "direct":
            return InProcessSlot(number, card)
        self.ensure_pcscd()
        slot = self.slots.get(number)
        if slot is None:
            slot = self.slots[number] = VpcdSlot(number, card).start()
        else:
            slot.replace(card)
        return slot

    def release(self) -> None:
        """Take every served card out of its slot (pcscd keeps running): the slots are free
        for another card process, such as ``cartesim emulate``."""
        for slot in self.slots.values():
            slot.close()
        self.slots.clear()

    def close(self) -> None:
        self.release()
        if self.stack is not None:
            self.stack.stop()
            if self._saved_control is None:
                os.environ.pop(ENV_CONTROL, None)
            else:
                os.environ[ENV_CONTROL] = self._saved_control


class CardFactory:
    """The ``cartesim`` fixture: insert emulated cards for one test."""

    def __init__(self, session: CardSession, trace: ListTracer) -> None:
        self.session, self.trace = session, trace
        self.cards: list[InsertedCard] = []

    @property
    def mode(self) -> str:
        return self.session.mode

    def insert(self, profile: str | Path, state: Path | None = None, slot: int | None = None) -> InsertedCard:
        """Insert the card of ``profile`` (a path or a sample name) in ``slot`` (default: by kind)."""
        card = load_card(profile, state)
        if slot is None:
            slot = CPS_SLOT if card.pin is not None else VITALE_SLOT
        held = self.session.insert(card, slot)
        transport = held.open()
        transport.tracers.append(self.trace)
        inserted = InsertedCard(card, transport, held, profile)
        self.cards.append(inserted)
        return inserted

    def close(self) -> None:
        for c in self.cards:
            c.transport.close()
