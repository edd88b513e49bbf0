"""The CLI as a newcomer runs it: real processes, stdin, env, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CARDS, CLI, DATA, ROULETTE, FakeVpcd, run, stop


def test_read_equals_golden() -> None:
    r = run("cps", "read", "--profile", ROULETTE, env={"CARTESIM_PIN": "1234"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == (DATA / "lire-cps-roulette.golden.txt").read_text(encoding="utf-8")


def test_newcomer_lockout_and_unblock(tmp_path: Path) -> None:
    s = str(tmp_path / "s.json")
    messages = []
    for _ in range(3):
        r = run("cps", "verify", "--profile", ROULETTE, "--state", s, stdin="0000\n")
        assert r.returncode == 1
        messages.append(r.stderr.strip())
    assert messages == [
        "Code porteur erroné (reste 2 tentative(s))",
        "Code porteur erroné (reste 1 tentative(s))",
        "Carte bloquée",
    ]
    r = run("cps", "verify", "--profile", ROULETTE, "--state", s, stdin="1234\n")
    assert (r.returncode, r.stderr.strip()) == (1, "Carte bloquée")
    r = run("cps", "status", "--profile", ROULETTE, "--state", s, "--json")
    assert json.loads(r.stdout)["blocked"] is True
    r = run("cps", "unblock", "--profile", ROULETTE, "--state", s, stdin="12345678\n4321\n4321\n")
    assert r.returncode == 0, r.stderr
    r = run("cps", "verify", "--profile", ROULETTE, "--state", s, stdin="4321\n")
    assert (r.returncode, r.stdout.strip()) == (0, "Code porteur correct")


def test_codes_from_environment(tmp_path: Path) -> None:
    s = str(tmp_path / "s.json")
    env = {"CARTESIM_PIN": "1234", "CARTESIM_NEW_PIN": "9876"}
    r = run("cps", "change-pin", "--profile", ROULETTE, "--state", s, env=env)
    assert (r.returncode, r.stdout.strip()) == (0, "Code porteur modifié")
    r = run("cps", "verify", "--profile", ROULETTE, "--state", s, env={"CARTESIM_PIN": "9876"})
    assert r.returncode == 0
    env = {"CARTESIM_UNBLOCK_CODE": "12345678", "CARTESIM_NEW_PIN": "1111"}
    assert run("cps", "unblock", "--profile", ROULETTE, "--state", s, env=env).returncode == 0


def test_definitively_blocked_message() -> None:
    r = run("cps", "unblock", "--profile", "cps-definitively-blocked", stdin="12345678\n4321\n4321\n")
    assert (r.returncode, r.stderr.strip()) == (1, "Carte définitivement bloquée")


def test_vitale_json() -> None:
    r = run(
        "vitale", "read", "--profile", str(CARDS / "vitale-famille.yaml"), "--json", "--date", "2026-11-26"
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["assure"]["nom"] == "DUPONT"
    assert len(data["beneficiaires"]) == 4


@pytest.mark.parametrize(
    ("args", "stdin", "fragment"),
    [
        (["cps", "unblock", "--profile", ROULETTE], "1234567\n4321\n4321\n", "8 chiffres"),
        (["cps", "unblock", "--profile", ROULETTE], "12345678\n4321\n1234\n", "confirmation"),
        (["cps", "verify", "--profile", ROULETTE], "", "rien sur l'entrée standard"),
        (["cps", "verify", "--profile", ROULETTE], "12\n", "de 4 à 8 chiffres"),
        (["cps", "read", "--profile", str(CARDS / "vitale-famille.yaml")], "", "not a cps one"),
        (["cps", "read", "--profile", "nope.yaml"], "", "nope.yaml: No such file"),
        (["cps", "read", "--pin", "1234"], "", "codes never come from the command line"),
        (["cps", "frobnicate"], "", "cartesim cps: No such command 'frobnicate' (see cartesim cps --help)"),
        (["cps", "status", "--bogus"], "", "cartesim cps status: No such option '--bogus'"),
        (["vitale", "read", "--date", "2026-13-01"], "", "cartesim vitale read: Invalid value for '--date'"),
        (
            ["fuzz", "--cases", "-5"],
            "",
            "cartesim fuzz: Invalid value for '--cases': -5 is not in the range x>=1",
        ),
        (["fuzz", "--seed", "-1"], "", "Invalid value for '--seed'"),
        (
            ["bench", "--seconds", "-1"],
            "",
            "cartesim bench: Invalid value for '--seconds': -1.0 is not in the range",
        ),
        (["bench", "--seconds", "0"], "", "Invalid value for '--seconds'"),
        (["crash-test", "--kills", "0"], "", "cartesim crash-test: Invalid value for '--kills'"),
        (["card", "status", "--", "-1"], "", "Invalid value for '[SLOT]'"),
        (["replay"], "", "cartesim replay: Missing argument 'TRACE'"),
    ],
)
def test_bad_input_exit_2_one_line(args: list[str], stdin: str, fragment: str) -> None:
    r = run(*args, stdin=stdin)
    assert r.returncode == 2, r.stderr
    assert fragment in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout == "" and r.stderr.count("\n") == 1, r.stderr  # one line, nothing else


def test_invalid_profile_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(ROULETTE).read_text().replace('code: "1234"', 'code: "123"'))
    r = run("cps", "read", "--profile", str(bad), env={"CARTESIM_PIN": "1234"})
    assert r.returncode == 2
    assert r.stderr.strip() == f"cartesim: {bad}: pin.code: String should match pattern '^[0-9]{{4,8}}$'"
    r = run("profile", "check", str(bad), ROULETTE)
    assert r.returncode == 2
    assert "cps-roulette.yaml: ok (cps)" in r.stdout


def test_trace_redacts_codes(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    r = run("-vv", "cps", "read", "--profile", ROULETTE, "--trace", str(trace), env={"CARTESIM_PIN": "1234"})
    assert r.returncode == 0
    records = [json.loads(x) for x in trace.read_text().splitlines()]
    assert set(records[0]) == {"time", "event"} and records[0]["event"] == "power_up"
    lines = records[1:]
    assert lines[0]["command"] == "00200001"  # the last-try guard's tries-left query
    assert lines[1]["command"] == "0020000104********"
    assert {"time", "command", "response", "duration_us"} <= set(lines[0])
    assert not any("31323334" in x["command"] for x in lines)
    assert "1234" not in r.stderr
    assert "31323334" not in r.stderr


def test_help_in_english() -> None:
    r = run("--help")
    assert r.returncode == 0
    assert "Exit codes" in r.stdout
    r = run("cps", "unblock", "--help")
    assert "code de déblocage" in r.stdout.lower()
    assert "--state" in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("cps", "verify", "--pin", "4242"),
        ("cps", "verify", "--pin=4242"),
        ("cps", "unblock", "--code", "4242"),
        ("cps", "unblock", "--unblock-code", "4242"),
        ("cps", "change-pin", "--new-pin", "4242"),
        ("cps", "verify", "4242"),
    ],
    ids=" ".join,
)
def test_a_code_on_the_command_line_says_where_codes_come_from(args: tuple[str, ...]) -> None:
    r = run(*args)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "4242" not in r.stderr  # one line, the code not echoed
    assert "codes never come from the command line" in r.stderr
    for source in ("CARTESIM_PIN", "CARTESIM_UNBLOCK_CODE", "CARTESIM_NEW_PIN", "prompt", "stdin"):
        assert source in r.stderr


@pytest.fixture
def fake_vpcd() -> Iterator[FakeVpcd]:
    vpcd = FakeVpcd()
    yield vpcd
    vpcd.close()


def test_verbose_anywhere_on_the_command_line(fake_vpcd: FakeVpcd, tmp_path: Path) -> None:
    """-v before the sub-command, after it, after its arguments: the same logging."""
    port = fake_vpcd.port
    for where in (
        ("-v", "emulate", "cps-roulette"),
        ("emulate", "-v", "cps-roulette"),
        ("emulate", "cps-roulette", "-v"),
    ):
        args = [*where, "--vpcd", f"127.0.0.1:{port}", "--control", str(tmp_path / "control.sock")]
        proc = subprocess.Popen([*CLI, *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        try:
            fake_vpcd.accept()
            assert fake_vpcd.ask(b"\x04")  # the ATR: the card is in
        finally:
            stop(proc)
            fake_vpcd.drop()
        assert proc.stderr is not None
        assert f"INFO cartesim.emulator.vpcd: connected to vpcd 127.0.0.1:{port}" in proc.stderr.read(), where


def test_shell_completion_is_click_s() -> None:
    script = run(env={"_CARTESIM_COMPLETE": "bash_source"})
    assert script.returncode == 0 and "_cartesim_completion" in script.stdout
    words = run(
        env={"_CARTESIM_COMPLETE": "bash_complete", "COMP_WORDS": "cartesim cps ver", "COMP_CWORD": "2"}
    )
    assert words.stdout.split() == ["plain,verify"]


def test_profile_samples_shows_description_and_path() -> None:
    r = run("profile", "samples")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    names, paths = [line.split(":")[0] for line in lines[::2]], [Path(line.strip()) for line in lines[1::2]]
    assert names == sorted(p.stem for p in CARDS.glob("*.yaml"))
    roulette = names.index("cps-roulette")
    assert (
        lines[2 * roulette]
        == "cps-roulette: CPS de test, Paul ROULETTE RPPS, chirurgien-dentiste, cabinet RPPS"
    )
    assert all(line.startswith("  ") for line in lines[1::2])
    # The files themselves (from a checkout, or from the installed package under tox).
    assert [p.name for p in paths] == [f"{n}.yaml" for n in names]
    assert paths[roulette].read_bytes() == (CARDS / "cps-roulette.yaml").read_bytes()
