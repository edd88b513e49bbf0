"""What a card's counters say, and the settings QA puts a card in: on a bare CardOS.

Used by live card control (harness.control), the pytest plugin's cards and scenarios alike. Every
change goes through the card's persist hook, so a ``--state`` file is always right. No PIN or
unblock code ever leaves this module, except into a state file written by ``save_card_state``
(owner-only, as every state file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cartesim.core import pins
from cartesim.core.atr import CardKind, detect
from cartesim.core.errors import InputError
from cartesim.emulator import state as card_state
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card

STATES = ("fresh", "blocked", "last-try", "unblock-last-try", "definitively-blocked")
COUNTERS = ("pin_tries_left", "unblock_tries_left", "unblock_uses_left")


@dataclass(frozen=True)
class CardStatus:
    """What a card's counters say. Never the codes themselves."""

    type: CardKind
    atr: str
    pin_tries_left: int | None = None
    pin_tries_max: int | None = None
    pin_verified: bool = False
    unblock_tries_left: int | None = None
    unblock_tries_max: int | None = None
    unblock_uses_left: int | None = None
    unblock_uses_max: int | None = None
    blocked: bool = False
    definitively_blocked: bool = False


def card_status(card: CardOS) -> CardStatus:
    with card_state.session(card):  # the counters as the state file has them now
        return _status(card)


def _status(card: CardOS) -> CardStatus:
    pin, unblock = card.pin, card.unblock
    blocked = pin is not None and pin.blocked
    return CardStatus(
        type=detect(card.atr),
        atr=card.atr.hex().upper(),
        pin_tries_left=pin.tries_left if pin else None,
        pin_tries_max=pin.tries_max if pin else None,
        pin_verified=bool(pin and pin.verified),
        unblock_tries_left=unblock.tries_left if unblock else None,
        unblock_tries_max=unblock.tries_max if unblock else None,
        unblock_uses_left=unblock.uses_left if unblock else None,
        unblock_uses_max=unblock.uses_max if unblock else None,
        blocked=blocked,
        definitively_blocked=pins.definitively_blocked(
            pin.tries_left if pin else None, unblock is not None and unblock.exhausted
        ),
    )


def persist(card: CardOS) -> None:
    """Write the card's state, if bound to a file; call it in the card's session."""
    if card.on_persist is not None:
        card.on_persist()


def _shown(word: str, where: str) -> str:
    """How an error names a setting: itself if it is a word (a typo of a state's name), else by
    its position: a setting with a digit may be a code typed in the wrong place, never echoed."""
    if 0 < len(word) <= 32 and all(c.isascii() and (c.isalpha() or c in "-_") for c in word):
        return word
    return where


