"""The main job: the public "Comment débloquer votre CPS" story, step by step, on the sample card.

Three wrong codes porteur, the card blocked, unblock with the 8-digit code and a new code, then
"Lire CPS" with the new code. Codes are shown masked, as the real tool shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cartesim.core import report
from cartesim.core.cps import CpsCard
from cartesim.core.errors import CardBlocked, CartesimError, TransportError, WrongCode
from cartesim.core.transport import Transport
from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator.cards import load_card
from cartesim.harness.stack.slots import card_in_reader
from cartesim.harness.stack.stacks import tool_stack
from cartesim.harness.tools import SAMPLE_CPS, IssuedCps

NEW_PIN = "4321"  # any new code porteur


class DemoFailed(CartesimError):
    """The card did not behave as a CPS does."""


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
            card.verify(wrong, confirm_last_try=True)  # the lockout is the point
        except (WrongCode, CardBlocked) as e:
            say(f"[{n}] Code porteur : {_mask(wrong)}  ->  {e}")
        else:
            raise DemoFailed("the card accepted a wrong code porteur")
    st = card.status()
    if not st.blocked:
        raise DemoFailed("three wrong codes did not block the card")
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


@contextmanager
def _through_pcscd(say: Callable[[str], None]) -> Iterator[tuple[Transport, str]]:
    """pcscd (running, or started here) with the sample card served in vpcd slot 0."""
    from cartesim.harness.stack.pcscd import Pcscd, vpcd_reader
    from cartesim.harness.stack.private import PrivateStack

    # PcscdUnavailable is a NoService: the caller falls back to the in-process card.
    with tool_stack(say=say) as stack, card_in_reader(load_card(SAMPLE_CPS), 0) as t:
        if isinstance(stack, PrivateStack):
            how = "pcscd privé + vpcd"
        else:
            how = "pcscd de la machine + vpcd" if isinstance(stack, Pcscd) else "pcscd + vpcd"
        yield t, f"« {vpcd_reader(0)} » ({how})"


def main(transport: str, say: Callable[[str], None]) -> None:
    """``transport``: pcsc, direct, or auto (pcsc when pcscd + vpcd can be had)."""
    if transport != "direct":
        try:
            with _through_pcscd(say) as (t, where):
                say(f"cartesim demo : la CPS de test CABINET ROULETTE RPPS dans {where}")
                say("")
                run(t, say, IssuedCps.of().unblock_code, NEW_PIN)
            return
        except TransportError as e:
            if transport == "pcsc":
                raise
            say(f"pcscd + vpcd indisponibles ({e}) : démonstration dans ce processus, sans PC/SC")
    say("cartesim demo : la CPS de test CABINET ROULETTE RPPS, émulée dans ce processus")
    say("")
    run(DirectTransport(load_card(SAMPLE_CPS)), say, IssuedCps.of().unblock_code, NEW_PIN)
