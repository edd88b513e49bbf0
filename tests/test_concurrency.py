"""One card, one state: real CLI processes (and emulate's served card) racing on one state file.

Every outcome must be one that some serial order of the commands gives (the race rounds of
harness/tools/race.py, checked against a reference model in every order); a process waiting at
its prompt holds no copy of the card (the stale-prompt cases, driven at a terminal). Outcomes are
asserted, never timings. `cartesim race --rounds N` runs the same rounds, more of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pexpect
import pytest

from cartesim.emulator.cards import load_card
from cartesim.harness.control.settings import set_card
from cartesim.harness.tools import IssuedCps, race
from tests.helpers import ROULETTE, run, screen, spawn

ISSUED = IssuedCps.of()
CODE, UNBLOCK = ISSUED.code, ISSUED.unblock_code
WRONG, WRONG_UNBLOCK = "0000", "00000000"


def fresh(pin_left: int = ISSUED.pin_max, unblock_left: int = ISSUED.unblock_max) -> race.Card:
    return race.Card(CODE, pin_left, unblock_left, ISSUED.uses_max)


def verify(code: str) -> race.Command:
    return race.Command("verify", code)


def saved(state: Path) -> dict:
    return json.loads(state.read_text())


# --- the oracle ------------------------------------------------------------------------------
def test_the_oracle_catches_what_was_reported() -> None:
    """The anomalies of the issue, as the processes reported them: none has a serial order."""
    extra = race.extra_tries
    right_wrong = [verify(CODE), verify(WRONG)]
    # Right against wrong at one try left: the wrong code blocked the card *and* the right one passed.
    assert extra(fresh(1), right_wrong, ["Code porteur correct", "Carte bloquée"], fresh(3), ISSUED) >= 1
    assert (
        extra(
            fresh(1),
            right_wrong,
            ["Code porteur correct", "Code porteur erroné (reste 2 tentative(s))"],
            fresh(2),
            ISSUED,
        )
        == 0
    )
    assert extra(fresh(1), right_wrong, ["Carte bloquée", "Carte bloquée"], fresh(0), ISSUED) == 0
    # Five wrong codes at once: four compared; or the card not blocked after five.
    five = [verify(WRONG)] * 5
    told = ["Code porteur erroné (reste 2 tentative(s))"] * 2 + [
        "Code porteur erroné (reste 1 tentative(s))"
    ] * 2
    assert extra(fresh(), five, [*told, "Carte bloquée"], fresh(0), ISSUED) == 2
    serial = ["Code porteur erroné (reste 2 tentative(s))", "Code porteur erroné (reste 1 tentative(s))"]
    assert (
        extra(fresh(), five, [*serial, "Carte bloquée", "Carte bloquée", "Carte bloquée"], fresh(1), ISSUED)
        == 1
    )
    assert (
        extra(fresh(), five, [*serial, "Carte bloquée", "Carte bloquée", "Carte bloquée"], fresh(0), ISSUED)
        == 0
    )
    # Two wrong unblock codes, one counted.
    two = [race.Command("unblock", WRONG_UNBLOCK, "2468")] * 2
    nine = "Code de déblocage erroné (reste 9 tentative(s))"
    assert extra(fresh(0), two, [nine, nine], fresh(0, 9), ISSUED) == 1  # one try not counted
    # A blocked card unblocked by a right code typed before it was blocked.
    stale = [verify(CODE), *[verify(WRONG)] * 3]
    got = ["Code porteur correct", *serial, "Carte bloquée"]
    assert extra(fresh(), stale, got, fresh(3), ISSUED) >= 1  # no order ends with 3 tries and those answers


# --- rounds of real processes ------------------------------------------------------------------
# Sized for the in-process suite on 2 shared cores; `cartesim race` runs the same with more rounds.
@pytest.mark.parametrize(
    ("scenario", "rounds", "processes"),
    [
        ("wrong-pins", 1, 5),  # never more wrong codes compared than tries (one more round below)
        ("wrong-unblocks", 1, 5),  # every wrong code de déblocage counted
        ("right-against-wrong", 2, 2),  # one try left: a serial order's answers, or a bug
        ("emulate-against-cli", 1, 4),  # emulate's served card and CLI processes on one file
        ("mixed", 1, 5),  # right and wrong codes, PIN changes, unblocks
    ],
)
def test_race(scenario: str, rounds: int, processes: int) -> None:
    report = race.run(rounds, processes, seed=rounds, scenarios=[scenario])
    assert report.not_serial == []
    assert report.extra_tries == 0
    assert report.rounds == rounds


def test_a_round_leaves_the_serial_outcome(tmp_path: Path) -> None:
    """What the oracle accepts, spelled out: five wrong codes, the card blocked after three."""
    r = race.race_round(tmp_path, fresh(), [verify(WRONG)] * 5, ISSUED)
    assert sorted(r.messages) == [
        "Carte bloquée",
        "Carte bloquée",
        "Carte bloquée",
        "Code porteur erroné (reste 1 tentative(s))",
        "Code porteur erroné (reste 2 tentative(s))",
    ]
    assert r.end == fresh(0)
    assert r.extra == 0


# --- a process waiting at its prompt holds no copy of the card ---------------------------------
def _state(tmp_path: Path, *settings: str) -> Path:
    state = tmp_path / "s.json"
    card = load_card(ROULETTE, state)
    if settings:
        set_card(card, list(settings))
    return state


def _cli(state: Path, *args: str, stdin: str) -> str:
    r = run("cps", *args, "--state", str(state), stdin=stdin)
    return (r.stdout + r.stderr).strip().splitlines()[-1]


def _finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert isinstance(child.exitstatus, int)
    return child.exitstatus


def test_verify_waiting_while_the_card_gets_blocked(tmp_path: Path) -> None:
    """Once: the waiting verify got the right code, said "Code porteur correct" and wrote 3 tries
    back over a blocked card. The right code typed before the card was blocked unblocks nothing."""
    state = _state(tmp_path)
    child = spawn("cps", "verify", "--state", str(state))
    child.expect_exact("Code porteur : ")
    lockout = [_cli(state, "verify", stdin=f"{WRONG}\n") for _ in range(3)]
    assert lockout[-1] == "Carte bloquée"
    child.sendline(CODE)
    assert _finish(child) == 1
    assert "Carte bloquée" in screen(child)
    assert saved(state)["pin"]["tries_left"] == 0


def test_unblock_waiting_while_the_unblock_code_is_exhausted(tmp_path: Path) -> None:
    """Once: a definitively blocked card came back through an unblock that was waiting."""
    state = _state(tmp_path, "unblock-last-try")
    child = spawn("cps", "unblock", "--state", str(state))
    child.expect_exact("Code de déblocage (reste 1 tentative(s)) : ")  # CPS-Gestion's prompt
    assert _cli(state, "unblock", stdin=f"{WRONG_UNBLOCK}\n2468\n2468\n") == "Carte définitivement bloquée"
    child.sendline(UNBLOCK)
    child.expect_exact("Nouveau code porteur (4 à 8 chiffres) : ")
    child.sendline("4321")
    child.expect_exact("Confirmation du nouveau code porteur : ")
    child.sendline("4321")
    child.expect_exact("Recyclage en cours…")
    child.expect_exact("Carte définitivement bloquée")
    assert _finish(child) == 1
    after = saved(state)
    assert after["pin"] == {"code": CODE, "tries_left": 0}
    assert after["unblock"]["tries_left"] == 0


def test_verify_waiting_across_a_pin_change(tmp_path: Path) -> None:
    """Once: the waiting verify wrote the old code back, and the PIN change was lost."""
    state = _state(tmp_path)
    child = spawn("cps", "verify", "--state", str(state))
    child.expect_exact("Code porteur : ")
    assert _cli(state, "change-pin", stdin=f"{CODE}\n5678\n5678\n") == "Code porteur modifié"
    child.sendline(CODE)  # the code as it was when the prompt appeared
    assert _finish(child) == 1
    assert "Code porteur erroné (reste 2 tentative(s))" in screen(child)
    assert saved(state)["pin"] == {"code": "5678", "tries_left": 2}
    assert _cli(state, "verify", stdin="5678\n") == "Code porteur correct"


def test_two_unblocks_waiting(tmp_path: Path) -> None:
    """Once: both succeeded but one use was counted. Both succeed, one after the other; both count."""
    state = _state(tmp_path, "blocked")
    children = [spawn("cps", "unblock", "--state", str(state)) for _ in range(2)]
    for child in children:
        child.expect_exact("Code de déblocage (reste 10 tentative(s)) : ")
    for child, new in zip(children, ("1111", "2222"), strict=True):
        child.sendline(UNBLOCK)
        child.expect_exact("Nouveau code porteur (4 à 8 chiffres) : ")
        child.sendline(new)
        child.expect_exact("Confirmation du nouveau code porteur : ")
        child.sendline(new)
        child.expect_exact("Carte débloquée")
        assert _finish(child) == 0
    after = saved(state)
    assert after["unblock"] == {"tries_left": 10, "uses_left": ISSUED.uses_max - 2}
    assert after["pin"] == {"code": "2222", "tries_left": 3}
