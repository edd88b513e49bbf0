"""The ``cartesim`` command line. Help in English; card messages in French, as the real tools."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from core import report
from core.atr import detect
from core.cps import CpsCard
from core.errors import BadCode, CardDataError, CardError, TransportError
from core.vitale import VitaleCard
from emulator import profile as profile_schema
from emulator.bundled import resolve_profile, sample_names
from emulator.errors import InputError
from harness import prompts
from harness.session import open_transport

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_REFUSED, EXIT_INPUT, EXIT_NO_CARD = 0, 1, 2, 3


def card_options(default_profile: str) -> Callable[[F], F]:
    def wrap(f: F) -> F:
        f = click.option(
            "--pcsc",
            is_flag=True,
            help="Use a card in a PC/SC reader: the first reader holding the right kind of card.",
        )(f)
        f = click.option(
            "--reader",
            metavar="NAME",
            help="Use the card in this PC/SC reader (exact name, or re:REGEX) instead of the emulator.",
        )(f)
        f = click.option(
            "--trace",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Append every APDU exchange to this file as JSON lines (codes redacted).",
        )(f)
        f = click.option(
            "--state",
            type=click.Path(dir_okay=False, path_type=Path),
            help="The card's mutable state (counters, current PIN), kept between runs. "
            "Missing file: a fresh card.",
        )(f)
        f = click.option(
            "--profile",
            default=default_profile,
            show_default=True,
            help="YAML card profile, or the name of a shipped sample.",
        )(f)
        return f

    return wrap


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the text report.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cartesim")
@click.option("-v", "--verbose", count=True, help="Log to stderr (-v info, -vv debug). Codes never appear.")
def cli(verbose: int) -> None:
    """cartesim: CPS and Carte Vitale emulator and test harness.

    Card commands run against an emulated card in this process, built from a YAML profile.
    Codes are read from CARTESIM_PIN / CARTESIM_UNBLOCK_CODE / CARTESIM_NEW_PIN, else from a
    hidden prompt on a terminal, else one per line on stdin; never from the command line.

    Exit codes: 0 success, 1 the card refused, 2 bad input, 3 no reader/card/PC/SC service.
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


# --- cps ---------------------------------------------------------------------------------------
@cli.group()
def cps() -> None:
    """Read a CPS and manage its code porteur."""


@cps.command("read")
@card_options("cps-roulette")
@json_option
def cps_read(
    profile: str, state: Path | None, trace: Path | None, reader: str | None, pcsc: bool, as_json: bool
) -> None:
    """Lire CPS: present the code porteur, print the holder and situations."""
    with open_transport("cps", profile, state, trace, pcsc=pcsc, reader=reader) as t:
        pin = prompts.ask("Code porteur", prompts.ENV_PIN)
        data = CpsCard(t).read(pin)
    click.echo(report.to_json(data) if as_json else report.lire_cps(data), nl=False)


@cps.command("status")
@card_options("cps-roulette")
@json_option
def cps_status(
    profile: str, state: Path | None, trace: Path | None, reader: str | None, pcsc: bool, as_json: bool
) -> None:
    """Tries left for the code porteur and the code de déblocage (consumes no try)."""
    with open_transport("cps", profile, state, trace, pcsc=pcsc, reader=reader) as t:
        s = CpsCard(t).status()
    click.echo(report.status_json(s) if as_json else report.status(s), nl=False)


@cps.command("verify")
@card_options("cps-roulette")
def cps_verify(profile: str, state: Path | None, trace: Path | None, reader: str | None, pcsc: bool) -> None:
    """Present the code porteur."""
    with open_transport("cps", profile, state, trace, pcsc=pcsc, reader=reader) as t:
        CpsCard(t).verify(prompts.ask("Code porteur", prompts.ENV_PIN))
    click.echo("Code porteur correct")


@cps.command("change-pin")
@card_options("cps-roulette")
def cps_change_pin(
    profile: str, state: Path | None, trace: Path | None, reader: str | None, pcsc: bool
) -> None:
    """Change the code porteur: current code, new code, confirmation."""
    with open_transport("cps", profile, state, trace, pcsc=pcsc, reader=reader) as t:
        old = prompts.ask("Code porteur actuel", prompts.ENV_PIN)
        new = prompts.ask("Nouveau code porteur", prompts.ENV_NEW_PIN)
        confirm = prompts.ask("Confirmation du nouveau code porteur", prompts.ENV_NEW_PIN)
        CpsCard(t).change_pin(old, new, confirm)
    click.echo("Code porteur modifié")


@cps.command("unblock")
@card_options("cps-roulette")
def cps_unblock(profile: str, state: Path | None, trace: Path | None, reader: str | None, pcsc: bool) -> None:
    """Unblock: code de déblocage (8 digits), new code porteur, confirmation."""
    with open_transport("cps", profile, state, trace, pcsc=pcsc, reader=reader) as t:
        code = prompts.ask("Code de déblocage", prompts.ENV_UNBLOCK)
        new = prompts.ask("Nouveau code porteur", prompts.ENV_NEW_PIN)
        confirm = prompts.ask("Confirmation du nouveau code porteur", prompts.ENV_NEW_PIN)
        CpsCard(t).unblock(code, new, confirm)
    click.echo("Carte débloquée")


