"""The CLI and PC/SC programs nobody here wrote, against `cartesim emulate` behind pcscd + vpcd."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cartesim.harness.pytest_plugin.cards import CardSession
from tests.helpers import CLI, CPS_READER, DATA, VITALE_READER, assert_valid, emulating, run, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def emulate(pcscd_free_slots: CardSession, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """`cartesim emulate cps-roulette vitale-famille --state DIR` as a separate process."""
    with emulating(
        "cps-roulette",
        "vitale-famille",
        "--state",
        str(tmp_path),
        expect={CPS_READER: "cps", VITALE_READER: "vitale"},
    ) as proc:
        yield proc


def test_cli_through_pcscd(emulate: subprocess.Popen[str], tmp_path: Path) -> None:
    r = run("cps", "read", "--reader", CPS_READER, env={"CARTESIM_PIN": "1234"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == (DATA / "lire-cps-roulette.golden.txt").read_text(encoding="utf-8")
    for expected in (
        "Code porteur erroné (reste 2 tentative(s))",
        "Code porteur erroné (reste 1 tentative(s))",
    ):
        r = run("cps", "verify", "--pcsc", stdin="0000\n")
        assert (r.returncode, r.stderr.strip()) == (1, expected)
    r = run("cps", "verify", "--reader", "re:PCD 00 00$", "--confirm-last-try", stdin="0000\n")
    assert (r.returncode, r.stderr.strip()) == (1, "Carte bloquée")
    r = run("cps", "unblock", "--pcsc", stdin="12345678\n4321\n4321\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (DATA / "lire-cps-roulette.golden.txt").read_text(encoding="utf-8")
    r = run("vitale", "read", "--pcsc", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["assure"]["nom"] == "DUPONT"
    r = run("cps", "read", "--reader", "Nope Reader", env={"CARTESIM_PIN": "1234"})
    assert r.returncode == 3 and "Nope Reader" in r.stderr
    emulate.send_signal(signal.SIGTERM)
    assert emulate.wait(10) == 0
    saved = json.loads((tmp_path / "slot0-cps-roulette.json").read_text())
    assert saved["pin"] == {"code": "4321", "tries_left": 3}


def test_readers_json(emulate: subprocess.Popen[str]) -> None:
    r = run("readers", "--json")
    doc = json.loads(r.stdout)
    assert_valid(doc, "readers")
    rows = {row["reader"]: row for row in doc["readers"]}
    assert rows[CPS_READER]["atr"] == "3BAC00402A001225006480000310009000"
    assert rows[VITALE_READER]["atr"] == "3B751300004509EA9000"


def test_emulate_restarts_with_saved_state(pcscd_free_slots: CardSession, tmp_path: Path) -> None:
    state = tmp_path / "slot0-cps-roulette.json"
    for _ in range(2):  # the CLI's in-process card and emulate's card are one card: its file
        run("cps", "verify", "--state", str(state), stdin="0000\n")
    proc = subprocess.Popen([*CLI, "emulate", "cps-roulette", "--state", str(tmp_path)], text=True)
    try:
        wait_for({CPS_READER: "cps"})
        r = run("cps", "status", "--pcsc", "--json")
        assert json.loads(r.stdout)["pin_tries_left"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


def test_emulate_and_the_cli_share_the_card(emulate: subprocess.Popen[str], tmp_path: Path) -> None:
    """The CLI blocks the card through its state file while emulate serves it: the reader sees it
    blocked at once, and emulate's last save on SIGTERM keeps it blocked (it once wrote 3 back)."""
    state = tmp_path / "slot0-cps-roulette.json"
    r = run("cps", "verify", "--pcsc", stdin="0000\n")  # through the reader: emulate writes the file
    assert (r.returncode, r.stderr.strip()) == (1, "Code porteur erroné (reste 2 tentative(s))")
    messages = [run("cps", "verify", "--state", str(state), stdin="0000\n").stderr.strip() for _ in range(2)]
    assert messages == ["Code porteur erroné (reste 1 tentative(s))", "Carte bloquée"]
    r = run("cps", "status", "--pcsc", "--json")
    assert json.loads(r.stdout)["blocked"] is True
    r = run("cps", "verify", "--pcsc", "--confirm-last-try", stdin="1234\n")
    assert (r.returncode, r.stderr.strip()) == (1, "Carte bloquée")
    emulate.send_signal(signal.SIGTERM)
    assert emulate.wait(10) == 0
    assert json.loads(state.read_text())["pin"]["tries_left"] == 0


