"""Live card control in-process: remove, insert, swap, reset, inspect and set the cards served.

One API, two implementations (both satisfy ``CardController``):

- ``LocalCardControl``: in-process, over the slots ``run_emulation`` serves (or over cards with
  no reader behind them, ``LocalCardControl.in_process``);
- ``CardControl`` (control.client): a client of the control socket ``run_emulation`` serves with
  ``ControlServer`` (control.server).

The card-level settings and status live in ``control.settings`` (a bare CardOS): no PIN or
unblock code ever leaves these modules, except into an owner-only state file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol

from cartesim.core.atr import CardKind
from cartesim.core.errors import InputError, TransportError
from cartesim.emulator import state as card_state
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.harness.control.settings import (
    CardStatus,
    card_status,
    reset_card,
    save_card_state,
    set_card,
)
from cartesim.harness.stack.slots import SwappableCard

log = logging.getLogger(__name__)

INSERT_WAIT = 2.0  # insert/swap wait this long for vpcd to poll the card: pcscd then shows it


class ReaderSide(Protocol):
    """The reader side of a slot: VpcdCard satisfies it."""

    def remove(self) -> None: ...

    def insert(self) -> None: ...

    def wait_present(self, timeout: float | None = None) -> bool: ...


class Unplugged:
    """A slot with no reader behind it (in-process use): the card is seen as soon as inserted."""

    def __init__(self) -> None:
        self._inserted = True

    def remove(self) -> None:
        self._inserted = False

    def insert(self) -> None:
        self._inserted = True

    def wait_present(self, timeout: float | None = None) -> bool:
        return self._inserted


@dataclass
class EmulatedSlot:
    profile: str  # a sample name or a profile path
    holder: SwappableCard[CardOS]
    reader: ReaderSide = field(default_factory=Unplugged)
    present: bool = True
    # Cards swapped out of this slot, by profile: swapping one back gives the same card.
    drawer: dict[str, CardOS] = field(default_factory=dict)


@dataclass(frozen=True)
class SlotStatus:
    slot: int
    profile: str
    present: bool  # in the reader, as the emulator sees it
    seen_by_reader: bool  # vpcd has polled it since its insertion: pcscd shows it
    card: CardStatus

    def to_dict(self) -> dict[str, Any]:
        head = {"slot": self.slot, "profile": self.profile, "present": self.present}
        return {**head, "seen_by_reader": self.seen_by_reader, **asdict(self.card)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlotStatus:
        names = {f.name for f in fields(CardStatus)}  # a newer emulator may say more
        card = CardStatus(**{k: v for k, v in data.items() if k in names})
        card = replace(card, type=CardKind(card.type))
        return cls(data["slot"], data["profile"], data["present"], data["seen_by_reader"], card)


class CardController(Protocol):
    """The control API, in-process (LocalCardControl) or through the socket (CardControl)."""

    def status(self, slot: int) -> SlotStatus: ...

    def status_all(self) -> list[SlotStatus]: ...

    def remove(self, slot: int) -> SlotStatus: ...

    def insert(self, slot: int) -> SlotStatus: ...

    def swap(self, slot: int, profile: str | Path) -> SlotStatus: ...

    def reset(self, slot: int) -> SlotStatus: ...

    def set(self, slot: int, *settings: str) -> SlotStatus: ...

    def save_state(self, slot: int, path: str | Path) -> Path: ...


MakeCard = Callable[[int, str], CardOS]


class LocalCardControl:
    """The control API over served slots. ``make_card(slot, profile)`` builds a card for ``swap``
    (run_emulation binds it to its --state file)."""

    def __init__(
        self,
        slots: Sequence[EmulatedSlot],
        make_card: MakeCard | None = None,
        *,
        insert_wait: float = INSERT_WAIT,
    ) -> None:
        self.slots = list(slots)
        self._make: MakeCard = make_card or (lambda _slot, profile: load_card(profile))
        self.insert_wait = insert_wait
        self._ops = threading.Lock()  # one control operation at a time, whatever the client

    @classmethod
    def in_process(cls, profiles: Sequence[str]) -> LocalCardControl:
        """Cards with no reader behind them: for tests and scripts that need no PC/SC."""
        return cls([EmulatedSlot(p, SwappableCard(load_card(p))) for p in profiles])

    def _slot(self, slot: int) -> EmulatedSlot:
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < len(self.slots):
            raise InputError("slot", str(slot), f"no such slot (slots 0 to {len(self.slots) - 1})")
        return self.slots[slot]

    def _status(self, index: int) -> SlotStatus:
        s = self.slots[index]
        with s.holder.lock:
            card = card_status(s.holder.card)
        seen = s.present and s.reader.wait_present(0)
        return SlotStatus(index, s.profile, s.present, seen, card)

    def _put_in(self, s: EmulatedSlot) -> None:
        s.reader.insert()
        s.present = True
        s.reader.wait_present(self.insert_wait)  # not there in time: status says so, no error

    def status(self, slot: int) -> SlotStatus:
        self._slot(slot)
        return self._status(slot)

    def status_all(self) -> list[SlotStatus]:
        return [self._status(i) for i in range(len(self.slots))]

    def remove(self, slot: int) -> SlotStatus:
        with self._ops:
            s = self._slot(slot)
            s.reader.remove()
            s.present = False
            log.info("slot %d: card removed", slot)
            return self._status(slot)

    def insert(self, slot: int) -> SlotStatus:
        with self._ops:
            s = self._slot(slot)
            # Even when we think it is in: a fault from the profile may have pulled it out.
            self._put_in(s)
            log.info("slot %d: card inserted", slot)
            return self._status(slot)

    def swap(self, slot: int, profile: str | Path) -> SlotStatus:
        """Take the slot's card out, put the card of ``profile`` in (it ends up inserted)."""
        name = str(profile)
        with self._ops:
            s = self._slot(slot)
            if name == s.profile:
                new = s.holder.card  # the same card, taken out and put back
            else:
                new = s.drawer[name] if name in s.drawer else self._make(slot, name)  # bad: no change
                s.drawer.pop(name, None)
            if s.present:
                s.reader.remove()
                s.present = False
                if new.atr != s.holder.card.atr:
                    _wait_removal_seen(slot, s.reader)
            with s.holder.lock:
                old, s.holder.card = s.holder.card, new
                new.reset()
            if new is not old:
                card_state.flush(old)  # its state file exists, even if the card was never used
                s.drawer[s.profile] = old
            s.profile = name
            self._put_in(s)
            log.info("slot %d: %s swapped in", slot, name)
            return self._status(slot)

    def reset(self, slot: int) -> SlotStatus:
        with self._ops:
            s = self._slot(slot)
            with s.holder.lock:
                reset_card(s.holder.card, s.profile)
            log.info("slot %d: card reset to its profile", slot)
            return self._status(slot)

    def set(self, slot: int, *settings: str) -> SlotStatus:
        with self._ops:
            s = self._slot(slot)
            with s.holder.lock:
                set_card(s.holder.card, settings)
            log.info("slot %d: %d setting(s) applied", slot, len(settings))  # values never logged
            return self._status(slot)

    def save_state(self, slot: int, path: str | Path) -> Path:
        with self._ops:
            s = self._slot(slot)
            with s.holder.lock:
                return save_card_state(s.holder.card, Path(path))


REMOVAL_SEEN_TIMEOUT = 2.0  # seconds: pcscd polls a vpcd slot about every 400 ms


def _wait_removal_seen(slot: int, reader: ReaderSide) -> None:
    """Wait until pcscd has seen the card leave: a card of another kind put back before pcscd's
    next poll would be taken for the old one, old ATR included (seen in test_control_pcsc)."""
    if isinstance(reader, Unplugged):
        return
    try:
        from cartesim.core.transport.pcsc import wait_reader
        from cartesim.harness.stack.pcscd import vpcd_reader

        if wait_reader(vpcd_reader(slot), present=False, timeout=REMOVAL_SEEN_TIMEOUT) is not None:
            return
    except (ImportError, TransportError):
        pass  # no PC/SC here (a remote vpcd): give pcscd two polls
    time.sleep(2 * 0.4)
