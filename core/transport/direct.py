"""DirectTransport: the in-process emulator as a card, no PC/SC involved (fast tests, CLI default)."""

from __future__ import annotations

from typing import Protocol

from core.errors import CardRemoved
from core.transport import Transport


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

    def _card(self) -> Card:
        if self.card is None:
            raise CardRemoved("Carte retirée")
        return self.card

    @property
    def atr(self) -> bytes:
        return self._card().atr

    def _exchange(self, command: bytes) -> bytes:
        return self._card().process(command)

    def power_cycle(self) -> None:
        self._card().reset()

    def remove(self) -> None:
        self.card = None

    def insert(self, card: Card) -> None:
        card.reset()
        self.card = card
