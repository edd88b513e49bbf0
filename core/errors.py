"""Engine errors. Their messages are the ones the real French tools show; none holds a code."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from cartesim.core import sw as swmod

if TYPE_CHECKING:
    from cartesim.core.atr import CardKind


class CartesimError(Exception):
    """Base of every error the engine raises on purpose."""


# --- no card to talk to (CLI exit 3) ---------------------------------------------------------
class TransportError(CartesimError):
    """No PC/SC service, no reader, no card, or the card went away."""


class NoService(TransportError):
    pass


class PyscardMissing(NoService, ImportError):
    """PC/SC needs pyscard, an extra (``cartesim[pcsc]``): raised by importing
    ``cartesim.core.transport.pcsc`` without it. An ImportError for code that tries the import,
    a NoService for the CLI (exit 3, this one line)."""

    def __init__(self) -> None:
        super().__init__("pyscard n'est pas installé : pip install 'cartesim[pcsc]'")


class NoReader(TransportError):
    pass


class NoCard(TransportError):
    pass


class WrongCard(NoCard):
    """The card in the reader is, by its ATR, of another kind than the one asked for."""

    def __init__(self, found: CardKind, expected: CardKind) -> None:
        self.found, self.expected = found, expected
        super().__init__(f"Cette carte est une {found.label}, pas une {expected.label}")


class CardRemoved(TransportError):
    """The card left the reader."""


class CardMute(TransportError):
    """The card does not answer."""


class LinkDropped(TransportError):
    """The connection to the card dropped (vpcd): a power loss; the card comes back by itself."""


# --- the card said no (CLI exit 1) -----------------------------------------------------------
class CardError(CartesimError):
    """The card answered a status word the operation cannot go on with."""

    def __init__(self, operation: str, sw: int, message: str | None = None) -> None:
        self.operation, self.sw = operation, sw
        super().__init__(message or f"{operation}: {swmod.fmt(sw)} ({swmod.describe(sw)})")


class CodeKind(str, Enum):
    PORTEUR = "code porteur"
    DEBLOCAGE = "code de déblocage"


class WrongCode(CardError):
    def __init__(self, operation: str, sw: int, kind: CodeKind, tries_left: int) -> None:
        self.kind, self.tries_left = kind, tries_left
        label = "Code porteur" if kind is CodeKind.PORTEUR else "Code de déblocage"
        super().__init__(operation, sw, f"{label} erroné (reste {tries_left} tentative(s))")


class CardBlocked(CardError):
    """The code porteur is blocked: three wrong codes."""

    def __init__(self, operation: str, sw: int) -> None:
        super().__init__(operation, sw, "Carte bloquée")


class CardDefinitivelyBlocked(CardError):
    """The unblock code is exhausted (tries or uses): the card can never be unblocked."""

    def __init__(self, operation: str, sw: int) -> None:
        super().__init__(operation, sw, "Carte définitivement bloquée")


class LastTryNotConfirmed(CartesimError):
    """One try left and the caller did not confirm: no code was sent."""

    def __init__(self, kind: CodeKind) -> None:
        self.kind = kind
        label = "du code porteur" if kind is CodeKind.PORTEUR else "du code de déblocage"
        super().__init__(f"Dernière tentative {label} : aucun code envoyé sans confirmation")


class CardDataError(CartesimError):
    """A file on the card is not in the expected format."""


# --- the caller's input (CLI exit 2) ---------------------------------------------------------
class BadInput(CartesimError):
    """Input that cannot be used; ``str()`` is the one-line message."""


class InputError(BadInput):
    """A file or value that cannot be used (profile, state, scenario, trace, option): one line
    naming the source, the place in it and the problem."""

    def __init__(self, source: str, where: str, problem: str) -> None:
        self.source, self.where, self.problem = source, where, problem
        super().__init__(f"{source}: {where}: {problem}" if where else f"{source}: {problem}")


class BadCode(BadInput, ValueError):
    """A code typed by the user that cannot be sent (format, confirmation mismatch)."""


def error_name(e: BaseException) -> str:
    """What went wrong, as a name (most precise first): a scenario's ``expect.error``, and the
    ``error`` of a JSON error object (docs/json.md)."""
    kinds: list[tuple[type[BaseException], str]] = [
        (WrongCode, "wrong_code"),
        (CardDefinitivelyBlocked, "definitively_blocked"),
        (CardBlocked, "blocked"),
        (LastTryNotConfirmed, "last_try_not_confirmed"),
        (BadCode, "bad_code"),
        (BadInput, "bad_input"),
        (CardDataError, "card_data"),
        (CardRemoved, "card_removed"),
        (WrongCard, "wrong_card"),
        (NoCard, "no_card"),
        (CardMute, "card_mute"),
        (LinkDropped, "link_dropped"),
        (PyscardMissing, "pyscard_missing"),
        (NoService, "no_service"),
        (NoReader, "no_reader"),
        (TransportError, "transport"),
    ]
    for cls, name in kinds:
        if isinstance(e, cls):
            return name
    if isinstance(e, CardError):
        return "security" if e.sw == swmod.SW.SECURITY_NOT_SATISFIED else "card_error"
    return "error"
