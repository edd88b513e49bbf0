"""`cartesim readers` and `cartesim emulate`: PC/SC readers, and emulated cards put in them."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import click

from cartesim.core.atr import detect
from cartesim.core.errors import InputError
from cartesim.emulator.vpcd import VPCD_PORT
from cartesim.harness.cli.options import json_option
from cartesim.harness.cli.schema import format_name
from cartesim.harness.stack.pcscd import VPCD_SLOTS


@click.command("readers")
@json_option
def readers_cmd(as_json: bool) -> None:
    """List the PC/SC readers with card presence, ATR and detected card type."""
    from cartesim.core.transport.pcsc import list_readers

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
        click.echo(json.dumps({"format": format_name("readers"), "readers": rows}, indent=2))
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


@click.command("emulate")
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
    "--private",
    is_flag=True,
    help="Run a private pcscd and its vpcd readers (no root; any number of cards), reached by "
    "PC/SC programs given the PCSCLITE_CSOCK_NAME it prints. Its ports exist on no network.",
)
def emulate_cmd(
    profiles: tuple[str, ...],
    state_dir: Path | None,
    vpcd: str,
    state_files: tuple[str, ...],
    control: Path | None,
    private: bool,
) -> None:
    """Put emulated cards in the vpcd readers, one per slot in order, until SIGINT/SIGTERM.

    `cartesim emulate cps-roulette vitale-famille` puts the CPS in "Virtual PCD 00 00" and the
    Vitale in "Virtual PCD 00 01", like the two-slot readers used with SESAM-Vitale. The
    machine's vpcd has two readers; `--private` gives as many as there are cards.
    """
    from cartesim.harness.control.socket import control_socket

    try:
        host, port = _vpcd_address(vpcd)
    except click.BadParameter as e:
        raise InputError("--vpcd", "", str(e.message)) from None
    socket_path, optional = control_socket(control)
    with ExitStack() as stack:
        if private:
            from cartesim.harness.stack.private import ENV_PCSC_SOCKET, PrivateStack

            if (host, port) != ("localhost", VPCD_PORT):
                raise InputError(
                    "--vpcd", "", "a private stack has its own vpcd: --vpcd goes without --private"
                )
            own = stack.enter_context(PrivateStack(max(2, len(profiles))))
            click.echo(f"pcscd privé : {ENV_PCSC_SOCKET}={own.pcsc_socket}", err=True)
            click.echo(f"export {ENV_PCSC_SOCKET}={own.pcsc_socket}")  # for a shell to eval
        elif len(profiles) > VPCD_SLOTS:
            raise InputError(
                "emulate", "", f"the machine's vpcd has {VPCD_SLOTS} readers: more cards need --private"
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
    from cartesim.harness.tools.emulate import parse_state_files, run_emulation

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
