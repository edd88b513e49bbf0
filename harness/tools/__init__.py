"""Tools behind the command line: emulate, demo, replay, bench, fuzz, crash test, race, PKCS#11."""

from __future__ import annotations

import sys
from dataclasses import dataclass

# How a tool starts `cartesim` as a child process (the emulator to kill, the emulate to time):
# the interpreter running now, so the child runs this very cartesim, installed or not.
CARTESIM_ARGV = (sys.executable, "-m", "cartesim")

# The card the tools play with: the sample CPS of the public unblock guide (CABINET ROULETTE
# RPPS). Its codes are read from its profile, never written again here.
SAMPLE_CPS = "cps-roulette"


@dataclass(frozen=True)
class IssuedCps:
    """A shipped CPS sample as its profile issues it: its codes and their counters."""

    code: str
    unblock_code: str
    pin_max: int
    unblock_max: int
    uses_max: int

    @classmethod
    def of(cls, name: str = SAMPLE_CPS) -> IssuedCps:
        from cartesim.emulator.catalog import resolve_profile
        from cartesim.emulator.profile import CpsProfile, load_profile

        profile = load_profile(resolve_profile(name))
        assert isinstance(profile, CpsProfile), f"{name} is not a CPS sample"
        p, u = profile.pin, profile.unblock
        return cls(p.code, u.code, p.tries_max, u.tries_max, u.uses_max)
