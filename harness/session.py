"""Open a card for a CLI command: an emulated card in-process, or a card in a PC/SC reader."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from core.atr import detect
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


def pcsc_transport(kind: str, reader: str | None, timeout: float = 0.0) -> Transport:
    """A PC/SC transport: ``reader`` is an exact name, ``re:PATTERN``, or None for the first
    reader holding a card of ``kind`` (detected by ATR)."""
    from core.errors import NoCard
    from core.transport.pcsc import PcscTransport, first_reader_with

    if reader is None:
        found = first_reader_with(lambda atr: detect(atr).value == kind)
        if found is None:
            label = "CPS" if kind == "cps" else "Carte Vitale"
            raise NoCard(f"Aucun lecteur ne contient de {label}")
        return PcscTransport(found.name, timeout=timeout)
    if reader.startswith("re:"):
        return PcscTransport(re.compile(reader[3:]), timeout=timeout)
    return PcscTransport(reader, timeout=timeout)


@contextmanager
def open_transport(
    kind: str,
    profile: str | Path,
    state: Path | None = None,
    trace: Path | None = None,
    *,
    pcsc: bool = False,
    reader: str | None = None,
) -> Iterator[Transport]:
    """In-process emulated card from ``profile``, or (``pcsc`` or ``reader``) a PC/SC card."""
    with ExitStack() as stack:
        transport: Transport
        if pcsc or reader is not None:
            transport = pcsc_transport(kind, reader)
        else:
            transport = DirectTransport(emulated_card(profile, state, kind))
        stack.callback(transport.close)
        if trace is not None:
            try:
                stream = stack.enter_context(open(trace, "a", encoding="utf-8"))
            except OSError as e:
                raise InputError(str(trace), "", e.strerror or str(e)) from None
            transport.tracers.append(JsonlTracer(stream))
        yield transport


__all__ = ["CpsProfile", "VitaleProfile", "emulated_card", "open_transport"]
