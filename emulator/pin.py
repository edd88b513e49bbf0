"""PIN objects and their rules: retry counters written before the comparison, restored on success.

Every rule a card applies to the code porteur and the code de déblocage lives here (the formats
in ``cartesim.core.pins``). ``persist`` is called whenever a counter or code changes, *before*
the answer leaves the card, so that a card killed mid-command never grants more tries than it
had left.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cartesim.core import pins, sw
from cartesim.core.sw import SW

Persist = Callable[[], None]


@dataclass
class _Counted:
    """A code with a retry counter: a try is spent and persisted before each comparison."""

    code: str
    tries_max: int
    tries_left: int

    def _try(self, candidate: bytes, persist: Persist) -> bool:
        """Spend one try (persisted before the comparison), compare; the caller restores the
        counter on success. A card killed between the two never gains a try."""
        self.tries_left -= 1
        persist()
        return hmac.compare_digest(candidate, self.code.encode())

    def _failed_sw(self) -> int:
        return SW.AUTH_BLOCKED if self.tries_left == 0 else sw.counter(self.tries_left)


@dataclass
class Pin(_Counted):
    """The code porteur: value, retry counter and (volatile) security status."""

    verified: bool = False

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0

    def status(self) -> int:
        """The tries-left query (VERIFY without data): never consumes a try."""
        if self.blocked:
            return SW.AUTH_BLOCKED
        return SW.OK if self.verified else sw.counter(self.tries_left)

    def _check(self, candidate: bytes, persist: Persist, new: str | None = None) -> int:
        if self.blocked:
            return SW.AUTH_BLOCKED
        if not self._try(candidate, persist):
            self.verified = False
            return self._failed_sw()
        if new is not None:
            self.code = new
        self.tries_left = self.tries_max
        persist()
        self.verified = True
        return SW.OK

    def verify(self, candidate: bytes, persist: Persist) -> int:
        return self._check(candidate, persist)

    def change(self, data: bytes, persist: Persist) -> int:
        """CHANGE REFERENCE DATA: old‖new, split at the current code's length."""
        old, new = data[: len(self.code)], data[len(self.code) :]
        if not pins.PIN_MIN_DIGITS <= len(new) <= pins.PIN_MAX_DIGITS:
            return SW.WRONG_LENGTH
        if not pins.is_pin(new):
            return SW.WRONG_DATA
        return self._check(old, persist, new.decode())


@dataclass
class UnblockCode(_Counted):
    """The code de déblocage: its own retry counter, a usage counter (unblocks left) and a
    (volatile) security status for the two-step unblock: VERIFY it, then RESET RETRY COUNTER
    with the new code porteur only."""

    uses_max: int
    uses_left: int
    verified: bool = False

    @property
    def exhausted(self) -> bool:
        """No unblock can ever succeed again: the card is definitively blocked once its PIN is."""
        return pins.unblock_exhausted(self.tries_left, self.uses_left)

    def status(self) -> int:
        if self.exhausted:
            return SW.AUTH_BLOCKED
        return SW.OK if self.verified else sw.counter(self.tries_left)

    def _check(self, candidate: bytes, persist: Persist) -> int:
        """Compare the code de déblocage, spending a try; SW.OK leaves the counter restored."""
        if not pins.is_unblock_code(candidate):
            return SW.WRONG_DATA
        if self.exhausted:
            return SW.AUTH_BLOCKED
        if not self._try(candidate, persist):
            self.verified = False
            return self._failed_sw()
        return SW.OK

    def verify(self, candidate: bytes, persist: Persist) -> int:
        """VERIFY of the code de déblocage (OpenSC's unblock, first step)."""
        result = self._check(candidate, persist)
        if result == SW.OK:
            self.tries_left = self.tries_max
            persist()
            self.verified = True
        return result

    def _unblock(self, pin: Pin, new: bytes, persist: Persist) -> int:
        # One persist for the whole unblock: a crash leaves it fully applied or not at all.
        self.tries_left = self.tries_max
        self.uses_left -= 1
        self.verified = False
        pin.code = new.decode()
        pin.tries_left = pin.tries_max
        pin.verified = False
        persist()
        return SW.OK

    def reset_retry_counter(self, data: bytes, pin: Pin, persist: Persist) -> int:
        """RESET RETRY COUNTER P1=00 (Cryptolib's unblock): unblock code (8 digits) ‖ new PIN."""
        n = pins.UNBLOCK_DIGITS
        if not n + pins.PIN_MIN_DIGITS <= len(data) <= n + pins.PIN_MAX_DIGITS:
            return SW.WRONG_LENGTH
        candidate, new = data[:n], data[n:]
        if not pins.is_pin(new):
            return SW.WRONG_DATA
        result = self._check(candidate, persist)
        return self._unblock(pin, new, persist) if result == SW.OK else result

    def reset_with_verified(self, new: bytes, pin: Pin, persist: Persist) -> int:
        """RESET RETRY COUNTER P1=02 (OpenSC's unblock): the new PIN only, after VERIFY of the
        code de déblocage in this session."""
        if not pins.PIN_MIN_DIGITS <= len(new) <= pins.PIN_MAX_DIGITS:
            return SW.WRONG_LENGTH
        if not pins.is_pin(new):
            return SW.WRONG_DATA
        if self.exhausted:
            return SW.AUTH_BLOCKED
        if not self.verified:
            return SW.SECURITY_NOT_SATISFIED
        return self._unblock(pin, new, persist)
