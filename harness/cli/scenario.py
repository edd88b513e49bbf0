"""``cartesim scenario run FILE...``: play scenario files (registered in cli/main.py).

Exit codes, as every cartesim command: 0 every scenario went as expected, 1 a step did not
(the report says which, expected against actual, with its APDUs), 2 a bad scenario file (one
line: file, place, problem), 3 no pcscd / vpcd for ``--transport pcsc``. InputError and
TransportError are left to ``harness.cli.main``, which prints them and sets the exit code.
"""

from __future__ import annotations

from pathlib import Path

import click

from cartesim.harness.cli import ExitCode
from cartesim.harness.scenario.load import load_scenario
from cartesim.harness.scenario.run import TRANSPORTS, run_scenario


@click.group("scenario")
def scenario() -> None:
    """Play QA scenarios: cards, steps, and what each step expects (docs/scenarios.md)."""


@scenario.command("run")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--transport",
    type=click.Choice(TRANSPORTS),
    default="direct",
    show_default=True,
    help="direct: the cards in this process; pcsc: served on the vpcd slots, through pcscd "
    "(a running one, else started and stopped here).",
)
@click.option(
    "--trace",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append every APDU exchange to this file as JSON lines (codes redacted).",
)
def run_cmd(files: tuple[Path, ...], transport: str, trace: Path | None) -> None:
    """Play each scenario FILE; stop a scenario at its first unexpected step."""
    scenarios = [load_scenario(f) for f in files]  # every file checked before any card is used
    failed = 0
    for i, sc in enumerate(scenarios):
        if i:
            click.echo("")
        failed += not run_scenario(sc, transport, trace, say=click.echo).passed
    if len(scenarios) > 1:
        click.echo(f"\n{len(scenarios) - failed}/{len(scenarios)} scenario(s) as expected")
    if failed:
        raise SystemExit(ExitCode.REFUSED)
