"""Faults from a profile through the real stack: `cartesim emulate faulty.yaml` behind pcscd, and
the CLI on the other side reporting each one with its operation and APDU."""

from __future__ import annotations

import json
import subprocess
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from cartesim.harness.pytest_plugin.cards import CardSession
from tests import helpers as emulation
from tests.helpers import CPS_READER, faulty, run

pytestmark = pytest.mark.e2e


def emulating(profile: Path) -> AbstractContextManager[subprocess.Popen[str]]:
    return emulation.emulating(str(profile), expect={CPS_READER: "cps"})


def _status() -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        r = run("cps", "status", "--pcsc", "--json")
        if r.returncode == 0 or time.monotonic() > deadline:
            return json.loads(r.stdout)
        time.sleep(0.1)  # the card is on its way back into the reader


def test_removed_mid_unblock_then_back(pcscd_free_slots: CardSession, tmp_path: Path) -> None:
    # The card's APDU 1: the CLI's tries-left query for the prompt (its own connection, closed
    # before the codes are asked); 2: the last-try guard's; 3: RESET RETRY COUNTER, the second
    # APDU of the unblock's connection.
    profile = faulty(tmp_path, "cps-blocked", {"apdu": 3, "remove": True, "reinsert_after_ms": 800})
    with emulating(profile):
        r = run("cps", "unblock", "--pcsc", stdin="12345678\n4321\n4321\n")
        assert r.returncode == 3, r.stderr
        assert (
            r.stderr.strip().splitlines()[-1] == "cartesim: Carte retirée (déblocage, APDU n°2 : 00 2C 00 01)"
        )
        status = _status()  # untouched: still blocked, no use counted
        assert (status["pin_tries_left"], status["unblock_uses_left"], status["unblock_tries_left"]) == (
            0,
            10,
            10,
        )
        r = run("cps", "unblock", "--pcsc", stdin="12345678\n4321\n4321\n")
        assert r.returncode == 0, r.stderr


def test_status_word_fault(pcscd_free_slots: CardSession, tmp_path: Path) -> None:
    with emulating(faulty(tmp_path, "cps-roulette", {"apdu": 2, "status_word": "6F00"})):
        r = run("cps", "verify", "--pcsc", stdin="1234\n")
        assert (r.returncode, r.stderr.strip()) == (1, "VERIFY: 6F00 (no precise diagnosis)")
        assert run("cps", "verify", "--pcsc", stdin="1234\n").returncode == 0


@pytest.mark.parametrize("fault", [{"mute": True}, {"drop_connection": True}])
def test_mute_and_dropped_link(pcscd_free_slots: CardSession, tmp_path: Path, fault: dict[str, Any]) -> None:
    with emulating(faulty(tmp_path, "cps-roulette", {"apdu": 2, **fault})):
        r = run("cps", "verify", "--pcsc", stdin="1234\n")
        assert r.returncode == 3, r.stderr
        assert "APDU n°2 : 00 20 00 01" in r.stderr
        assert _status()["pin_tries_left"] == 3  # the card came back by itself, counters kept
