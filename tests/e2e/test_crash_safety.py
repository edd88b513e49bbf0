"""kill -9 of `cartesim emulate --state` during a storm: a CI-sized run of `cartesim crash-test`
(the full figure: `cartesim crash-test --kills 200`)."""

from __future__ import annotations

from typing import Any

import pytest

from cartesim.harness.pytest_plugin.cards import CardSession
from cartesim.harness.tools import IssuedCps, crashtest

pytestmark = pytest.mark.e2e


def test_kill_minus_9_loses_nothing(pcscd_free_slots: CardSession) -> None:
    report = crashtest.run(kills=10, seed=7)
    assert report.violations == []
    assert report.kills == 10
    # Every kill lands while the client is in a command (it sends them back to back): how many
    # commands each round gets through depends on the machine, and is only printed.
    assert report.in_flight_at_kill == report.kills
    print(crashtest.summary(report))


ISSUED = IssuedCps(code="1234", unblock_code="12345678", pin_max=3, unblock_max=10, uses_max=10)


def test_checker_sees_a_lost_decrement() -> None:
    known = crashtest.Known("1234", pin_left=2, unblock_left=10, uses_left=10)
    state: dict[str, dict[str, Any]] = {
        "pin": {"code": "1234", "tries_left": 3},
        "unblock": {"tries_left": 10, "uses_left": 10},
    }
    assert crashtest.check(state, known, ("wrong_pin", ""), ISSUED)  # one more try than the card had
    state["pin"]["tries_left"] = 1
    assert crashtest.check(state, known, ("wrong_pin", ""), ISSUED) == []


def test_checker_sees_a_half_applied_unblock() -> None:
    known = crashtest.Known("1234", pin_left=0, unblock_left=5, uses_left=4)
    half = {"pin": {"code": "5555", "tries_left": 3}, "unblock": {"tries_left": 10, "uses_left": 4}}
    assert crashtest.check(half, known, ("right_unblock", "5555"), ISSUED)  # new code, use not counted
    whole = {"pin": {"code": "5555", "tries_left": 3}, "unblock": {"tries_left": 10, "uses_left": 3}}
    assert crashtest.check(whole, known, ("right_unblock", "5555"), ISSUED) == []
