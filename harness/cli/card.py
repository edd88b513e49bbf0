"""`cartesim card …`: drive the cards of a running `cartesim emulate` through its control socket.

Errors reach cartesim.harness.cli.main.main(): no emulate
listening is exit 3, a bad slot, state or profile exit 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from cartesim.core import pins, report
from cartesim.core.cps import PinStatus
from cartesim.harness.cli.schema import format_name
from cartesim.harness.control.client import CardControl
from cartesim.harness.control.local import SlotStatus

F = TypeVar("F", bound=Callable[..., Any])

slot_argument = click.argument("slot", type=click.IntRange(min=0))


def control_option(f: F) -> F:
    return click.option(
        "--control",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Control socket of `cartesim emulate` (default: $CARTESIM_CONTROL, else "
        "$XDG_RUNTIME_DIR/cartesim/control.sock, else /tmp/cartesim-UID/control.sock).",
    )(f)


def _pin_status(s: SlotStatus) -> PinStatus:
    c = s.card
    return PinStatus(
        pin_tries_left=c.pin_tries_left,
        pin_tries_max=c.pin_tries_max,
        pin_verified=c.pin_verified,
        unblock_usable=c.unblock_tries_left is not None
        and not pins.unblock_exhausted(c.unblock_tries_left, c.unblock_uses_left),
        unblock_tries_left=c.unblock_tries_left,
        unblock_tries_max=c.unblock_tries_max,
        unblock_uses_left=c.unblock_uses_left,
        unblock_uses_max=c.unblock_uses_max,
    )


def describe(s: SlotStatus) -> str:
    """A slot as text; the codes' part in the words of `cartesim cps status`."""
    if not s.present:
        where = "carte retirée"
    elif s.seen_by_reader:
        where = "carte présente"
    else:
        where = "carte insérée, pas encore vue par le lecteur"
    text = f"Emplacement {s.slot} ({s.profile}) : {where}, {s.card.type.value} {s.card.atr}\n"
    if s.card.pin_tries_max is not None:
        text += "".join(f"  {line}\n" for line in report.status(_pin_status(s)).splitlines())
    return text


@click.group("card")
def card() -> None:
    """Remove, insert, swap, reset, inspect or set the cards of a running `cartesim emulate`.

    SLOT is the vpcd slot: 0 is "Virtual PCD 00 00", 1 is "Virtual PCD 00 01". No code is ever
    shown; `save-state` writes the exact state, current code included, to an owner-only file.
    """


@card.command("status")
@click.argument("slot", type=click.IntRange(min=0), required=False)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (cartesim-card-status/1: the slots asked for)."
)
@control_option
def status_cmd(slot: int | None, as_json: bool, control: Path | None) -> None:
    """Each card: profile, present or not, ATR and type, tries left, blocked or not."""
    api = CardControl(control)
    slots = [api.status(slot)] if slot is not None else api.status_all()
    if as_json:
        doc = {"format": format_name("card-status"), "slots": [s.to_dict() for s in slots]}
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo("".join(describe(s) for s in slots), nl=False)


@card.command("remove")
@slot_argument
@control_option
def remove_cmd(slot: int, control: Path | None) -> None:
    """Take the card out of its reader (PC/SC sees it gone within ~400 ms)."""
    CardControl(control).remove(slot)
    click.echo(f"Emplacement {slot} : carte retirée")


@card.command("insert")
@slot_argument
@control_option
def insert_cmd(slot: int, control: Path | None) -> None:
    """Put the card back in its reader; waits (2 s at most) until the reader has seen it."""
    s = CardControl(control).insert(slot)
    click.echo(describe(s), nl=False)


@card.command("swap")
@slot_argument
@click.argument("profile")
@control_option
def swap_cmd(slot: int, profile: str, control: Path | None) -> None:
    """Take the slot's card out and put the card of PROFILE in (a sample name or a YAML file).

    A card swapped out and back in is the same card, counters included.
    """
    s = CardControl(control).swap(slot, profile)
    click.echo(describe(s), nl=False)


@card.command("reset")
@slot_argument
@control_option
def reset_cmd(slot: int, control: Path | None) -> None:
    """Put the card back as its profile issued it: code porteur and counters (state file too)."""
    s = CardControl(control).reset(slot)
    click.echo(describe(s), nl=False)


@card.command("set")
@slot_argument
@click.argument("states", nargs=-1, required=True)
@control_option
def set_cmd(slot: int, states: tuple[str, ...], control: Path | None) -> None:
    """Set the card's counters: named states and COUNTER=N, applied in order.

    \b
    fresh                 every counter at its maximum
    last-try              one code porteur try left
    blocked               code porteur blocked (the unblock code still usable)
    unblock-last-try      blocked, one code de déblocage try left
    definitively-blocked  blocked, no code de déblocage try left
    pin_tries_left=N  unblock_tries_left=N  unblock_uses_left=N
    """
    s = CardControl(control).set(slot, *states)
    click.echo(describe(s), nl=False)


@card.command("save-state")
@slot_argument
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@control_option
def save_state_cmd(slot: int, file: Path, control: Path | None) -> None:
    """Save the card's exact state (cartesim-state/1, owner-only) to FILE.

    Load it with `cartesim emulate … --state-file SLOT=FILE`, or `cartesim replay --state FILE`.
    """
    written = CardControl(control).save_state(slot, file)
    click.echo(f"État de l'emplacement {slot} enregistré dans {written}")
