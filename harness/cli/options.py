"""What every card command shares: the card it talks to (``CardTarget``) and its options."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from cartesim.core.atr import CardKind
from cartesim.core.cps import ConfirmLastTry
from cartesim.core.trace import trace_file
from cartesim.core.transport import Transport
from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator import state as card_state
from cartesim.emulator.cards import load_card
from cartesim.harness.cli import prompts

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CardTarget:
    """The card a command talks to: an emulated one from a profile, or one in a PC/SC reader."""

    kind: CardKind
    profile: str
    state: Path | None
    trace: Path | None
    reader: str | None
    pcsc: bool
    confirm_last_try: bool

    @property
    def in_reader(self) -> bool:
        return self.pcsc or self.reader is not None

    def check(self) -> None:
        """Refuse a bad profile or state file before any code is asked for: the card is loaded
        (in a session, lock released at once) and dropped; the command loads it again."""
        if not self.in_reader:
            load_card(self.profile, self.state, self.kind)

    @contextmanager
    def open(self) -> Iterator[Transport]:
        """The in-process card of ``profile``, or (``--pcsc``, ``--reader``) a card in a reader.

        In-process, the whole command is one session of the card (emulator.state): its state
        file locked and re-read, so the command acts on the card as it is now, and no other
        process acts on it until the command is done. Never ask for anything inside: a process
        waiting at a prompt must hold no lock and no copy of the state."""
        with ExitStack() as stack:
            transport: Transport
            if self.in_reader:
                from cartesim.core.transport.pcsc import open_reader

                transport = open_reader(self.reader, self.kind)
            else:
                card = load_card(self.profile, self.state, self.kind)
                stack.enter_context(card_state.session(card))
                transport = DirectTransport(card)
            stack.callback(transport.close)
            if self.trace is not None:
                transport.tracers.append(stack.enter_context(trace_file(self.trace)))
            yield transport

    def confirmer(self) -> ConfirmLastTry:
        """The last-try guard's answer: the in-process emulator puts no real card at stake;
        in a reader, --confirm-last-try or a yes at the terminal's question."""
        if self.confirm_last_try or not self.in_reader:
            return True
        return prompts.confirm_last_try


def card_options(kind: CardKind, default_profile: str) -> Callable[[F], F]:
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
