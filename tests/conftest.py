"""Hardware-free fixtures: emulated cards in-process."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import settings

from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from tests.helpers import CARDS

# HYPOTHESIS_PROFILE=thorough: ten times the examples (and ≥ 5,000 model-based steps).
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def cps_os() -> CardOS:
    return load_card(CARDS / "cps-roulette.yaml")


@pytest.fixture
def vitale_os() -> CardOS:
    return load_card(CARDS / "vitale-famille.yaml")


@pytest.fixture
def cps_t(cps_os: CardOS) -> DirectTransport:
    return DirectTransport(cps_os)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures of the model-based test (HYPOTHESIS_PROFILE=thorough: ≥ 5,000 steps)."""
    model = sys.modules.get("tests.test_model")
    if model is not None and model.STEPS["count"]:
        terminalreporter.write_line(
            f"cartesim model-based test: {model.STEPS['count']} APDU steps checked against the reference model"
        )
