"""`cartesim replay`: send a recorded trace to a fresh emulated card, report what differs.

Exit 0 identical, 1 some
response differs, 2 bad trace, profile or state file (through cli.main()).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from cartesim.harness.cli import ExitCode
from cartesim.harness.cli.schema import format_name
from cartesim.harness.tools.replay import render, replay


@click.command("replay")
@click.argument("trace", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--profile", required=True, help="YAML card profile, or the name of a shipped sample.")
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Start from this saved state (cartesim-state/1, e.g. from `card save-state`); never written.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the text report.")
def replay_cmd(trace: Path, profile: str, state: Path | None, as_json: bool) -> None:
    """Replay TRACE (written by --trace) against a fresh card built from --profile.

    Prints every response that differs from the recorded one. Masked codes are rebuilt from the
    recorded outcome: the right code where the card said 90 00, a wrong one elsewhere.
    """
    report = replay(trace, profile, state=state)
    if as_json:
        doc = {"format": format_name("replay"), **report.to_dict()}
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        click.echo(render(report), nl=False)
    if not report.identical:
        # SystemExit, not ctx.exit(): with standalone_mode=False click would swallow the code.
        raise SystemExit(ExitCode.REFUSED)