# --- vitale ------------------------------------------------------------------------------------
@cli.group()
def vitale() -> None:
    """Read a Carte Vitale."""


@vitale.command("read")
@card_options("vitale-famille")
@json_option
@click.option(
    "--date",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Date at which AMO rights are checked (default: today).",
)
def vitale_read(
    profile: str,
    state: Path | None,
    trace: Path | None,
    reader: str | None,
    pcsc: bool,
    as_json: bool,
    on: dt.datetime | None,
) -> None:
    """Lire Carte Vitale: insured person, beneficiaries and AMO rights."""
    today = on.date() if on else dt.date.today()
    with open_transport("vitale", profile, state, trace, pcsc=pcsc, reader=reader) as t:
        data = VitaleCard(t).read()
    click.echo(report.vitale_json(data, today) if as_json else report.vitale(data, today), nl=False)


# --- PC/SC: readers, emulate, demo ------------------------------------------------------------
@cli.command("readers")
@json_option
def readers_cmd(as_json: bool) -> None:
    """List the PC/SC readers with card presence, ATR and detected card type."""
    from core.transport.pcsc import list_readers

    rows = [
        {
            "reader": r.name,
            "card": r.card_present,
            "atr": r.atr.hex().upper() if r.atr else None,
            "type": detect(r.atr).value if r.atr else None,
        }
        for r in list_readers()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("Aucun lecteur")
    for row in rows:
        card = f"{row['type']}  {row['atr']}" if row["card"] else "pas de carte"
        click.echo(f"{row['reader']}: {card}")


def _vpcd_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter("expected HOST:PORT, e.g. localhost:35963")
    return host, int(port)


@cli.command("emulate")
@click.argument("profiles", nargs=-1, required=True)
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder keeping each card's state (slotN-PROFILE.json), kept between runs.",
)
@click.option(
    "--vpcd",
    default="localhost:35963",
    show_default=True,
    help="vpcd address of slot 0; slot N uses port + N.",
)
def emulate_cmd(profiles: tuple[str, ...], state_dir: Path | None, vpcd: str) -> None:
    """Put emulated cards in the vpcd readers, one per slot in order, until SIGINT/SIGTERM.

    `cartesim emulate cps-roulette vitale-famille` puts the CPS in "Virtual PCD 00 00" and the
    Vitale in "Virtual PCD 00 01", like the two-slot readers used with SESAM-Vitale.
    """
    from harness.emulate import run_emulation

    try:
        host, port = _vpcd_address(vpcd)
    except click.BadParameter as e:
        raise InputError("--vpcd", "", str(e.message)) from None
    run_emulation(list(profiles), state_dir, host, port, say=lambda m: click.echo(m, err=True))


@cli.command("demo")
@click.option(
    "--transport",
    type=click.Choice(["auto", "pcsc", "direct"]),
    default="auto",
    show_default=True,
    help="auto: through pcscd + vpcd when they can be had, else in-process.",
)
def demo_cmd(transport: str) -> None:
    """The public unblock guide's story on the sample CPS: three wrong codes, unblock, Lire CPS."""
    from harness.demo import main as demo_main

    demo_main(transport, say=click.echo)


@cli.command("bench")
@json_option
@click.option("--seconds", default=2.0, show_default=True, help="Duration of each throughput run.")
def bench_cmd(as_json: bool, seconds: float) -> None:
    """Measure throughput and latency: in-process, through pcscd, against the stack's floor."""
    from dataclasses import asdict

    from harness import bench

    figures = bench.run(seconds, say=lambda m: click.echo(m, err=True))
    click.echo(json.dumps(asdict(figures), indent=2) if as_json else bench.table(figures), nl=not as_json)


# --- profiles ----------------------------------------------------------------------------------
@cli.group("profile")
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
            click.echo(f"{name}: ok ({p.type})")
        except InputError as e:
            click.echo(str(e), err=True)
            failed = True
    if failed:
        raise SystemExit(EXIT_INPUT)


@profile_group.command("samples")
def profile_samples() -> None:
    """List the sample profiles shipped with cartesim."""
    for name in sample_names():
        click.echo(name)


@profile_group.command("schema")
def profile_schema_cmd() -> None:
    """Print the profile JSON Schema (for editors: yaml-language-server)."""
    click.echo(json.dumps(profile_schema.json_schema(), indent=2, ensure_ascii=False))


# --- entry point -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map every expected failure to one line on stderr and its exit code."""
    try:
        cli.main(args=argv, prog_name="cartesim", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return EXIT_INPUT
    except click.Abort:
        click.echo("Abandon", err=True)
        return EXIT_INPUT
    except (InputError, BadCode) as e:
        click.echo(f"cartesim: {e}", err=True)
        return EXIT_INPUT
    except (CardError, CardDataError) as e:
        click.echo(str(e), err=True)
        return EXIT_REFUSED
    except TransportError as e:
        click.echo(f"cartesim: {e}", err=True)
        return EXIT_NO_CARD
    except KeyboardInterrupt:
        click.echo("Abandon", err=True)
        return 130
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_INPUT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
