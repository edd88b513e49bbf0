"""`cartesim vitale read`: the insured person, the beneficiaries and their AMO rights."""

from __future__ import annotations

import datetime as dt

import click

from cartesim.core import report
from cartesim.core.atr import CardKind
from cartesim.core.vitale import VitaleCard
from cartesim.harness.cli.options import CardTarget, card_options, json_option


@click.group()
def vitale() -> None:
    """Read a Carte Vitale."""


@vitale.command("read")
@card_options(CardKind.VITALE, "vitale-famille")
@json_option
@click.option(
    "--date",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Date at which AMO rights are checked (default: today).",
)
def vitale_read(target: CardTarget, as_json: bool, on: dt.datetime | None) -> None:
    """Lire Carte Vitale: insured person, beneficiaries and AMO rights."""
    today = on.date() if on else dt.date.today()
    with target.open() as t:
        data = VitaleCard(t).read()
    click.echo(report.vitale_json(data, today) if as_json else report.vitale(data, today), nl=False)
