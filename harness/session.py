"""Open a card for a CLI command or a test: an emulated card in-process (PC/SC comes later)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from core.trace import JsonlTracer
from core.transport import Transport
from core.transport.direct import DirectTransport
from emulator import state as card_state
from emulator.bundled import resolve_profile
from emulator.cardos import CardOS
from emulator.cards import build_card
from emulator.errors import InputError
from emulator.profile import CpsProfile, VitaleProfile, load_profile


def emulated_card(profile: str | Path, state: Path | None = None, kind: str | None = None) -> CardOS:
    """Build the card of a profile (a path or a sample name), bound to its state file if given."""
    path = resolve_profile(str(profile))
    loaded = load_profile(path)
    if kind is not None and loaded.type != kind:
        raise InputError(str(path), "type", f"this is a {loaded.type} profile, not a {kind} one")
    card = build_card(loaded)
    if state is not None:
        card_state.bind(card, state)
    return card


@contextmanager
def open_transport(
    kind: str, profile: str | Path, state: Path | None = None, trace: Path | None = None
) -> Iterator[Transport]:
    with ExitStack() as stack:
        card = emulated_card(profile, state, kind)
        transport: Transport = DirectTransport(card)
        stack.callback(transport.close)
        if trace is not None:
            try:
                stream = stack.enter_context(open(trace, "a", encoding="utf-8"))
            except OSError as e:
                raise InputError(str(trace), "", e.strerror or str(e)) from None
            transport.tracers.append(JsonlTracer(stream))
        yield transport


__all__ = ["CpsProfile", "VitaleProfile", "emulated_card", "open_transport"]
