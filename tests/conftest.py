"""Hardware-free fixtures: emulated cards in-process."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from tests.helpers import CARDS

# No test may depend on the machine's speed: hypothesis's per-example deadline (200 ms) and its
# too-slow health check are timings, so both are off; a busy 2-core CI machine runs the same
# examples, only slower. HYPOTHESIS_PROFILE=thorough: ten times the examples (and ≥ 5,000
# model-based steps).
UNTIMED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("cartesim", UNTIMED)
settings.register_profile("thorough", UNTIMED, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "cartesim"))


@pytest.fixture
def cps_os() -> CardOS:
    """The emulated cps-roulette card itself, no reader: send it raw APDUs (``helpers.apdu``)."""
    return load_card(CARDS / "cps-roulette.yaml")


@pytest.fixture
def vitale_os() -> CardOS:
    """The emulated vitale-famille card itself, no reader."""
    return load_card(CARDS / "vitale-famille.yaml")


@pytest.fixture
def cps_t(cps_os: CardOS) -> DirectTransport:
    """The engine's in-process transport to ``cps_os``."""
    return DirectTransport(cps_os)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures of the model-based test (HYPOTHESIS_PROFILE=thorough: ≥ 5,000 steps)."""
    model = sys.modules.get("tests.test_model")
    if model is not None and model.STEPS["count"]:
        terminalreporter.write_line(
            f"cartesim model-based test: {model.STEPS['count']} APDU steps checked against the reference model"
        )
