"""Where codes come from: an environment variable, a hidden prompt on a terminal, or stdin.

Never from argv: a command line is visible to every user of the machine (ps, /proc).
"""

from __future__ import annotations

import getpass
import os
import sys

from cartesim.core import pins
from cartesim.core.errors import BadCode, CodeKind

ENV_PIN = "CARTESIM_PIN"
ENV_UNBLOCK = "CARTESIM_UNBLOCK_CODE"
ENV_NEW_PIN = "CARTESIM_NEW_PIN"


def ask(prompt: str, env: str | None) -> str:
    if env and env in os.environ:
        return os.environ[env].strip()
    if sys.stdin is None:  # closed when cartesim started (<&-)
        raise BadCode(f"{prompt} : entrée standard fermée (une ligne par code, ou {env})")
    try:
        if sys.stdin.isatty():
            return getpass.getpass(f"{prompt} : ").strip()
        line = sys.stdin.readline()
    except (OSError, UnicodeDecodeError) as e:
        problem = e.strerror if isinstance(e, OSError) else "pas du texte UTF-8"
        raise BadCode(f"{prompt} : entrée standard illisible ({problem})") from None
    if not line:
        raise BadCode(f"{prompt} : rien sur l'entrée standard (une ligne par code, ou {env})")
    return line.strip()


def ask_new_pin() -> str:
    """The new code porteur, checked (4 to 8 digits) as soon as it is typed."""
    new = ask("Nouveau code porteur (4 à 8 chiffres)", ENV_NEW_PIN)
    pins.check_pin(new, "Le nouveau code porteur")
    return new


def ask_confirmation(new: str) -> str:
    """The confirmation of the new code porteur: a mismatch stops here, nothing sent."""
    confirmation = ask("Confirmation du nouveau code porteur", ENV_NEW_PIN)
    pins.check_new_pin(new, confirmation)
    return confirmation


def progress(message: str) -> None:
    """A progress line for the person at the terminal; on stderr so stdout stays the result."""
    print(message, file=sys.stderr, flush=True)


def confirm_last_try(kind: CodeKind) -> bool:
    """Asked when one try is left on a card in a reader; only a terminal can say yes."""
    if sys.stdin is None or not sys.stdin.isatty():
        return False
    print(
        f"Attention : il ne reste qu'une tentative pour le {kind.value}. Un code erroné bloquerait la carte.",
        file=sys.stderr,
    )
    answer = input("Envoyer le code quand même ? [o/N] ")
    return answer.strip().lower() in ("o", "oui", "y", "yes")
