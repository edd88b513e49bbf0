"""PIN objects and their rules: retry counters written before the comparison, restored on success.

Every rule a card applies to the code porteur and the code de déblocage lives here. ``persist`` is
called whenever a counter or code changes, *before* the answer leaves the card, so that a card
killed mid-command never grants more tries than it had left.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from core import sw
from core.sw import SW

Persist = Callable[[], None]

PIN_MIN_DIGITS = 4
PIN_MAX_DIGITS = 8
UNBLOCK_DIGITS = 8


def is_pin(value: bytes | str) -> bool:
    raw = value.encode() if isinstance(value, str) else value
    return PIN_MIN_DIGITS <= len(raw) <= PIN_MAX_DIGITS and raw.isdigit() and raw.isascii()


def _same(a: bytes, b: str) -> bool:
    return hmac.compare_digest(a, b.encode())


@dataclass
class Pin:
    """The code porteur: value, retry counter and (volatile) security status."""

    code: str
    tries_max: int
    tries_left: int
    verified: bool = False

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0

    def status(self) -> int:
        """The tries-left query (VERIFY without data): never consumes a try."""
        if self.blocked:
            return SW.AUTH_BLOCKED
        return SW.OK if self.verified else sw.counter(self.tries_left)

    def _failed(self) -> int:
        self.verified = False
        return SW.AUTH_BLOCKED if self.blocked else sw.counter(self.tries_left)

    def verify(self, candidate: bytes, persist: Persist) -> int:
        if self.blocked:
            return SW.AUTH_BLOCKED
        self.tries_left -= 1
        persist()
        if not _same(candidate, self.code):
            return self._failed()
        self.tries_left = self.tries_max
        persist()
        self.verified = True
        return SW.OK

    def change(self, data: bytes, persist: Persist) -> int:
        """CHANGE REFERENCE DATA: old‖new, split at the current code's length."""
        old, new = data[: len(self.code)], data[len(self.code) :]
        if not PIN_MIN_DIGITS <= len(new) <= PIN_MAX_DIGITS:
            return SW.WRONG_LENGTH
        if not is_pin(new):
            return SW.WRONG_DATA
        if self.blocked:
            return SW.AUTH_BLOCKED
        self.tries_left -= 1
        persist()
        if not _same(old, self.code):
            return self._failed()
        self.code = new.decode()
        self.tries_left = self.tries_max
        persist()
        self.verified = True
        return SW.OK


@dataclass
class UnblockCode:
    """The code de déblocage: its own retry counter and a usage counter (unblocks left)."""

    code: str
    tries_max: int
    tries_left: int
    uses_max: int
    uses_left: int

    @property
    def exhausted(self) -> bool:
        """No unblock can ever succeed again: the card is definitively blocked once its PIN is."""
        return self.tries_left == 0 or self.uses_left == 0

    def status(self) -> int:
        return SW.AUTH_BLOCKED if self.exhausted else sw.counter(self.tries_left)

    def reset_retry_counter(self, data: bytes, pin: Pin, persist: Persist) -> int:
        """RESET RETRY COUNTER: unblock code (8 digits) ‖ new PIN (4 to 8 digits)."""
        if not UNBLOCK_DIGITS + PIN_MIN_DIGITS <= len(data) <= UNBLOCK_DIGITS + PIN_MAX_DIGITS:
            return SW.WRONG_LENGTH
        candidate, new = data[:UNBLOCK_DIGITS], data[UNBLOCK_DIGITS:]
        if not (candidate.isdigit() and candidate.isascii() and is_pin(new)):
            return SW.WRONG_DATA
        if self.exhausted:
            return SW.AUTH_BLOCKED
        self.tries_left -= 1
        persist()
        if not _same(candidate, self.code):
            return SW.AUTH_BLOCKED if self.tries_left == 0 else sw.counter(self.tries_left)
        # One persist for the whole unblock: a crash leaves it fully applied or not at all.
        self.tries_left = self.tries_max
        self.uses_left -= 1
        pin.code = new.decode()
        pin.tries_left = pin.tries_max
        pin.verified = False
        persist()
        return SW.OK
