"""The scenario's cards in their readers, in-process or behind pcscd + vpcd (``stack.slots``).

Each card is wrapped in an ``Interposer``, which can pull the card out of its reader at the
moment a chosen command arrives: before the card processes it, or after the card processed it
but before the answer leaves. That is "the card removed in the middle of an unblock".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from cartesim.core.apdu import ApduCard, redact_hex
from cartesim.core.trace import Tracer
from cartesim.core.transport import Transport
from cartesim.emulator.cardos import CardOS
from cartesim.harness.scenario.schema import RemoveWhen
from cartesim.harness.stack.slots import CardSlot, new_slot


class Interposer:
    """Stands between the reader and the card OS: an ApduCard that may pull itself out."""

    def __init__(self, card: CardOS) -> None:
        self.card = card
        self.pull: Callable[[], bytes] = self._no_pull  # set to the slot's pull
        self._armed: tuple[int, RemoveWhen] | None = None
        self.interrupted: str | None = None  # redacted hex of the command that lost its answer

    @staticmethod
    def _no_pull() -> bytes:
        raise RuntimeError("Interposer.pull not set")

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def reset(self) -> None:
        self.card.reset()

    def arm(self, ins: int, when: RemoveWhen) -> None:
        """Pull the card when the next command with this INS arrives (once)."""
        self._armed, self.interrupted = (ins, when), None

    def disarm(self) -> None:
        self._armed = None

    def process(self, raw: bytes) -> bytes:
        armed = self._armed
        if armed is None or len(raw) < 2 or raw[1] != armed[0]:
            return self.card.process(raw)
        self._armed = None
        self.interrupted = redact_hex(raw)
        if armed[1] == "before_answer":
            self.card.process(raw)  # the card does all of it (its writes are all-or-nothing)
        return self.pull()


class ScenarioCard:
    """One card of the scenario: in its slot, with the engine's transport to it."""

    def __init__(self, slot: CardSlot, card: Interposer, tracers: list[Tracer]) -> None:
        self.slot, self.card, self.tracers = slot, card, tracers
        card.pull = slot.pull
        self.transport = self._open()

    def _open(self) -> Transport:
        t = self.slot.open()
        t.tracers.extend(self.tracers)
        return t

    def remove(self) -> None:
        self.slot.remove()

    def insert(self) -> None:
        self.slot.insert()
        self.transport.close()  # the old handle died with the removal
        self.transport = self._open()

    def settle(self) -> None:
        """After the interposer pulled the card: wait until the reader shows it out."""
        self.slot.settle()

    def close(self) -> None:
        self.transport.close()


# Where a card goes: a slot of the caller's (the pytest plugin's session slots, kept from test to
# test), given the slot number and the card.
PlaceCard = Callable[[int, ApduCard], CardSlot]


@contextmanager
def readers(
    cards: dict[int, CardOS], mode: str, tracers: list[Tracer], place: PlaceCard | None = None
) -> Iterator[dict[int, ScenarioCard]]:
    """Put ``cards`` (by slot) in readers; ``tracers`` see every exchange of every card.

    Without ``place``, the slots are the scenario's own (in pcsc mode in the stack this process
    runs in, or a private one), closed at the end."""
    with ExitStack() as stack:
        if mode == "pcsc" and place is None:
            from cartesim.harness.stack.stacks import tool_stack

            stack.enter_context(tool_stack())
        out: dict[int, ScenarioCard] = {}
        for number, card in sorted(cards.items()):
            interposer = Interposer(card)
            if place is None:
                slot = new_slot(mode, number, interposer)
                stack.callback(slot.close)
            else:
                slot = place(number, interposer)
            out[number] = ScenarioCard(slot, interposer, tracers)
            stack.callback(out[number].close)
        yield out
