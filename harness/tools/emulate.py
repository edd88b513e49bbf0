"""`cartesim emulate`: emulated cards in the vpcd slots until SIGINT/SIGTERM, state kept.

While it runs, ``cartesim card …`` drives the cards through the control socket (harness/control/).
With ``--state DIR``, each APDU and each control operation is one session of the card's state
file (emulator.state): the file locked and re-read first. The CLI may use the same file meanwhile
(``cartesim cps verify --state DIR/slot0-cps-roulette.json``): both see one card.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

from cartesim.core.errors import InputError
from cartesim.emulator import state as card_state
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.emulator.catalog import resolve_profile
from cartesim.emulator.vpcd import VpcdCard
from cartesim.harness.control.local import EmulatedSlot, LocalCardControl
from cartesim.harness.control.server import ControlServer
from cartesim.harness.stack.pcscd import vpcd_reader
from cartesim.harness.stack.slots import SwappableCard

log = logging.getLogger(__name__)

POLLED_WITHIN = 5.0  # seconds: vpcd polls a card it knows within ~0.4 s; else say so once


def state_file(state_dir: Path, slot: int, profile: str) -> Path:
    return state_dir / f"slot{slot}-{resolve_profile(profile).stem}.json"


def parse_state_files(values: Sequence[str], slots: int) -> dict[int, Path]:
    """``--state-file SLOT=FILE`` values: the saved state each slot starts from."""
    out: dict[int, Path] = {}
    for value in values:
        slot, sep, file = value.partition("=")
        if not sep or not slot.isdigit() or not file:
            raise InputError("--state-file", value, "expected SLOT=FILE, e.g. 0=bug.json")
        if int(slot) >= slots:
            raise InputError("--state-file", value, f"no slot {slot} (slots 0 to {slots - 1})")
        out[int(slot)] = Path(file)
    return out


def _start_control(
    control: LocalCardControl, path: Path | None, optional: bool, say: Callable[[str], None]
) -> ControlServer | None:
    if path is None:
        return None
    try:
        server = ControlServer(control, path).start()
    except InputError as e:
        if not optional:
            raise
        say(f"pas de contrôle des cartes ({e})")
        return None
    say(f"contrôle : cartesim card … (socket {path})")
    return server


def run_emulation(
    profiles: list[str],
    state_dir: Path | None,
    host: str,
    port: int,
    say: Callable[[str], None],
    stop: threading.Event | None = None,
    *,
    control: Path | None = None,
    control_optional: bool = False,
    state_files: Mapping[int, Path] | None = None,
) -> None:
    """Serve one card per slot; return when ``stop`` is set or on SIGINT/SIGTERM.

    ``control``: the control socket to serve (None: none); with ``control_optional`` a socket
    that cannot be had is only reported. ``state_files``: slot → saved state to start from.
    """
    if state_dir is not None and not state_dir.is_dir():
        raise InputError(str(state_dir), "--state", "no such folder")

    def make_card(slot: int, profile: str) -> CardOS:
        return load_card(profile, state_file(state_dir, slot, profile) if state_dir else None)

    cards = [make_card(slot, p) for slot, p in enumerate(profiles)]
    for slot, path in (state_files or {}).items():
        if not 0 <= slot < len(cards):
            raise InputError(str(path), "--state-file", f"no slot {slot} (slots 0 to {len(cards) - 1})")
        # The saved file is read, never written: the reproduction stays as it was saved.
        card_state.adopt(cards[slot], path)  # the --state folder's file starts from it too
    holders = [SwappableCard(card) for card in cards]
    served = [VpcdCard(holder, host, port + slot) for slot, holder in enumerate(holders)]
    local = LocalCardControl(
        [EmulatedSlot(p, h, v) for p, h, v in zip(profiles, holders, served, strict=True)], make_card
    )
    server = _start_control(local, control, control_optional, say)  # before any card: errors exit clean
    stop = stop or threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    for v in served:
        v.start()
    try:
        for slot, (name, v) in enumerate(zip(profiles, served, strict=True)):
            reader = vpcd_reader(slot) if host in ("localhost", "127.0.0.1", "::1") else f"{v.address}"
            say(f"{name} → « {reader} » (vpcd {v.address})")
        for v in served:
            # A signal during this wait must stop emulate at once: wait in short steps of stop.
            deadline = time.monotonic() + POLLED_WITHIN
            while not v.wait_present(0) and not stop.is_set() and time.monotonic() < deadline:
                stop.wait(0.05)
            if stop.is_set():
                break
            if v.wait_present(0):
                log.info(
                    "%s: card polled by vpcd after %.0f ms", v.address, (time.monotonic() - started) * 1000
                )
            else:
                say(f"vpcd {v.address} ne répond pas encore (pcscd arrêté ?) : nouvel essai en continu")
        stop.wait()
    finally:
        if server is not None:
            server.stop()
        for v in served:
            v.stop()
        if state_dir is not None:
            # Every change was written as it happened, in its session; the last save only writes
            # a card whose file is missing. It never writes older counters over what the CLI (or
            # anything else) wrote to the file meanwhile: the file is the card.
            for s in local.slots:
                for card in (s.holder.card, *s.drawer.values()):
                    card_state.flush(card)
        say("Émulation arrêtée" + (f", état enregistré dans {state_dir}" if state_dir else ""))
