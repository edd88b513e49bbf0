"""The ``cartesim`` command line. Help in English; card messages in French, as the real tools."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from core import report
from core.atr import detect
from core.cps import ConfirmLastTry, CpsCard, check_unblock_format
from core.errors import (
    BadCode,
    CardDataError,
    CardDefinitivelyBlocked,
    CardError,
    CodeKind,
    LastTryNotConfirmed,
    TransportError,
)
from core.sw import SW
from core.transport import Transport
from core.vitale import VitaleCard
from emulator import profile as profile_schema
from emulator.bundled import resolve_profile, sample_names
from emulator.errors import InputError
from harness import prompts
from harness.cli_card import card
from harness.cli_replay import replay_cmd
from harness.cli_scenario import scenario
from harness.session import open_transport

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_REFUSED, EXIT_INPUT, EXIT_NO_CARD = 0, 1, 2, 3


@dataclass(frozen=True)
class CardTarget:
    """The card a command talks to: an emulated one from a profile, or one in a PC/SC reader."""

    kind: str
    profile: str
    state: Path | None
    trace: Path | None
    reader: str | None
    pcsc: bool
    confirm_last_try: bool

    @property
    def in_reader(self) -> bool:
        return self.pcsc or self.reader is not None

    def open(self) -> AbstractContextManager[Transport]:
        return open_transport(
            self.kind, self.profile, self.state, self.trace, pcsc=self.pcsc, reader=self.reader
        )

    def confirmer(self) -> ConfirmLastTry:
        """The last-try guard's answer: the in-process emulator puts no real card at stake;
        in a reader, --confirm-last-try or a yes at the terminal's question."""
        if self.confirm_last_try or not self.in_reader:
            return True
        return prompts.confirm_last_try


def card_options(kind: str, default_profile: str) -> Callable[[F], F]:
    """The options of every card command, handed to the command as one ``target``."""

    def wrap(f: F) -> F:
        @functools.wraps(f)
        def command(**kw: Any) -> Any:
            names = ("profile", "state", "trace", "reader", "pcsc", "confirm_last_try")
            target = CardTarget(kind, *(kw.pop(n) for n in names))
            return f(target=target, **kw)

        options = [
            click.option(
                "--profile",
                default=default_profile,
                show_default=True,
                help="YAML card profile, or the name of a shipped sample.",
            ),
            click.option(
                "--state",
                type=click.Path(dir_okay=False, path_type=Path),
                help="The card's mutable state (counters, current PIN), kept between runs. "
                "Missing file: a fresh card.",
            ),
            click.option(
                "--trace",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Append every APDU exchange to this file as JSON lines (codes redacted).",
            ),
            click.option(
                "--reader",
                metavar="NAME",
                help="Use the card in this PC/SC reader (exact name, or re:REGEX) instead of the emulator.",
            ),
            click.option(
                "--pcsc",
                is_flag=True,
                help="Use a card in a PC/SC reader: the first reader holding the right kind of card.",
            ),
            click.option(
                "--confirm-last-try",
                is_flag=True,
                help="With one try left on a card in a reader, send the code anyway "
                "(otherwise asked at the terminal, refused elsewhere).",
            ),
        ]
        for option in reversed(options):
            command = option(command)
        return command  # type: ignore[return-value]

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
@card_options("cps", "cps-roulette")
@json_option
def cps_read(target: CardTarget, as_json: bool) -> None:
    """Lire CPS: present the code porteur, print the holder and situations."""
    with target.open() as t:
        pin = prompts.ask("Code porteur", prompts.ENV_PIN)
        data = CpsCard(t).read(pin, confirm_last_try=target.confirmer())
    click.echo(report.to_json(data) if as_json else report.lire_cps(data), nl=False)


@cps.command("status")
@card_options("cps", "cps-roulette")
@json_option
def cps_status(target: CardTarget, as_json: bool) -> None:
    """Tries left for the code porteur and the code de déblocage (consumes no try)."""
    with target.open() as t:
        s = CpsCard(t).status()
    click.echo(report.status_json(s) if as_json else report.status(s), nl=False)


@cps.command("verify")
@card_options("cps", "cps-roulette")
def cps_verify(target: CardTarget) -> None:
    """Present the code porteur."""
    with target.open() as t:
        pin = prompts.ask("Code porteur", prompts.ENV_PIN)
        CpsCard(t).verify(pin, confirm_last_try=target.confirmer())
    click.echo("Code porteur correct")


@cps.command("change-pin")
@card_options("cps", "cps-roulette")
def cps_change_pin(target: CardTarget) -> None:
    """Change the code porteur: current code, new code, confirmation."""
    with target.open() as t:
        old = prompts.ask("Code porteur actuel", prompts.ENV_PIN)
        new = prompts.ask_new_pin()
        confirm = prompts.ask("Confirmation du nouveau code porteur", prompts.ENV_NEW_PIN)
        CpsCard(t).change_pin(old, new, confirm, confirm_last_try=target.confirmer())
    click.echo("Code porteur modifié")


