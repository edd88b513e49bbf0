"""The ``cartesim`` command line. Help in English; card messages in French, as the real tools."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO, cast

import click

from cartesim.core.errors import (
    BadInput,
    CardDataError,
    CardError,
    InputError,
    LastTryNotConfirmed,
    TransportError,
)
from cartesim.harness.cli import ExitCode
from cartesim.harness.cli.card import card
from cartesim.harness.cli.cps import cps
from cartesim.harness.cli.pcsc import emulate_cmd, readers_cmd
from cartesim.harness.cli.profile import profile_group
from cartesim.harness.cli.replay import replay_cmd
from cartesim.harness.cli.scenario import scenario
from cartesim.harness.cli.tools import bench_cmd, crash_test_cmd, demo_cmd, fuzz_cmd, race_cmd
from cartesim.harness.cli.vitale import vitale


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


for command in (
    cps,
    vitale,
    readers_cmd,
    emulate_cmd,
    demo_cmd,
    bench_cmd,
    fuzz_cmd,
    crash_test_cmd,
    race_cmd,
    profile_group,
    card,
    replay_cmd,
    scenario,
):
    cli.add_command(command)


# --- entry point -------------------------------------------------------------------------------
def _fill_closed_std_fds() -> None:
    """A standard descriptor closed at start (``<&-``, ``>&-``) is opened on /dev/null: else the
    next file opened (a state file, its lock) would take its number, and a write meant for stdout
    would land in it. Python has already set ``sys.stdin`` to None then: prompts say so."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one


class _GuardedStdout:
    """``sys.stdout`` while the CLI runs: a write that fails (a full disk, ``>/dev/full``, a
    closed pipe) raises an InputError, and so does every later one (click probes the stream and
    swallows the first error). fd 1 is then pointed at /dev/null, so the interpreter's own flush
    at exit has nothing left to fail on."""

    def __init__(self, real: TextIO) -> None:
        self._real = real
        self._failed: InputError | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)  # encoding, errors, isatty...: click asks for them

    def _guard(self, call: Callable[..., Any], *args: Any) -> Any:
        if self._failed is not None:
            raise self._failed
        try:
            return call(*args)
        except OSError as e:
            self._failed = InputError("standard output", "", e.strerror or str(e))
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
            raise self._failed from None

    def write(self, text: str) -> int:
        return int(self._guard(self._real.write, text))

    def flush(self) -> None:
        self._guard(self._real.flush)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map every expected failure to one line on stderr and its exit code."""
    _fill_closed_std_fds()
    real: TextIO | None = sys.stdout
    if real is sys.__stdout__ and real is not None:  # not when a test captures the output
        sys.stdout = cast(TextIO, _GuardedStdout(real))
    try:
        return _run(argv)
    finally:
        sys.stdout = real


def _run(argv: list[str] | None) -> int:
    try:
        code = cli.main(args=argv, prog_name="cartesim", standalone_mode=False)
        if sys.stdout is not None:
            sys.stdout.flush()  # inside: a stdout that cannot be written is one line too
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return ExitCode.INPUT
    except click.Abort:
        click.echo("Abandon", err=True)
        return ExitCode.INPUT
    except BadInput as e:
        click.echo(f"cartesim: {e}", err=True)
        return ExitCode.INPUT
    except (CardError, CardDataError, LastTryNotConfirmed) as e:
        click.echo(str(e), err=True)
        return ExitCode.REFUSED
    except TransportError as e:
        click.echo(f"cartesim: {e}", err=True)
        return ExitCode.NO_CARD
    except KeyboardInterrupt:
        click.echo("Abandon", err=True)
        return 130
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else ExitCode.INPUT
    return code if isinstance(code, int) else ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
