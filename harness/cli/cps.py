"""`cartesim cps …`: Lire CPS, the state of the codes, verify, change and unblock the code porteur."""

from __future__ import annotations

import click

from cartesim.core import pins, report
from cartesim.core.atr import CardKind
from cartesim.core.cps import CpsCard
from cartesim.core.errors import CardDefinitivelyBlocked, CodeKind
from cartesim.core.sw import SW
from cartesim.harness.cli import prompts
from cartesim.harness.cli.options import CardTarget, card_options, json_option


@click.group()
def cps() -> None:
    """Read a CPS and manage its code porteur."""


@cps.command("read")
@card_options(CardKind.CPS, "cps-roulette")
@json_option
def cps_read(target: CardTarget, as_json: bool) -> None:
    """Lire CPS: present the code porteur, print the holder and situations."""
    target.check()
    pin = prompts.ask("Code porteur", prompts.ENV_PIN)
    with target.open() as t:
        data = CpsCard(t).read(pin, confirm_last_try=target.confirmer())
    click.echo(report.cps_json(data) if as_json else report.lire_cps(data), nl=False)


@cps.command("status")
@card_options(CardKind.CPS, "cps-roulette")
@json_option
def cps_status(target: CardTarget, as_json: bool) -> None:
    """Tries left for the code porteur and the code de déblocage (consumes no try)."""
    with target.open() as t:
        s = CpsCard(t).status()
    click.echo(report.status_json(s) if as_json else report.status(s), nl=False)


@cps.command("verify")
@card_options(CardKind.CPS, "cps-roulette")
def cps_verify(target: CardTarget) -> None:
    """Present the code porteur."""
    target.check()
    pin = prompts.ask("Code porteur", prompts.ENV_PIN)
    with target.open() as t:
        CpsCard(t).verify(pin, confirm_last_try=target.confirmer())
    click.echo("Code porteur correct")


@cps.command("change-pin")
@card_options(CardKind.CPS, "cps-roulette")
def cps_change_pin(target: CardTarget) -> None:
    """Change the code porteur: current code, new code, confirmation."""
    target.check()
    old = prompts.ask("Code porteur actuel", prompts.ENV_PIN)
    new = prompts.ask_new_pin()
    confirm = prompts.ask_confirmation(new)
    with target.open() as t:
        CpsCard(t).change_pin(old, new, confirm, confirm_last_try=target.confirmer())
    click.echo("Code porteur modifié")


@cps.command("unblock")
@card_options(CardKind.CPS, "cps-roulette")
@json_option
def cps_unblock(target: CardTarget, as_json: bool) -> None:
    """Unblock, as CPS-Gestion does: code de déblocage (8 digits), new code porteur (4 to 8
    digits), confirmation; then "Lire CPS" with the new code."""
    with target.open() as t:  # a short look at the card for the prompt; nothing held after it
        left = CpsCard(t).tries_left(CodeKind.DEBLOCAGE)
    if left == 0:  # no unblock can succeed: say so before asking for anything
        raise CardDefinitivelyBlocked("tries-left query", SW.AUTH_BLOCKED)
    label = "Code de déblocage" + (f" (reste {left} tentative(s))" if left is not None else "")
    code = prompts.ask(label, prompts.ENV_UNBLOCK)
    pins.check_unblock_code(code)  # each code is refused as soon as typed: nothing sent
    new = prompts.ask_new_pin()
    confirm = prompts.ask_confirmation(new)
    prompts.progress("Recyclage en cours…")
    # The card as it is now, not as it was at the prompt: another process may have used it
    # meanwhile (its code de déblocage exhausted, say); the card then refuses here.
    with target.open() as t:
        card = CpsCard(t)
        card.unblock(code, new, confirm, confirm_last_try=target.confirmer())
        prompts.progress("Carte débloquée")
        data = card.read(new, confirm_last_try=True)  # the code just set: no typo possible
    click.echo(report.cps_json(data) if as_json else report.lire_cps(data), nl=False)