@dataclass
class _Plan:
    """The counters a ``set`` will write, checked in full before any is written."""

    pin: int | None
    pin_max: int
    tries: int | None
    tries_max: int
    uses: int | None
    uses_max: int

    @classmethod
    def of(cls, card: CardOS) -> _Plan:
        p, u = card.pin, card.unblock
        return cls(
            p.tries_left if p else None,
            p.tries_max if p else 0,
            u.tries_left if u else None,
            u.tries_max if u else 0,
            u.uses_left if u else None,
            u.uses_max if u else 0,
        )

    def _need(self, what: str, pin: bool, unblock: bool) -> None:
        if pin and self.pin is None:
            raise InputError("set", what, "this card has no code porteur")
        if unblock and self.tries is None:
            raise InputError("set", what, "this card has no code de déblocage")

    def _unblock_usable(self) -> None:
        # A blocked PIN with an exhausted unblock code would be definitively blocked instead.
        if self.tries == 0:
            self.tries = self.tries_max
        if self.uses == 0:
            self.uses = self.uses_max

    def named(self, name: str, where: str) -> None:
        if name == "fresh":
            if self.pin is not None:
                self.pin = self.pin_max
            if self.tries is not None:
                self.tries, self.uses = self.tries_max, self.uses_max
        elif name == "last-try":
            self._need(name, pin=True, unblock=False)
            self.pin = 1
        elif name == "blocked":
            self._need(name, pin=True, unblock=False)
            self.pin = 0
            if self.tries is not None:
                self._unblock_usable()
        elif name == "unblock-last-try":
            self._need(name, pin=True, unblock=True)
            self._unblock_usable()
            self.pin, self.tries = 0, 1
        elif name == "definitively-blocked":
            self._need(name, pin=True, unblock=True)
            self.pin, self.tries = 0, 0
        else:
            raise InputError(
                "set",
                _shown(name, where),
                f"unknown state (states: {', '.join(STATES)}; or {'=N, '.join(COUNTERS)}=N)",
            )

    def counter(self, setting: str, where: str) -> None:
        key, _, raw = setting.partition("=")
        key = key.strip().replace("-", "_")
        if key not in COUNTERS:
            raise InputError("set", _shown(key, where), f"unknown counter (counters: {', '.join(COUNTERS)})")
        # From here on the key is a known name; the value after '=' is never echoed.
        self._need(key, pin=key.startswith("pin"), unblock=key.startswith("unblock"))
        raw = raw.strip()
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 3):
            raise InputError("set", key, "expected a whole number from 0 to 255")
        value = int(raw)
        top = {"pin_tries_left": self.pin_max, "unblock_tries_left": self.tries_max}.get(key, self.uses_max)
        if value > top:
            raise InputError("set", key, f"above the card's maximum {top}")
        if key == "pin_tries_left":
            self.pin = value
        elif key == "unblock_tries_left":
            self.tries = value
        else:
            self.uses = value


def set_card(card: CardOS, settings: Sequence[str]) -> CardStatus:
    """Apply named states and ``counter=N`` settings in order (``STATES``, ``COUNTERS``).

    All are checked before any is written; then the card persists once. The PIN's verified
    status is cleared, as after any change of its counters.
    """
    if not settings:
        raise InputError("set", "", f"nothing to set (states: {', '.join(STATES)})")
    with card_state.session(card):  # planned on the card as it is now, written before release
        plan = _Plan.of(card)
        for n, setting in enumerate(settings, 1):
            where = f"setting {n}"  # by position: the setting itself may hold a code
            if "=" in setting:
                plan.counter(setting, where)
            else:
                plan.named(setting.strip(), where)
        if card.pin is not None and plan.pin is not None:
            card.pin.tries_left, card.pin.verified = plan.pin, False
        if card.unblock is not None and plan.tries is not None and plan.uses is not None:
            card.unblock.tries_left, card.unblock.uses_left = plan.tries, plan.uses
        persist(card)
        return _status(card)


def reset_card(card: CardOS, profile: str | Path) -> CardStatus:
    """Put the card back as its profile issued it: codes and counters; the state file follows."""
    issued = load_card(profile)  # no state file: the profile alone
    if card_state.identity_of(issued) != card_state.identity_of(card):
        raise InputError(str(profile), "", "this profile is not the one of this card")
    with card_state.session(card):
        if card.pin is not None and issued.pin is not None:
            card.pin.code, card.pin.tries_left = issued.pin.code, issued.pin.tries_left
            card.pin.verified = False
        if card.unblock is not None and issued.unblock is not None:
            card.unblock.code = issued.unblock.code
            card.unblock.tries_left = issued.unblock.tries_left
            card.unblock.uses_left = issued.unblock.uses_left
        persist(card)
        return _status(card)


def save_card_state(card: CardOS, path: Path) -> Path:
    """The card's exact state as a cartesim-state/1 file (atomic, 0600): ``emulate --state-file``,
    ``--state`` and ``replay --state`` load it."""
    if not path.parent.is_dir():
        raise InputError(str(path), "", "its folder does not exist")
    with card_state.session(card):  # the card as its own state file has it now
        card_state.save(card, path)
    return path
