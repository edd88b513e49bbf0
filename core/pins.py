"""The rules of the two secret codes of a CPS, in one place for the engine, the card and the files.

- the code porteur: 4 to 8 digits (4 as issued; newer tools accept up to 8);
- the code de déblocage: exactly 8 digits;
- a card is blocked when its code porteur has no try left, and definitively blocked when, besides,
  no unblock can ever succeed: the code de déblocage has no try or no use left.
"""

from __future__ import annotations

from cartesim.core.errors import BadCode

PIN_MIN_DIGITS = 4
PIN_MAX_DIGITS = 8
UNBLOCK_DIGITS = 8
# The same rules as patterns, for the schemas of profiles, states and scenarios.
PIN_PATTERN = f"^[0-9]{{{PIN_MIN_DIGITS},{PIN_MAX_DIGITS}}}$"
UNBLOCK_PATTERN = f"^[0-9]{{{UNBLOCK_DIGITS}}}$"


def _digits(raw: bytes | str) -> bool:
    return raw.isdigit() and raw.isascii()


def is_pin(value: bytes | str) -> bool:
    return PIN_MIN_DIGITS <= len(value) <= PIN_MAX_DIGITS and _digits(value)


def is_unblock_code(value: bytes | str) -> bool:
    return len(value) == UNBLOCK_DIGITS and _digits(value)


def check_pin(code: object, what: str = "Le code porteur") -> bytes:
    """The code porteur as sent to the card; BadCode (the code not echoed) if it is not one."""
    if not isinstance(code, str) or not is_pin(code):
        raise BadCode(f"{what} doit comporter de {PIN_MIN_DIGITS} à {PIN_MAX_DIGITS} chiffres")
    return code.encode()


def check_unblock_code(code: object) -> bytes:
    if not isinstance(code, str) or not is_unblock_code(code):
        raise BadCode(f"Le code de déblocage doit comporter {UNBLOCK_DIGITS} chiffres")
    return code.encode()


def check_new_pin(new: object, confirmation: object) -> bytes:
    """A new code porteur and its confirmation, as typed twice."""
    raw = check_pin(new, "Le nouveau code porteur")
    if new != confirmation:
        raise BadCode("La confirmation ne correspond pas au nouveau code porteur")
    return raw


def unblock_exhausted(tries_left: int, uses_left: int | None) -> bool:
    """No unblock can ever succeed again: no try, or no use, of the code de déblocage left."""
    return tries_left == 0 or uses_left == 0


def definitively_blocked(pin_tries_left: int | None, unblock_exhausted: bool) -> bool:
    """Blocked, with no unblock possible: the card can never be used again."""
    return pin_tries_left == 0 and unblock_exhausted