@cps.command("unblock")
@card_options("cps", "cps-roulette")
@json_option
def cps_unblock(target: CardTarget, as_json: bool) -> None:
    """Unblock, as CPS-Gestion does: code de déblocage (8 digits), new code porteur (4 to 8
    digits), confirmation; then "Lire CPS" with the new code."""
    with target.open() as t:
        card = CpsCard(t)
        left = card.tries_left(CodeKind.DEBLOCAGE)
        if left == 0:  # no unblock can succeed: say so before asking for anything
            raise CardDefinitivelyBlocked("tries-left query", SW.AUTH_BLOCKED)
        label = "Code de déblocage" + (f" (reste {left} tentative(s))" if left is not None else "")
        code = prompts.ask(label, prompts.ENV_UNBLOCK)
        check_unblock_format(code)  # refused here, before anything is sent
        new = prompts.ask_new_pin()
        confirm = prompts.ask("Confirmation du nouveau code porteur", prompts.ENV_NEW_PIN)
        if new != confirm:
            raise BadCode("La confirmation ne correspond pas au nouveau code porteur")
        prompts.progress("Recyclage en cours…")
        card.unblock(code, new, confirm, confirm_last_try=target.confirmer())
        prompts.progress("Carte débloquée")
        data = card.read(new, confirm_last_try=True)  # the code just set: no typo possible
    click.echo(report.to_json(data) if as_json else report.lire_cps(data), nl=False)


# --- vitale ------------------------------------------------------------------------------------
@cli.group()
def vitale() -> None:
    """Read a Carte Vitale."""


@vitale.command("read")
@card_options("vitale", "vitale-famille")
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
@click.option(
    "--state-file",
    "state_files",
    multiple=True,
    metavar="SLOT=FILE",
    help="Start slot SLOT from this saved state (e.g. from `cartesim card save-state`); read, never "
    "written. Repeatable.",
)
@click.option(
    "--control",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Control socket for `cartesim card` (default: $CARTESIM_CONTROL, else "
    "$XDG_RUNTIME_DIR/cartesim/control.sock, else /tmp/cartesim-UID/control.sock).",
)
@click.option(
    "--netns",
    metavar="NAME",
    help="Loopback-only: run the cards, and pcscd if none runs there, in network namespace NAME "
    "(created if needed; root). vpcd then listens where no network reaches.",
)
def emulate_cmd(
    profiles: tuple[str, ...],
    state_dir: Path | None,
    vpcd: str,
    state_files: tuple[str, ...],
    control: Path | None,
    netns: str | None,
) -> None:
    """Put emulated cards in the vpcd readers, one per slot in order, until SIGINT/SIGTERM.

    `cartesim emulate cps-roulette vitale-famille` puts the CPS in "Virtual PCD 00 00" and the
    Vitale in "Virtual PCD 00 01", like the two-slot readers used with SESAM-Vitale.
    """
    from harness.control import control_socket

    try:
        host, port = _vpcd_address(vpcd)
    except click.BadParameter as e:
        raise InputError("--vpcd", "", str(e.message)) from None
    socket_path, optional = control_socket(control)
    with ExitStack() as stack:
        if netns is not None:
            from harness import netns as namespaces
            from harness.pcscd import Pcscd

            namespaces.ensure(netns)
            namespaces.enter(netns)  # before any thread: the card threads and pcscd follow
            daemon = Pcscd(netns=netns).start()
            stack.callback(daemon.stop)
            click.echo(
                f"réseau isolé : espace de noms {netns} (pcscd {'lancé' if daemon.owned else 'déjà là'})",
                err=True,
            )
        _emulate(profiles, state_dir, host, port, state_files, socket_path, optional)


def _emulate(
    profiles: tuple[str, ...],
    state_dir: Path | None,
    host: str,
    port: int,
    state_files: tuple[str, ...],
    socket_path: Path,
    optional: bool,
) -> None:
    from harness.emulate import parse_state_files, run_emulation

    run_emulation(
        list(profiles),
        state_dir,
        host,
        port,
        say=lambda m: click.echo(m, err=True),
        control=socket_path,
        control_optional=optional,
        state_files=parse_state_files(state_files, len(profiles)),
    )


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


@cli.command("fuzz")
@click.option("--cases", default=100_000, show_default=True, help="How many APDUs to send in all.")
@click.option("--seed", default=0, show_default=True, help="Seed of the generator (runs are reproducible).")
def fuzz_cmd(cases: int, seed: int) -> None:
    """Fuzz the card OS: arbitrary bytes and well-formed but wrong APDUs against each card model."""
    from harness import fuzz

    result = fuzz.run(cases, seed)
    models = ", ".join(f"{k} {v}" for k, v in result.per_model.items())
    click.echo(
        f"fuzz: {result.cases} cases ({models}) in {result.seconds:.1f} s, {len(result.failures)} failure(s)"
    )
    for failure in result.failures[:20]:
        click.echo(f"  {failure}")
    if result.failures:
        raise SystemExit(EXIT_REFUSED)


@cli.command("crash-test")
@click.option("--kills", default=200, show_default=True, help="How many times to kill -9 the emulator.")
@click.option("--seed", default=0, show_default=True)
def crash_test_cmd(kills: int, seed: int) -> None:
    """kill -9 `cartesim emulate --state` during a storm of wrong codes and unblocks; check that
    the state always loads and never grants more tries than the card had left (needs pcscd)."""
    from harness import crashtest

    result = crashtest.run(kills, seed, say=lambda m: click.echo(m, err=True))
    click.echo(crashtest.summary(result))
    if result.violations:
        raise SystemExit(EXIT_REFUSED)


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


cli.add_command(card)
cli.add_command(replay_cmd)
cli.add_command(scenario)


# --- entry point -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map every expected failure to one line on stderr and its exit code."""
    try:
        code = cli.main(args=argv, prog_name="cartesim", standalone_mode=False)
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
    except (CardError, CardDataError, LastTryNotConfirmed) as e:
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
    return code if isinstance(code, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
