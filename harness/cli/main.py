"""The ``cartesim`` command line. Help in English; card messages in French, as the real tools.

Every failure is one line on stderr and an exit code (0 success, 1 the card refused, 2 bad input
or usage, 3 no reader, card or PC/SC service); under ``--json`` it is also a ``cartesim-error/1``
object on stdout. ``-v`` / ``-vv`` are taken anywhere on the command line.
"""

from __future__ import annotations

import json
import logging
import os
import re
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
    error_name,
)
from cartesim.harness.cli import ExitCode
from cartesim.harness.cli.card import card
from cartesim.harness.cli.cps import cps
from cartesim.harness.cli.pcsc import emulate_cmd, readers_cmd
from cartesim.harness.cli.profile import profile_group
from cartesim.harness.cli.prompts import ENV_NEW_PIN, ENV_PIN, ENV_UNBLOCK
from cartesim.harness.cli.replay import replay_cmd
from cartesim.harness.cli.scenario import scenario
from cartesim.harness.cli.schema import format_name
from cartesim.harness.cli.tools import bench_cmd, crash_test_cmd, demo_cmd, fuzz_cmd, race_cmd
from cartesim.harness.cli.vitale import vitale

_VERBOSITY = "cartesim.verbosity"


def _verbosity(ctx: click.Context, _param: click.Parameter, count: int) -> None:
    """-v before or after any sub-command: the counts add up, the last call sets the level."""
    root = ctx.find_root()
    total = root.meta[_VERBOSITY] = root.meta.get(_VERBOSITY, 0) + count
    level = {0: logging.WARNING, 1: logging.INFO}.get(total, logging.DEBUG)
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)


def _verbose_option() -> click.Option:
    return click.Option(
        ["-v", "--verbose"],
        count=True,
        expose_value=False,
        callback=_verbosity,
        help="Log to stderr (-v info, -vv debug), anywhere on the command line. Codes never appear.",
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cartesim")
def cli() -> None:
    """cartesim: CPS and Carte Vitale emulator and test harness.

    Card commands run against an emulated card in this process, built from a YAML profile.
    Codes are read from CARTESIM_PIN / CARTESIM_UNBLOCK_CODE / CARTESIM_NEW_PIN, else from a
    hidden prompt on a terminal, else one per line on stdin; never from the command line.

    Exit codes: 0 success, 1 the card refused, 2 bad input, 3 no reader/card/PC/SC service.
    Under --json, an error is also a JSON object on stdout (docs/json.md).

    Shell completion: eval "$(_CARTESIM_COMPLETE=bash_source cartesim)" (zsh_source, fish_source).
    """


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


def _everywhere(command: click.Command) -> None:
    command.params.append(_verbose_option())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _everywhere(sub)


_everywhere(cli)


# --- usage errors: one line ----------------------------------------------------------------------
# Options a user may try for a code; codes never come from the command line (ps shows it to all).
_CODE_OPTION = re.compile(r"^--?((new|old|current)-?)?(pin|code|puk|password|unblock-code)(-\w+)?$")
CODES_FROM = (
    f"codes never come from the command line (every user of the machine can read it): "
    f"set {ENV_PIN}, {ENV_UNBLOCK} or {ENV_NEW_PIN}, else type them at the hidden prompt, "
    f"else give them on stdin, one per line"
)


def _usage_line(e: click.UsageError) -> str:
    """A usage error in one line: the command, the problem, where help is."""
    path = e.ctx.command_path if e.ctx else "cartesim"
    if isinstance(e, click.NoSuchOption) and _CODE_OPTION.match(e.option_name):
        return f"{path}: {e.option_name}: {CODES_FROM}"
    message = e.format_message()
    if path.startswith("cartesim cps") and "unexpected extra argument" in message:
        return f"{path}: {CODES_FROM}"  # never echoed: it may be a code
    return f"{path}: {message.rstrip('.')} (see {path} --help)"


# --- entry point ---------------------------------------------------------------------------------
def _wants_json(args: list[str]) -> bool:
    return "--json" in args[: args.index("--")] if "--" in args else "--json" in args


# --- standard streams --------------------------------------------------------------------------
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
    """Run the CLI; map every expected failure to one line on stderr and its exit code (and,
    under --json, to a ``cartesim-error/1`` object on stdout)."""
    _fill_closed_std_fds()
    real: TextIO | None = sys.stdout
    if real is sys.__stdout__ and real is not None:  # not when a test captures the output
        sys.stdout = cast(TextIO, _GuardedStdout(real))
    try:
        return _run(argv)
    finally:
        sys.stdout = real


def _run(argv: list[str] | None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = _wants_json(args)

    def fail(message: str, code: int, error: str) -> int:
        click.echo(message, err=True)
        if as_json:
            doc = {"format": format_name("error"), "error": error, "message": message, "exit_code": code}
            click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return code

    try:
        code = cli.main(args=args, prog_name="cartesim", standalone_mode=False)
        if sys.stdout is not None:
            sys.stdout.flush()  # inside: a stdout that cannot be written is one line too
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.NoArgsIsHelpError as e:  # `cartesim`, `cartesim cps`: the help
        click.echo(e.ctx.get_help() if e.ctx else e.format_message())
        return ExitCode.INPUT
    except click.UsageError as e:
        return fail(_usage_line(e), ExitCode.INPUT, "usage")
    except click.ClickException as e:
        return fail(f"cartesim: {e.format_message()}", ExitCode.INPUT, "bad_input")
    except click.Abort:
        return fail("Abandon", ExitCode.INPUT, "aborted")
    except BadInput as e:
        return fail(f"cartesim: {e}", ExitCode.INPUT, error_name(e))
    except (CardError, CardDataError, LastTryNotConfirmed) as e:
        return fail(str(e), ExitCode.REFUSED, error_name(e))
    except TransportError as e:
        return fail(f"cartesim: {e}", ExitCode.NO_CARD, error_name(e))
    except KeyboardInterrupt:
        return fail("Abandon", 130, "interrupted")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else ExitCode.INPUT
    return code if isinstance(code, int) else ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
