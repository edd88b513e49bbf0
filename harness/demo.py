"""The main job: the public "Comment débloquer votre CPS" story, step by step, on the sample card.

Three wrong codes porteur, the card blocked, unblock with the 8-digit code and a new code, then
"Lire CPS" with the new code. Codes are shown masked, as the real tool shows them.
"""

from __future__ import annotations

from collections.abc import Callable

from core import report
from core.cps import CpsCard
from core.errors import CardBlocked, WrongCode
from core.transport import Transport

WRONG_CODES = ("0000", "1111", "9999")


def _mask(code: str) -> str:
    return "*" * len(code)


def run(t: Transport, say: Callable[[str], None], unblock_code: str, new_pin: str) -> None:
    """Play the story on the CPS behind ``t``; raises if the card does not behave as a CPS does."""
    card = CpsCard(t)
    st = card.status()
    say(f"Code porteur : reste {st.pin_tries_left} tentative(s)")
    for n, wrong in enumerate(WRONG_CODES, 1):
        try:
            card.verify(wrong)
        except (WrongCode, CardBlocked) as e:
            say(f"[{n}] Code porteur : {_mask(wrong)}  ->  {e}")
        else:
            raise AssertionError("the card accepted a wrong code porteur")
    st = card.status()
    if not st.blocked:
        raise AssertionError("three wrong codes did not block the card")
    say("")
    say("Déblocage de la carte (CPS-Gestion)")
    say(f"Code de déblocage (reste {st.unblock_tries_left} tentative(s)) : {_mask(unblock_code)}")
    say(f"Nouveau code porteur : {_mask(new_pin)}")
    say(f"Confirmation du nouveau code porteur : {_mask(new_pin)}")
    say("Recyclage en cours…")
    with t.transaction():
        card.unblock(unblock_code, new_pin, new_pin)
    say("Carte débloquée")
    say("")
    say(f"Lire CPS (code porteur : {_mask(new_pin)})")
    say("")
    say(report.lire_cps(card.read(new_pin)).rstrip("\n"))
