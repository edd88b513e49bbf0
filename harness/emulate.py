"""`cartesim emulate`: emulated cards in the vpcd slots until SIGINT/SIGTERM, state kept."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from emulator import state as card_state
from emulator.bundled import resolve_profile
from emulator.errors import InputError
from emulator.vpcd import VpcdCard
from harness.pcscd import vpcd_reader
from harness.session import emulated_card

log = logging.getLogger(__name__)


def state_file(state_dir: Path, slot: int, profile: str) -> Path:
    return state_dir / f"slot{slot}-{resolve_profile(profile).stem}.json"


def run_emulation(
    profiles: list[str],
    state_dir: Path | None,
    host: str,
    port: int,
    say: Callable[[str], None],
    stop: threading.Event | None = None,
) -> None:
    """Serve one card per slot; return when ``stop`` is set or on SIGINT/SIGTERM."""
    if state_dir is not None and not state_dir.is_dir():
        raise InputError(str(state_dir), "--state", "no such folder")
    cards = [
        emulated_card(p, state_file(state_dir, slot, p) if state_dir else None)
        for slot, p in enumerate(profiles)
    ]
    stop = stop or threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    served = [VpcdCard(card, host, port + slot).start() for slot, card in enumerate(cards)]
    try:
        for slot, (name, v) in enumerate(zip(profiles, served, strict=True)):
            reader = vpcd_reader(slot) if host in ("localhost", "127.0.0.1", "::1") else f"{v.address}"
            say(f"{name} → « {reader} » (vpcd {v.address})")
        for v in served:
            if v.wait_present(5.0):
                log.info(
                    "%s: card polled by vpcd after %.0f ms", v.address, (time.monotonic() - started) * 1000
                )
            else:
                say(f"vpcd {v.address} ne répond pas encore (pcscd arrêté ?) : nouvel essai en continu")
        stop.wait()
    finally:
        for v in served:
            v.stop()
        if state_dir is not None:
            for slot, (p, card) in enumerate(zip(profiles, cards, strict=True)):
                card_state.save(card, state_file(state_dir, slot, p))
        say("Émulation arrêtée" + (f", état enregistré dans {state_dir}" if state_dir else ""))
