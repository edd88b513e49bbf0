"""Scenario files: the shipped ones pass, bad ones give one precise line, a mismatch is reported
with expected against actual and the step's APDUs, never a code; the CLI and the pytest plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cartesim.core.errors import InputError
from cartesim.harness.cli import main as cartesim_cli
from cartesim.harness.scenario.load import load_scenario
from cartesim.harness.scenario.run import run_scenario
from tests.helpers import MISMATCH, ROOT, SAMPLE_CODES, SCENARIOS, code_forms, run

# The codes the tmp scenarios below use, plain and in hex: none may ever be printed.
CODES = SAMPLE_CODES


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- the shipped scenarios -------------------------------------------------------------------
def test_every_requested_story_is_shipped() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {
        "three-wrong-codes",
        "unblock",
        "definitively-blocked",
        "change-pin",
        "power-cycle",
        "situations-need-pin",
        "removed-before-processing",
        "removed-before-answer",
        "vitale-read",
    } <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenario_passes(path: Path) -> None:
    lines: list[str] = []
    result = run_scenario(path, "direct", say=lines.append)
    assert result.passed, "\n".join(lines)
    assert len(result.steps) == result.total and lines[-1].startswith("ok:")


def test_removed_mid_unblock_says_so_and_leaves_no_half_state() -> None:
    lines: list[str] = []
    for name in ("removed-before-processing", "removed-before-answer"):
        run_scenario(ROOT / "fixtures" / "scenarios" / f"{name}.yaml", say=lines.append)
    pulled = [line for line in lines if "remove_card=" in line]
    assert len(pulled) == 2 and all("Carte retirée" in line for line in pulled)


# --- bad scenarios: one line, naming the file, the step, the field, the problem --------------
BAD = [
    (
        "cards: [cps-roulette]\nsteps:\n  - verify: '0000'\n    expect: {sw: 63C}\n",
        'steps[0].expect.sw: must be 4 hex digits, e.g. 63C2 or "9000"',
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - tries_left\n  - verfy: '0000'\n",
        "steps[1].verfy: unknown key (did you mean 'verify'?)",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - verify: {code: '1234', pin: '1234'}\n",
        "steps[0].verify.pin: unknown key (expected code)",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - remove: {slot: 0}\n",
        "steps[0].remove.slot: unknown key (this action takes no option; slot and expect go beside it)",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - {verify: '0000', unblock: {code: '12345678', new_pin: '4321'}}\n",
        "steps[0]: one action per step, found verify and unblock",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - tries_left\n  - verify: 0000\n",
        'steps[1].verify.code: Input should be a valid string (write codes quoted, e.g. "0000")',
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - unblock: {code: '1234567', new_pin: '4321'}\n",
        "steps[0].unblock.code: must be 8 digits",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - read_cps: '1234'\n    expect: {sw: '9000'}\n",
        "steps[0].expect.sw: not for read_cps (only change_pin, tries_left, unblock, verify)",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - read_cps: '1234'\n    expect: {fields: {nomm: X}}\n",
        "steps[0].expect.fields.nomm: no such field in a cps report (did you mean 'nom'?)",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - read_cps: '1234'\n    expect: {fields: {'situations[0].zone': X}}\n",
        "steps[0].expect.fields.situations[0].zone: no such field in a cps report "
        "(did you mean 'situations[0].zone_ik'?)",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - read_vitale\n",
        "steps[0].read_vitale: no vitale card in this scenario",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - tries_left\n  - insert\n",
        "steps[1].insert: the card in slot 0 is already in",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - remove:\n    expect: {tries_left: 3}\n",
        "steps[0].expect.tries_left: the card is out after this step; check it after insert",
    ),
    (
        "cards: [cps-roulette, cps-blocked]\nsteps:\n  - verify: '1234'\n",
        "steps[0].slot: missing: verify could address slot 0 or 1",
    ),
    (
        "cards: [cps-roulette, vitale-famille]\nsteps:\n  - verify: '1234'\n    slot: 1\n",
        "steps[0].slot: slot 1 holds a vitale card; verify needs a cps",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - wait: 60\n",
        "steps[0].wait.seconds: Input should be less than or equal to 5",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - unblock: {code: '12345678', new_pin: '4321', remove_card: later}\n",
        "steps[0].unblock.remove_card: Input should be 'before_processing' or 'before_answer'",
    ),
    (
        "cards: [cps-roulette]\nsteps:\n  - verify: '1234'\n    expect: {blocked: maybe}\n",
        "steps[0].expect.blocked: Input should be a valid boolean",
    ),
    (
        "cards: [{profile: ../nowhere/cps.yaml}]\nsteps: [tries_left]\n",
        "cards[0].profile: no such file (../nowhere/cps.yaml, relative to the scenario), "
        "and no sample of that name",
    ),
    (
        "cards: [cps-roulette, {profile: cps-blocked, slot: 0}]\nsteps: [tries_left]\n",
        "cards[1].slot: slot 0 already holds cards[0]",
    ),
    ("cards: [cps-roulette]\nsteps: []\n", "steps: List should have at least 1 item after validation, not 0"),
    ("cards: [cps-roulette]\n", "steps: missing"),
]


@pytest.mark.parametrize(("text", "expected"), BAD, ids=[e.split(":")[0] for _, e in BAD])
def test_bad_scenario_is_one_precise_line(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: {expected}"
    assert "\n" not in str(info.value)


def test_a_malformed_code_is_not_echoed(tmp_path: Path) -> None:
    path = _write(tmp_path, "cards: [cps-roulette]\nsteps:\n  - verify: '97531x'\n")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: steps[0].verify.code: must be 4 to 8 digits"


def test_yaml_errors_are_the_safe_loaders(tmp_path: Path) -> None:
    path = _write(tmp_path, "cards: [cps-roulette]\ncards: [cps-blocked]\nsteps: [tries_left]\n")
    with pytest.raises(InputError, match=r"line 2: invalid YAML: duplicate key 'cards'"):
        load_scenario(path)


def test_a_state_file_is_read_never_written(tmp_path: Path) -> None:
    state = tmp_path / "card.json"
    run("cps", "verify", "--profile", "cps-roulette", "--state", str(state), stdin="0000\n")
    before = state.read_bytes()
    text = """
        cards: [{profile: cps-roulette, state: card.json}]
        steps:
          - verify: "0000"
            expect: {sw: 63C1, tries_left: 1}
    """
    assert run_scenario(_write(tmp_path, text), say=lambda _: None).passed
    assert state.read_bytes() == before


# --- the mismatch report ---------------------------------------------------------------------
def test_mismatch_report_expected_actual_trace_and_no_code(tmp_path: Path) -> None:
    path = _write(tmp_path, MISMATCH)
    lines: list[str] = []
    result = run_scenario(path, say=lines.append)
    assert not result.passed
    assert [s.index for s in result.steps] == [0, 1]  # stopped at the first mismatch
    report = result.report()
    assert report.splitlines() == [
        f"MISMATCH in {path} at steps[1] (verify ****), transport direct",
        "  sw:          expected 63C1, actual 63C2",
        "  error:       expected blocked, actual wrong_code (Code porteur erroné (reste 2 tentative(s)))",
        "  tries_left:  expected 1, actual 2",
        "  APDU trace of steps[1] (codes masked):",
        "    00200001  -> 63C3",  # the last-try guard's tries-left query
        "    0020000104********  -> 63C2",
        "    then the state query:",
        "    00200001  -> 63C2",
        "    00200002  -> 63CA",
        "    00A4000C023F00  -> 9000",
        "    00CB3FFF0A4D087006BF810102A08000  -> 6118",  # the counters as IAS-ECC SDOs
        "    00C0000018  -> 7016BF810112A0109A01039B0102A1088C06F3000013FF009000",
        "    00CB3FFF0A4D087006BF810202A08000  -> 611E",
        "    00C000001E  -> 701CBF810218A0169A010A9B010A9C010A9D0109A1088C06F3FF00FFFF009000",
    ]
    output = "\n".join(lines).replace(str(path), "<scenario>")
    assert report.replace(str(path), "<scenario>") in output
    for secret in code_forms(CODES):
        assert secret not in output, secret


def test_unexpected_error_is_a_mismatch(tmp_path: Path) -> None:
    path = _write(tmp_path, "cards: [cps-blocked]\nsteps:\n  - verify: '1234'\n")
    result = run_scenario(path, say=lambda _: None)
    assert "error:  expected none, actual blocked (Carte bloquée)" in result.report()


def test_mismatch_on_fields_and_on_a_pulled_card(tmp_path: Path) -> None:
    text = """
        cards: [cps-blocked]
        steps:
          - unblock: {code: "12345678", new_pin: "4321", remove_card: before_answer}
            expect: {error: card_removed}
          - insert:
          - read_cps: "4321"
            expect: {fields: {nom: ROULETTE, "situations[0].code_specialite": "19", "situations[1].numero": "2"}}
    """
    result = run_scenario(_write(tmp_path, text), say=lambda _: None)
    report = result.report()
    assert "fields.nom:" in report and "expected 'ROULETTE', actual 'ROULETTE RPPS'" in report
    assert "situations[0].code_specialite" not in report  # it matched
    assert "fields.situations[1].numero:  expected '2', actual (absent)" in report
    pulled = result.steps[0].outcome
    assert pulled.error == "card_removed" and pulled.interrupted == "002C00010C" + "**" * 12


# --- the command line ------------------------------------------------------------------------
def _cartesim(*args: str) -> subprocess.CompletedProcess[str]:
    return run(*args)


def test_cli_runs_every_shipped_scenario(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    r = _cartesim("scenario", "run", "--trace", str(trace), *map(str, SCENARIOS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(SCENARIOS)}/{len(SCENARIOS)} scenario(s) as expected" in r.stdout
    assert "0020000104********" in trace.read_text()


def test_cli_mismatch_exit_1(tmp_path: Path) -> None:
    path = _write(tmp_path, MISMATCH)
    r = _cartesim("scenario", "run", str(path))
    assert r.returncode == 1
    assert "MISMATCH in" in r.stdout and "tries_left:  expected 1, actual 2" in r.stdout
    out = (r.stdout + r.stderr).replace(str(path), "<scenario>")
    for secret in code_forms(CODES):
        assert secret not in out, secret


def test_cli_bad_scenario_exit_2_one_line(tmp_path: Path) -> None:
    good = _write(tmp_path, "cards: [cps-roulette]\nsteps: [tries_left]\n", "good.yaml")
    bad = _write(tmp_path, "cards: [cps-roulette]\nsteps:\n  - verify: '0000'\n    expect: {sw: 63C}\n")
    r = _cartesim("scenario", "run", str(good), str(bad))
    assert r.returncode == 2
    assert r.stdout == ""  # every file is checked before any card is used
    assert r.stderr == f'cartesim: {bad}: steps[0].expect.sw: must be 4 hex digits, e.g. 63C2 or "9000"\n'


def test_cli_without_pcscd_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cartesim.emulator.vpcd import ENV_VPCD_SOCKET
    from cartesim.harness.stack import pcscd, private

    def no_namespaces(self: private.PrivateStack) -> private.PrivateStack:
        raise private.StackUnavailable("no private PC/SC stack here (unshare: Operation not permitted)")

    def no_pcscd(self: pcscd.Pcscd) -> pcscd.Pcscd:
        raise pcscd.PcscdUnavailable("pcscd is not installed (apt-get install pcscd)")

    for variable in (private.ENV_PCSC_SOCKET, ENV_VPCD_SOCKET):
        monkeypatch.delenv(variable, raising=False)  # not inside this session's own stack
    monkeypatch.setattr(private.PrivateStack, "start", no_namespaces)
    monkeypatch.setattr(pcscd.Pcscd, "start", no_pcscd)
    assert cartesim_cli.main(["scenario", "run", "--transport", "pcsc", str(SCENARIOS[0])]) == 3
    err = capsys.readouterr().err
    assert err.endswith(
        "cartesim: no private PC/SC stack here (unshare: Operation not permitted); "
        "and the machine's: pcscd is not installed (apt-get install pcscd)\n"
    )
    assert "Traceback" not in err


# --- the pytest plugin -----------------------------------------------------------------------
def test_pytest_collects_scenarios_outside_testpaths(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = tests\ncartesim_scenarios = scen/*.yaml\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    (tmp_path / "scen").mkdir()
    _write(tmp_path / "scen", "cards: [cps-roulette]\nsteps:\n  - verify: '1234'\n", "good.yaml")
    _write(tmp_path / "scen", MISMATCH, "wrong.yaml")
    _write(tmp_path / "scen", "cards: [cps-roulette]\nsteps: [verfy]\n", "bad.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTESIM_")}
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cartesim-transport=direct"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert "2 failed, 2 passed" in out, out
    assert "tries_left:  expected 1, actual 2" in out and "0020000104********" in out
    assert f"bad scenario: {tmp_path}/scen/bad.yaml: steps[0]: must be an action name" in out
    assert "Traceback" not in out and "harness/scenario.py" not in out
    for secret in code_forms(CODES):
        assert secret not in out.replace(str(tmp_path), "<tmp>"), secret
