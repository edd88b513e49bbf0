"""`cartesim profile check | samples | schema`."""

from __future__ import annotations

import json

import click

from cartesim.core.errors import InputError
from cartesim.emulator import profile as profile_schema
from cartesim.emulator.catalog import resolve_profile, sample_names
from cartesim.harness.cli import ExitCode


@click.group("profile")
def profile_group() -> None:
    """Check card profiles, list the samples, print the JSON Schema."""


@profile_group.command("check")
@click.argument("files", nargs=-1, required=True)
def profile_check(files: tuple[str, ...]) -> None:
    """Validate profiles; one line per file."""
    failed = False
    for name in files:
        try:
            p = profile_schema.load_profile(resolve_profile(name))
            click.echo(f"{name}: ok ({p.kind.value})")
        except InputError as e:
            click.echo(str(e), err=True)
            failed = True
    if failed:
        raise SystemExit(ExitCode.INPUT)


@profile_group.command("samples")
def profile_samples() -> None:
    """List the sample profiles shipped with cartesim: name, description, file.

    A name is what --profile, `emulate` and scenarios take; the file is a starting point for a
    profile of your own.
    """
    for name in sample_names():
        path = resolve_profile(name)
        description = profile_schema.load_profile(path).description
        click.echo(f"{name}: {description}\n  {path}")


@profile_group.command("schema")
def profile_schema_cmd() -> None:
    """Print the profile JSON Schema (for editors: yaml-language-server)."""
    click.echo(json.dumps(profile_schema.json_schema(), indent=2, ensure_ascii=False))
