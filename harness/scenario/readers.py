"""The scenario's cards in their readers: in-process (direct) or behind pcscd + vpcd (pcsc).

Each card is wrapped in an ``Interposer``, which can pull the card out of its reader at the
moment a chosen command arrives: before the card processes it, or after the card processed it
but before the answer leaves. That is "the card removed in the middle of an unblock".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from cartesim.core.apdu import redact_hex
from cartesim.core.errors import CardRemoved, NoService
from cartesim.core.trace import Tracer
from cartesim.core.transport import Transport
from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator.cardos import CardOS
from cartesim.harness.scenario.schema import RemoveWhen

if TYPE_CHECKING:  # pyscard is needed only in pcsc mode
    from cartesim.emulator.vpcd import VpcdCard

MSG_REMOVED = "Carte retirée"
CARD_TIMEOUT = 5.0  # pcscd polls the vpcd slots every ~400 ms


class Interposer:
    """Stands between the reader and the card OS; satisfies both transports' Card protocol."""

    def __init__(self, card: CardOS) -> None:
        self.card = card
        self.pull: Callable[[], bytes] = self._no_pull  # set by the reader holding this card
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


class Reader(ABC):
    """One card in one reader, with the engine's transport to it."""

    def __init__(self, slot: int, card: CardOS, tracers: list[Tracer]) -> None:
        self.slot = slot
        self.card = Interposer(card)
        self.card.pull = self._pull
        self.tracers = tracers
        self.present = True

    @property
    @abstractmethod
    def transport(self) -> Transport: ...

    @abstractmethod
    def _pull(self) -> bytes:
        """Take the card out from inside ``process`` (the interposer's answer, or raise)."""

    @abstractmethod
    def remove(self) -> None: ...

    @abstractmethod
    def insert(self) -> None: ...

    def settle(self) -> None:  # noqa: B027 - nothing to wait for in-process
        """After the interposer pulled the card: wait until the reader shows it out."""

    def close(self) -> None:
        self.transport.close()


class DirectReader(Reader):
    def __init__(self, slot: int, card: CardOS, tracers: list[Tracer]) -> None:
        super().__init__(slot, card, tracers)
        self._transport = DirectTransport(self.card)
        self._transport.tracers.extend(tracers)

    @property
    def transport(self) -> Transport:
        return self._transport

    def _pull(self) -> bytes:
        self.remove()
        raise CardRemoved(MSG_REMOVED)  # in-process, "no answer" is the transport's error

    def remove(self) -> None:
        self._transport.remove()
        self.present = False

    def insert(self) -> None:
        self._transport.insert(self.card)
        self.present = True


class PcscReader(Reader):
    """The card served on its vpcd slot by a thread of this process, seen through pcscd."""

    def __init__(self, slot: int, card: CardOS, tracers: list[Tracer]) -> None:
        from cartesim.emulator.vpcd import VpcdCard
        from cartesim.harness.stack.pcscd import vpcd_reader

        super().__init__(slot, card, tracers)
        self.name = vpcd_reader(slot)
        self.served: VpcdCard = VpcdCard.for_slot(self.card, slot).start()
        self._transport: Transport | None = None
        try:
            if not self.served.wait_present(CARD_TIMEOUT):
                raise NoService(f"vpcd slot {slot} ({self.served.address}) busy or not answering")
            self._wait(present=True)
            self._open()
        except BaseException:
            self.served.stop()
            raise

    def _wait(self, present: bool) -> None:
        from cartesim.core.transport.pcsc import wait_reader

        if wait_reader(self.name, present=present, timeout=CARD_TIMEOUT) is None:
            state = "present" if present else "absent"
            raise NoService(f"« {self.name} » : carte non {state} après {CARD_TIMEOUT:g} s")

    def _open(self) -> None:
        from cartesim.core.transport.pcsc import PcscTransport

        self._transport = PcscTransport(self.name, timeout=CARD_TIMEOUT)
        self._transport.tracers.extend(self.tracers)

    @property
    def transport(self) -> Transport:
        assert self._transport is not None
        return self._transport

    def _pull(self) -> bytes:
        # Runs on the serving thread: remove() only shuts the socket down (no join, no
        # deadlock); the reply below then fails to send and the thread waits for insert().
        self.served.remove()
        return b""

    def settle(self) -> None:
        self.present = False
        self._wait(present=False)

    def remove(self) -> None:
        self.served.remove()
        self.settle()

    def insert(self) -> None:
        self.served.insert()
        self._wait(present=True)
        self.transport.close()  # the old PC/SC handle died with the removal
        self._open()
        self.present = True

    def close(self) -> None:
        try:
            if self._transport is not None:
                self._transport.close()
        finally:
            self.served.stop()
            if self.present:
                self._wait(present=False)  # leave the slot visibly empty for the next user


@contextmanager
def readers(cards: dict[int, CardOS], mode: str, tracers: list[Tracer]) -> Iterator[dict[int, Reader]]:
    """Put ``cards`` (by slot) in readers; ``tracers`` see every exchange of every card."""
    with ExitStack() as stack:
        if mode == "pcsc":
            from cartesim.harness.stack.pcscd import Pcscd, PcscdUnavailable

            try:
                daemon = Pcscd().start()  # the running one if any; else ours, stopped at the end
            except PcscdUnavailable as e:
                raise NoService(str(e)) from None
            stack.callback(daemon.stop)
        out: dict[int, Reader] = {}
        for slot, card in sorted(cards.items()):
            reader: Reader = (PcscReader if mode == "pcsc" else DirectReader)(slot, card, tracers)
            stack.callback(reader.close)
            out[slot] = reader
        yield out
