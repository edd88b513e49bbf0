"""DirectTransport: the in-process emulator as a card, no PC/SC involved (fast tests, CLI default)."""

from __future__ import annotations

import time
from typing import Protocol

from cartesim.core.errors import CardRemoved, LinkDropped
from cartesim.core.transport import Transport


class Card(Protocol):
    """What DirectTransport needs of a card: the emulator's CardOS satisfies it."""

    @property
    def atr(self) -> bytes: ...

    def process(self, raw: bytes) -> bytes: ...

    def reset(self) -> None: ...


class DirectTransport(Transport):
    def __init__(self, card: Card) -> None:
        super().__init__()
        self.card: Card | None = card
        self._out: Card | None = None  # a card pulled out by a fault, back at _back_at
        self._back_at: float | None = None

    def _card(self) -> Card:
        back = self._out is not None and self._back_at is not None and time.monotonic() >= self._back_at
        if self.card is None and back and self._out is not None:
            self.insert(self._out)
        if self.card is None:
            raise CardRemoved("Carte retirée")
        return self.card

    @property
    def atr(self) -> bytes:
        return self._card().atr

    def _exchange(self, command: bytes) -> bytes:
        card = self._card()
        try:
            return card.process(command)
        except CardRemoved as e:  # the card was pulled out (an injected fault)
            self.card, self._out = None, card
            self._back_at = None if e.reinsert_after is None else time.monotonic() + e.reinsert_after
            raise
        except LinkDropped:  # a power loss: the card is back at once, unpowered
            card.reset()
            raise

    def power_cycle(self) -> None:
        self._card().reset()

    def remove(self) -> None:
        self.card = None

    def insert(self, card: Card) -> None:
        card.reset()
        self.card, self._out, self._back_at = card, None, None
