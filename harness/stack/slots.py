"""A card in a reader, and the engine's transport to it: the one way the harness puts cards in slots.

``CardSlot`` is a reader slot holding an emulated card. Two kinds, one interface:

- ``InProcessSlot``: the card in this process (``DirectTransport``), removed and put back at once;
- ``VpcdSlot``: the card served on a vpcd slot by a thread of this process, seen through pcscd;
  every change waits until PC/SC shows it, so the next PC/SC client sees what it expects.

Both hold the card in a ``SwappableCard``: the demo, the benchmark, the scenarios, the pytest
plugin and the e2e tests all get their cards from here.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Generic, TypeVar

from cartesim.core.apdu import ApduCard
from cartesim.core.errors import CardRemoved, LinkDropped, NoService
from cartesim.core.transport import Transport
from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator import state as card_state
from cartesim.emulator.faults import CardPulled

if TYPE_CHECKING:  # pyscard is needed only for vpcd slots
    from cartesim.core.transport.pcsc import PcscTransport

# pcscd polls each vpcd slot about every 400 ms: a change shows within one poll; generous for a
# loaded machine.
CARD_TIMEOUT = 5.0
MSG_REMOVED = "Carte retirée"


C = TypeVar("C", bound=ApduCard)


class SwappableCard(Generic[C]):
    """The card a slot serves, replaceable behind the reader's back. vpcd keeps one card object
    per connection, so the card is swapped in here; the lock keeps a swap (or a control change)
    out of an APDU in progress."""

    def __init__(self, card: C) -> None:
        self.card = card
        self.lock = threading.Lock()

    @property
    def atr(self) -> bytes:
        with self.lock:
            return self.card.atr

    def process(self, raw: bytes) -> bytes:
        with self.lock:
            # A card bound to a state file answers each APDU in a session of its own: locked,
            # fresh from the file (other processes may use it between two APDUs).
            return card_state.serve(self.card, raw)

    def reset(self) -> None:
        with self.lock:
            self.card.reset()

    def swap(self, card: C) -> C:
        """Put ``card`` in, powered up afresh; return the card taken out."""
        with self.lock:
            old, self.card = self.card, card
            card.reset()
            return old


class CardSlot(ABC):
    """One reader slot holding an emulated card."""

    def __init__(self, slot: int, card: ApduCard) -> None:
        self.slot = slot
        self.holder: SwappableCard[ApduCard] = SwappableCard(card)
        self.present = True

    @property
    def card(self) -> ApduCard:
        return self.holder.card

    @abstractmethod
    def open(self) -> Transport:
        """A new transport to the card (the caller closes it)."""

    @abstractmethod
    def remove(self) -> None:
        """Take the card out; returns once the reader shows the slot empty."""

    @abstractmethod
    def insert(self) -> None:
        """Put the card back; returns once the reader shows it. Transports opened before are dead."""

    def replace(self, card: ApduCard) -> bool:
        """Put ``card`` in the slot instead. A card of the same kind (same ATR) goes in place,
        under the reader's feet: no removal, no wait. Returns whether the card was re-inserted
        (transports opened before are then dead)."""
        if self.present and card.atr == self.holder.atr:
            self.holder.swap(card)
            return False
        if self.present:
            self.remove()
        self.holder.swap(card)
        self.insert()
        return True

    @abstractmethod
    def pull(self) -> bytes:
        """Take the card out from inside an APDU (a card pulled mid-command): the reader's
        answer to that APDU, or the transport error it raises."""

    def settle(self) -> None:  # noqa: B027 - nothing to wait for in-process
        """After ``pull``: wait until the reader shows the slot empty."""

    def close(self) -> None:  # noqa: B027 - nothing to release in-process
        """Take the card out for good; the slot is free for another card process."""


class _InProcessReader:
    """What DirectTransport talks to for an InProcessSlot: the card when it is in, else a
    removal. A fault that pulls the card out may put it back after a while; a dropped link is
    a power loss, the card back at once, unpowered."""

    def __init__(self, slot: InProcessSlot) -> None:
        self._slot = slot

    def _card(self) -> SwappableCard:
        s = self._slot
        if not s.present and s.back_at is not None and time.monotonic() >= s.back_at:
            s.insert()
        if not s.present:
            raise CardRemoved(MSG_REMOVED)
        return s.holder

    @property
    def atr(self) -> bytes:
        return self._card().atr

    def process(self, raw: bytes) -> bytes:
        card = self._card()
        try:
            return card.process(raw)
        except CardPulled as e:
            self._slot.present = False
            self._slot.back_at = None if e.back_after is None else time.monotonic() + e.back_after
            raise
        except CardRemoved:
            self._slot.present = False
            raise
        except LinkDropped:
            card.reset()
            raise

    def reset(self) -> None:
        self._card().reset()


class InProcessSlot(CardSlot):
    def __init__(self, slot: int, card: ApduCard) -> None:
        super().__init__(slot, card)
        self.back_at: float | None = None  # a card pulled by a fault comes back then
        self._reader = _InProcessReader(self)

    def open(self) -> Transport:
        return DirectTransport(self._reader)

    def remove(self) -> None:
        self.present, self.back_at = False, None

    def insert(self) -> None:
        self.holder.reset()  # a card put in a reader is powered up afresh
        self.present, self.back_at = True, None

    def pull(self) -> bytes:
        self.remove()
        raise CardRemoved(MSG_REMOVED)  # in-process, "no answer" is the transport's error


class VpcdSlot(CardSlot):
    """The card served on vpcd slot ``slot`` (port 35963 + slot) and seen by pcscd as
    ``Virtual PCD 00 0N``. ``start()`` returns once PC/SC shows the card."""

    def __init__(self, slot: int, card: ApduCard, *, timeout: float = CARD_TIMEOUT) -> None:
        from cartesim.emulator.vpcd import VpcdCard
        from cartesim.harness.stack.pcscd import vpcd_reader

        super().__init__(slot, card)
        self.reader = vpcd_reader(slot)
        self.timeout = timeout
        self.served = VpcdCard.for_slot(self.holder, slot)

    def start(self) -> VpcdSlot:
        self.served.start()
        try:
            if not self.served.wait_present(self.timeout):
                raise NoService(f"vpcd slot {self.slot} ({self.served.address}) busy or not answering")
            self._wait(present=True)
        except BaseException:
            self.served.stop()
            raise
        return self

    def _wait(self, present: bool) -> None:
        from cartesim.core.transport.pcsc import wait_reader

        if wait_reader(self.reader, present=present, timeout=self.timeout) is None:
            state = "présente" if present else "absente"
            raise NoService(f"« {self.reader} » : carte non {state} après {self.timeout:g} s")

    def open(self) -> PcscTransport:
        from cartesim.core.transport.pcsc import PcscTransport

        return PcscTransport(self.reader, timeout=self.timeout)

    def remove(self) -> None:
        self.served.remove()
        self.settle()

    def insert(self) -> None:
        self.served.insert()
        self._wait(present=True)
        self.present = True

    def pull(self) -> bytes:
        # Runs on the serving thread: remove() only shuts the socket down (no join, no
        # deadlock); the reply then fails to send and the thread waits for insert().
        self.served.remove()
        return b""

    def settle(self) -> None:
        self.present = False
        self._wait(present=False)

    def close(self) -> None:
        self.served.stop()
        if self.present:
            self.settle()  # leave the slot visibly empty for the next user


def new_slot(mode: str, slot: int, card: ApduCard) -> CardSlot:
    """A slot of the ``mode`` transport ("direct" or "pcsc") holding ``card``, ready."""
    if mode == "pcsc":
        return VpcdSlot(slot, card).start()
    return InProcessSlot(slot, card)


@contextmanager
def card_in_reader(card: ApduCard, slot: int = 0) -> Iterator[Transport]:
    """``card`` served on vpcd slot ``slot`` and a PC/SC transport to it, until the block ends
    (pcscd must be running: see ``cartesim.harness.stack.pcscd``)."""
    served = VpcdSlot(slot, card).start()
    try:
        with served.open() as transport:
            yield transport
    finally:
        served.close()
