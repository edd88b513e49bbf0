"""`cartesim card` driving `cartesim emulate` behind a real pcscd + vpcd: what PC/SC clients see."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cartesim.harness.pytest_plugin.cards import CardSession
from tests.helpers import CLI, CPS_READER, VITALE_READER, run, stop, wait_for

pytestmark = pytest.mark.e2e


def _emulate(control: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "emulate", "cps-roulette", "vitale-famille", "--control", str(control), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def control(tmp_path: Path) -> Path:
    return tmp_path / "ctl" / "control.sock"


@pytest.fixture
def emulate(pcscd_free_slots: CardSession, control: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """`cartesim emulate cps-roulette vitale-famille --control …` as a separate process."""
    (tmp_path / "cards").mkdir()
    proc = _emulate(control, "--state", str(tmp_path / "cards"))
    try:
        wait_for({CPS_READER: "cps", VITALE_READER: "vitale"})
        yield proc
    finally:
        stop(proc)
        wait_for({CPS_READER: None, VITALE_READER: None})  # the slots free for the next test


def card(control: Path, *args: str) -> subprocess.CompletedProcess[str]:
    r = run("card", *args, "--control", str(control))
    assert r.returncode == 0, r.stderr
    return r


def test_remove_insert_set_swap_through_pcscd(emulate: subprocess.Popen[str], control: Path) -> None:
    assert stat.S_IMODE(control.stat().st_mode) == 0o600
    assert stat.S_IMODE(control.parent.stat().st_mode) == 0o700

    card(control, "remove", "0")
    wait_for({CPS_READER: None, VITALE_READER: "vitale"})
    r = run("cps", "status", "--reader", CPS_READER)
    assert r.returncode == 3

    card(control, "insert", "0")  # returns once vpcd has polled the card
    rows = wait_for({CPS_READER: "cps"})
    assert rows[CPS_READER]["atr"] == "3BAC00402A001225006480000310009000"
    assert json.loads(card(control, "status", "0", "--json").stdout)["slots"][0]["seen_by_reader"] is True

    card(control, "set", "0", "last-try")
    r = run("cps", "status", "--pcsc", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pin_tries_left"] == 1

    card(control, "swap", "1", "vitale-expired-rights")
    wait_for({VITALE_READER: "vitale"})
    r = run("vitale", "read", "--pcsc", "--json", "--date", "2026-11-26")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["assure"]["nom"] == "MARTIN"
    assert not any(b["droits_ouverts"] for b in data["beneficiaires"])


def test_swap_to_another_kind_of_card(emulate: subprocess.Popen[str], control: Path) -> None:
    """A Vitale in place of the CPS: pcscd sees the removal, then the new card and its ATR."""
    card(control, "swap", "0", "vitale-famille")
    rows = wait_for({CPS_READER: "vitale"})
    assert rows[CPS_READER]["atr"] == "3B751300004509EA9000"
    card(control, "swap", "0", "cps-roulette")
    wait_for({CPS_READER: "cps"})


def test_save_state_then_restart_from_it(
    emulate: subprocess.Popen[str], control: Path, tmp_path: Path
) -> None:
    card(control, "set", "0", "unblock-last-try")
    saved = tmp_path / "bug.json"
    card(control, "save-state", "0", str(saved))
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stop(emulate) == 0
    wait_for({CPS_READER: None, VITALE_READER: None})

    again = _emulate(control, "--state-file", f"0={saved}")
    try:
        wait_for({CPS_READER: "cps", VITALE_READER: "vitale"})
        r = run("cps", "status", "--pcsc", "--json")
        assert r.returncode == 0, r.stderr
        status = json.loads(r.stdout)
        assert (status["pin_tries_left"], status["unblock_tries_left"], status["blocked"]) == (0, 1, True)
        shown = json.loads(card(control, "status", "0", "--json").stdout)["slots"][0]
        assert (shown["pin_tries_left"], shown["unblock_tries_left"]) == (0, 1)
    finally:
        assert stop(again) == 0
    assert json.loads(saved.read_text())["unblock"]["tries_left"] == 1  # read, never written


def test_card_without_emulate(pcscd_free_slots: CardSession, control: Path) -> None:
    r = run("card", "status", "--control", str(control))
    assert r.returncode == 3 and r.stderr.count("\n") == 1
