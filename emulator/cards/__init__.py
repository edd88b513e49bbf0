"""Card models: each builds a CardOS (file system, PINs) from a validated profile."""

from __future__ import annotations

from emulator.cardos import CardOS
from emulator.cards.cps import build_cps
from emulator.cards.vitale import build_vitale
from emulator.profile import CpsProfile, VitaleProfile


def build_card(profile: CpsProfile | VitaleProfile) -> CardOS:
    if isinstance(profile, CpsProfile):
        return build_cps(profile)
    return build_vitale(profile)


__all__ = ["build_card", "build_cps", "build_vitale"]
