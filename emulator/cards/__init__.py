"""Card models: each builds a CardOS (file system, PINs) from a validated profile."""

from __future__ import annotations

from emulator.cardos import CardOS
from emulator.cards.cps import build_cps
from emulator.cards.vitale import build_vitale
from emulator.faults import Fault, FaultPlan
from emulator.profile import CpsProfile, VitaleProfile


def build_card(profile: CpsProfile | VitaleProfile) -> CardOS:
    card = build_cps(profile) if isinstance(profile, CpsProfile) else build_vitale(profile)
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


__all__ = ["build_card", "build_cps", "build_vitale"]
