"""Card models: each builds a CardOS (file system, PINs) from a validated profile."""

from __future__ import annotations

from pathlib import Path

from cartesim.core.atr import CardKind
from cartesim.core.errors import InputError
from cartesim.emulator import state as card_state
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards.cps import build_cps
from cartesim.emulator.cards.vitale import build_vitale
from cartesim.emulator.catalog import resolve_profile
from cartesim.emulator.faults import Fault, FaultPlan
from cartesim.emulator.profile import CpsProfile, VitaleProfile, load_profile


def build_card(profile: CpsProfile | VitaleProfile) -> CardOS:
    card = build_cps(profile) if isinstance(profile, CpsProfile) else build_vitale(profile)
    card_state.register(card, card_state.identity(profile))  # what its state files must name
    if profile.faults:
        card.faults = FaultPlan(
            Fault(
                apdu=f.apdu,
                status_word=int(f.status_word, 16) if f.status_word else None,
                delay=f.delay_ms / 1000 if f.delay_ms else None,
                mute=f.mute,
                remove=f.remove,
                reinsert_after=f.reinsert_after_ms / 1000 if f.reinsert_after_ms is not None else None,
                drop_connection=f.drop_connection,
            )
            for f in profile.faults
        )
    return card


def load_card(profile: str | Path, state: Path | None = None, kind: CardKind | None = None) -> CardOS:
    """The card of a profile (a path or a sample name), bound to its state file if given (use
    the card in ``emulator.state.session(card)``: see there).

    ``kind``: the card must be of this kind (InputError otherwise)."""
    path = resolve_profile(profile)
    loaded = load_profile(path)
    if kind is not None and loaded.kind is not kind:
        raise InputError(str(path), "type", f"this is a {loaded.kind.value} profile, not a {kind.value} one")
    card = build_card(loaded)
    if state is not None:
        card_state.bind(card, state)
    return card
