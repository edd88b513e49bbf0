"""The unblock flow at a terminal, through a pseudo-terminal, as a person types it."""

from __future__ import annotations

import json
from pathlib import Path

import pexpect

from tests.helpers import screen, spawn


def test_unblock_at_a_terminal(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    child = spawn("cps", "unblock", "--profile", "cps-blocked", "--state", str(state))
    child.expect_exact("Code de déblocage (reste 10 tentative(s)) : ")
    child.sendline("12345678")
    child.expect_exact("Nouveau code porteur (4 à 8 chiffres) : ")
    child.sendline("24680")
    child.expect_exact("Confirmation du nouveau code porteur : ")
    child.sendline("24680")
    child.expect_exact("Recyclage en cours…")
    child.expect_exact("Carte débloquée")
    child.expect_exact("Informations sur le professionnel")
    child.expect_exact("Nom = ROULETTE RPPS")
    child.expect_exact("Situation n° [1]")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "12345678" not in screen(child)  # hidden input: never echoed
    assert "24680" not in screen(child)
    saved = json.loads(state.read_text())
    assert saved["pin"] == {"code": "24680", "tries_left": 3}


def test_mismatch_refused_before_touching_the_card(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    child = spawn("cps", "unblock", "--profile", "cps-blocked", "--state", str(state))
    child.expect_exact("Code de déblocage (reste 10 tentative(s)) : ")
    child.sendline("12345678")
    child.expect_exact("Nouveau code porteur (4 à 8 chiffres) : ")
    child.sendline("2468")
    child.expect_exact("Confirmation du nouveau code porteur : ")
    child.sendline("2469")
    child.expect_exact("La confirmation ne correspond pas au nouveau code porteur")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert not state.exists()  # no counter moved: the unblock code was never sent


def test_malformed_codes_refused_at_once(tmp_path: Path) -> None:
    child = spawn("cps", "unblock", "--profile", "cps-blocked")
    child.expect_exact("Code de déblocage (reste 10 tentative(s)) : ")
    child.sendline("1234567")
    child.expect_exact("Le code de déblocage doit comporter 8 chiffres")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    child = spawn("cps", "unblock", "--profile", "cps-blocked")
    child.expect_exact(" : ")
    child.sendline("12345678")
    child.expect_exact("Nouveau code porteur (4 à 8 chiffres) : ")
    child.sendline("123")
    child.expect_exact("Le nouveau code porteur doit comporter de 4 à 8 chiffres")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2


def test_verify_at_a_terminal_hides_the_code() -> None:
    child = spawn("cps", "verify", "--profile", "cps-roulette")
    child.expect_exact("Code porteur : ")
    child.sendline("1234")
    child.expect_exact("Code porteur correct")
    child.expect(pexpect.EOF)
    assert "1234" not in screen(child)