def test_demo_through_pcscd(pcscd_free_slots: CardSession) -> None:
    r = run("demo", "--transport", "pcsc")
    assert r.returncode == 0, r.stderr
    assert "« Virtual PCD 00 00 »" in r.stdout
    assert "Carte bloquée" in r.stdout and "Carte débloquée" in r.stdout
    assert r.stdout.endswith((DATA / "lire-cps-roulette.golden.txt").read_text(encoding="utf-8"))


# --- programs nobody here wrote ----------------------------------------------------------------
def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} missing (apt package {package})")
        pytest.skip(f"{name} missing (apt package {package})")
    return path


SCRIPT = """\
# select the CPS3 IAS-ECC application
00 A4 04 0C 0D E8 28 BD 08 0F 80 25 00 00 01 FF 00 10
# tries-left query
00 20 00 01
# three wrong codes
00 20 00 01 04 30 30 30 30
00 20 00 01 04 30 30 30 30
00 20 00 01 04 30 30 30 30
# the right one is refused now
00 20 00 01 04 31 32 33 34
# unblock: 12345678 + new PIN 4321
00 2C 00 01 0C 31 32 33 34 35 36 37 38 34 33 32 31
00 20 00 01 04 34 33 32 31
"""


def test_scriptor_lockout_and_unblock(emulate: subprocess.Popen[str], tmp_path: Path) -> None:
    scriptor = _tool("scriptor", "pcsc-tools")
    script = tmp_path / "cps.apdu"
    script.write_text(SCRIPT)
    r = subprocess.run([scriptor, "-r", CPS_READER, str(script)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    answers = [line[1:].split(":", 1)[0].strip() for line in r.stdout.splitlines() if line.startswith("<")]
    assert answers == ["90 00", "63 C3", "63 C2", "63 C1", "69 83", "69 83", "90 00", "90 00"], r.stdout


def test_atr_analysis_identifies_the_cards() -> None:
    tool = _tool("ATR_analysis", "pcsc-tools")
    cps = subprocess.run(
        [tool, "3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00"], capture_output=True, text=True
    )
    assert "CPS" in cps.stdout, cps.stdout
    vitale = subprocess.run([tool, "3B 75 13 00 00 45 09 EA 90 00"], capture_output=True, text=True)
    assert "Vitale 2" in vitale.stdout, vitale.stdout


def test_opensc_lists_both_readers_with_cards(emulate: subprocess.Popen[str]) -> None:
    tool = _tool("opensc-tool", "opensc")
    r = subprocess.run([tool, "-l"], capture_output=True, text=True, timeout=30)
    lines = [line for line in r.stdout.splitlines() if "Virtual PCD" in line]
    assert len(lines) == 2, r.stdout
    assert all(line.split()[1] == "Yes" for line in lines), r.stdout


# --- the last-try guard, on a card in a reader ---------------------------------------------------
@pytest.fixture
def last_try_card(pcscd_free_slots: CardSession) -> Iterator[None]:
    with emulating("cps-last-try", expect={CPS_READER: "cps"}):
        yield


def _pin_tries_left() -> int:
    return json.loads(run("cps", "status", "--pcsc", "--json").stdout)["pin_tries_left"]


def test_last_try_guard_in_a_reader(last_try_card: None) -> None:
    import pexpect

    r = run("cps", "verify", "--pcsc", stdin="0000\n")
    assert (r.returncode, r.stderr.strip()) == (
        1,
        "Dernière tentative du code porteur : aucun code envoyé sans confirmation",
    )
    assert _pin_tries_left() == 1
    child = pexpect.spawn(CLI[0], [*CLI[1:], "cps", "verify", "--pcsc"], encoding="utf-8", timeout=20)
    child.expect_exact("Code porteur : ")
    child.sendline("0000")
    child.expect_exact("Envoyer le code quand même ? [o/N] ")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert _pin_tries_left() == 1  # the typo was never sent
    r = run("cps", "verify", "--pcsc", "--confirm-last-try", stdin="1234\n")
    assert (r.returncode, r.stdout.strip()) == (0, "Code porteur correct")
    assert _pin_tries_left() == 3


def test_bench_json(pcscd_free_slots: CardSession) -> None:
    """`bench --json` through pcscd: its schema's shape, every figure there. The figures are
    printed, never compared with anything: they are the machine's."""
    r = run("bench", "--seconds", "0.2", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert_valid(doc, "bench")
    assert None not in (doc["pcsc_apdu_per_s"], doc["floor_apdu_per_s"], doc["card_visible_ms"]), doc["note"]
    print(doc)
