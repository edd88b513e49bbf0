"""Faults a card commits on purpose, from its profile: a status word, a delay, silence, removal
or a dropped connection on the Nth APDU. Each fires once.

Removal, silence and a dropped link are raised as the engine's transport errors (core.errors, a
stdlib-only module the emulator may use), a removal as ``CardPulled``, which says when the card
comes back: the reader holding the card (the vpcd client, or the harness's in-process slot)
turns them into what a reader would see.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from cartesim.core.errors import CardMute, CardRemoved, LinkDropped

log = logging.getLogger(__name__)


class CardPulled(CardRemoved):
    """A fault pulled the card out of its reader; it comes back by itself after ``back_after``
    seconds (None: it stays out until put back)."""

    def __init__(self, back_after: float | None) -> None:
        super().__init__("Carte retirée")
        self.back_after = back_after


@dataclass(frozen=True)
class Fault:
    apdu: int
    status_word: int | None = None
    delay: float | None = None  # seconds
    mute: bool = False
    remove: bool = False
    reinsert_after: float | None = None  # seconds
    drop_connection: bool = False

    def describe(self) -> str:
        if self.status_word is not None:
            return f"status word {self.status_word:04X}"
        if self.delay is not None:
            return f"delay {self.delay * 1000:.0f} ms"
        if self.mute:
            return "mute"
        if self.remove:
            return "removal" + (
                f" (back after {self.reinsert_after * 1000:.0f} ms)" if self.reinsert_after else ""
            )
        return "dropped connection"


class FaultPlan:
    """The faults still to come, keyed by APDU number, and the count of APDUs received so far."""

    def __init__(self, faults: Iterable[Fault]) -> None:
        self.pending: dict[int, list[Fault]] = {}
        for f in faults:
            self.pending.setdefault(f.apdu, []).append(f)
        self.count = 0

    def before(self) -> bytes | None:
        """Called as each APDU arrives: an injected answer, or None to process it normally."""
        self.count += 1
        for f in self.pending.pop(self.count, []):
            log.info("fault injected on APDU %d: %s", self.count, f.describe())
            if f.delay is not None:
                time.sleep(f.delay)
            elif f.status_word is not None:
                return f.status_word.to_bytes(2, "big")
            elif f.mute:
                raise CardMute("Carte muette")
            elif f.remove:
                raise CardPulled(f.reinsert_after)
            else:
                raise LinkDropped("Connexion au lecteur perdue")
        return None
