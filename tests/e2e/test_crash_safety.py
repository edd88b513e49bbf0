"""kill -9 of `cartesim emulate --state` during a storm: a CI-sized run of `cartesim crash-test`
(the full figure: `cartesim crash-test --kills 200`)."""

from __future__ import annotations

from typing import Any

import pytest

from cartesim.harness.pytest_plugin.fixtures import CardSession
from cartesim.harness.tools import crashtest

pytestmark = pytest.mark.e2e


def test_kill_minus_9_loses_nothing(pcscd_free_slots: CardSession) -> None:
    report = crashtest.run(kills=10, seed=7)
    assert report.violations == []
    assert report.kills == 10
    assert report.apdus > 50
    assert report.in_flight_at_kill > 0  # kills really land mid-command


def test_checker_sees_a_lost_decrement() -> None:
    known = crashtest.Known(pin_left=2)
    state: dict[str, dict[str, Any]] = {
        "pin": {"code": "1234", "tries_left": 3},
        "unblock": {"tries_left": 10, "uses_left": 10},
    }
    assert crashtest.check(state, known, ("wrong_pin", ""))  # one more try than the card had
    state["pin"]["tries_left"] = 1
    assert crashtest.check(state, known, ("wrong_pin", "")) == []


def test_checker_sees_a_half_applied_unblock() -> None:
    known = crashtest.Known(pin_left=0, unblock_left=5, uses_left=4)
    half = {"pin": {"code": "5555", "tries_left": 3}, "unblock": {"tries_left": 10, "uses_left": 4}}
    assert crashtest.check(half, known, ("right_unblock", "5555"))  # new code, use not counted
    whole = {"pin": {"code": "5555", "tries_left": 3}, "unblock": {"tries_left": 10, "uses_left": 3}}
    assert crashtest.check(whole, known, ("right_unblock", "5555")) == []
