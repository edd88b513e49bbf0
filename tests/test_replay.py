"""Trace replay: traces recorded by the CLI and by the engine replay identically against their
profile, differences are reported against another, bad trace files are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cartesim.core.cps import CpsCard
from cartesim.core.errors import CardBlocked, InputError, WrongCode
from cartesim.core.trace import JsonlTracer
from cartesim.core.transport.direct import DirectTransport
from cartesim.core.vitale import VitaleCard
from cartesim.emulator.cards import load_card
from cartesim.harness.control.settings import save_card_state, set_card
from cartesim.harness.tools.replay import Codes, Recorded, load_trace, rebuild, replay
from tests.helpers import DATA, run

GOLDEN = sorted((DATA / "traces").glob("*.jsonl"))
CODES = ("1234", "12345678", "4321", "5678")  # as hex: how a leaked code would show in a trace


def _no_code(text: str) -> None:
    for code in CODES:
        assert code.encode().hex().upper() not in text.upper()


# --- golden traces -----------------------------------------------------------------------------
def test_there_are_golden_traces() -> None:
    assert len(GOLDEN) >= 5


@pytest.mark.parametrize("trace", GOLDEN, ids=lambda p: p.stem)
def test_golden_trace_replays_identically(trace: Path) -> None:
    profile = trace.stem.split("--")[0]  # PROFILE--flow.jsonl
    report = replay(trace, profile)
    assert report.identical, report.differences
    assert report.exchanges == sum('"command"' in line for line in trace.read_text().splitlines())


def test_golden_lockout_against_another_profile_differs() -> None:
    report = replay(DATA / "traces" / "cps-roulette--lockout-unblock.jsonl", "cps-last-try")
    assert not report.identical
    first = report.differences[0]
    assert (first.index, first.line, first.command, first.expected, first.actual) == (
        1,
        2,  # line 1 is the power-up
        "00200001",
        "63C3",
        "63C1",
    )


# --- traces recorded by the CLI now ------------------------------------------------------------
def _cli(trace: Path, state: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> int:
    return run(*args, "--state", str(state), "--trace", str(trace), stdin=stdin, env=env).returncode


def test_cli_lockout_unblock_change_read(tmp_path: Path) -> None:
    trace, state = tmp_path / "t.jsonl", tmp_path / "s.json"
    p = ("--profile", "cps-roulette")
    for _ in range(3):
        assert _cli(trace, state, "cps", "verify", *p, stdin="0000\n") == 1
    assert _cli(trace, state, "cps", "unblock", *p, stdin="12345678\n4321\n4321\n") == 0
    assert _cli(trace, state, "cps", "change-pin", *p, stdin="4321\n5678\n5678\n") == 0
    assert _cli(trace, state, "cps", "read", *p, env={"CARTESIM_PIN": "5678"}) == 0
    assert _cli(trace, state, "cps", "status", *p) == 0
    _no_code(trace.read_text())

    r = run("replay", str(trace), "--profile", "cps-roulette")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.endswith(": identiques\n")
    r = run("replay", str(trace), "--profile", "cps-last-try", "--json")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert out["identical"] is False and out["differences"]
    assert set(out["differences"][0]) == {"index", "line", "command", "expected", "actual"}
    _no_code(r.stdout)
    r = run("replay", str(trace), "--profile", "cps-last-try")
    assert r.returncode == 1 and "différence(s)" in r.stdout and "attendu : 63C3" in r.stdout


def test_cli_vitale_read(tmp_path: Path) -> None:
    trace, state = tmp_path / "t.jsonl", tmp_path / "s.json"
    assert _cli(trace, state, "vitale", "read", "--profile", "vitale-famille") == 0
    assert run("replay", str(trace), "--profile", "vitale-famille").returncode == 0
    r = run("replay", str(trace), "--profile", "vitale-expired-rights", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["differences"]


def test_each_command_is_a_session_of_its_own(tmp_path: Path) -> None:
    """verify, then status in another command: the status query answers 63C3 (a fresh session),
    not 9000 (verified) as it would on the same powered card. The trace says so itself."""
    trace, state = tmp_path / "t.jsonl", tmp_path / "s.json"
    assert _cli(trace, state, "cps", "verify", "--profile", "cps-roulette", stdin="1234\n") == 0
    assert _cli(trace, state, "cps", "status", "--profile", "cps-roulette") == 0
    events = [json.loads(line)["event"] for line in trace.read_text().splitlines() if '"event"' in line]
    assert events == ["power_up", "power_up"]
    report = replay(trace, "cps-roulette")
    assert report.identical and report.sessions == 2
    without = tmp_path / "without-events.jsonl"
    without.write_text("".join(line for line in trace.open() if '"event"' not in line))
    r = run("replay", str(without), "--profile", "cps-roulette")
    assert r.returncode == 1 and "obtenu  : 9000" in r.stdout  # one session: still verified


# --- traces recorded by the engine -------------------------------------------------------------
def test_engine_trace_in_one_session(tmp_path: Path) -> None:
    trace = tmp_path / "engine.jsonl"
    with trace.open("w", encoding="utf-8") as f:
        t = DirectTransport(load_card("cps-roulette"))
        t.tracers.append(JsonlTracer(f))
        cps = CpsCard(t)
        for _ in range(2):
            with pytest.raises(WrongCode):
                cps.verify("0000")
        with pytest.raises(CardBlocked):
            cps.verify("0000", confirm_last_try=True)
        cps.unblock("12345678", "4321", "4321")
        cps.change_pin("4321", "13579", "13579")  # a new code of another length
        cps.verify("13579")
        with pytest.raises(WrongCode):
            cps.change_pin("11111", "2222", "2222")
        cps.read("13579")
        assert cps.status().pin_verified
        t.power_cycle()
        assert not cps.status().pin_verified
        v = DirectTransport(load_card("vitale-famille"))
        v.tracers.append(JsonlTracer(f))
    _no_code(trace.read_text())
    report = replay(trace, "cps-roulette")
    # power_cycle() is traced as a reset: the query after it answers as recorded
    assert report.identical and report.sessions == 1
    assert '"event": "reset"' in trace.read_text()


def test_engine_vitale_trace(tmp_path: Path) -> None:
    trace = tmp_path / "vitale.jsonl"
    with trace.open("w", encoding="utf-8") as f:
        t = DirectTransport(load_card("vitale-famille"))
        t.tracers.append(JsonlTracer(f))
        VitaleCard(t).read()
    assert replay(trace, "vitale-famille").identical
    assert not replay(trace, "cps-roulette").identical


def test_replay_from_a_saved_state(tmp_path: Path) -> None:
    card = load_card("cps-roulette")
    set_card(card, ["last-try"])
    saved = save_card_state(card, tmp_path / "bug.json")
    trace = tmp_path / "t.jsonl"
    with trace.open("w", encoding="utf-8") as f:
        t = DirectTransport(card)
        t.tracers.append(JsonlTracer(f))
        assert CpsCard(t).status().pin_tries_left == 1
    assert not replay(trace, "cps-roulette").identical
    assert replay(trace, "cps-roulette", state=saved).identical
    assert run("replay", str(trace), "--profile", "cps-roulette", "--state", str(saved)).returncode == 0
    before = saved.read_text()
    replay(trace, "cps-roulette", state=saved)
    assert saved.read_text() == before  # read, never written


# --- rebuilding the codes ----------------------------------------------------------------------
def _rec(command: str, response: str) -> Recorded:
    return Recorded(1, command, response)


def test_rebuild_verify() -> None:
    codes = Codes("1234", "12345678")
    assert rebuild(_rec("0020000104********", "9000"), codes) == (bytes.fromhex("0020000104") + b"1234", None)
    sent, _ = rebuild(_rec("0020000104********", "63C2"), codes)
    assert len(sent) == 9 and sent[5:] != b"1234" and sent[5:].isdigit()
    sent, _ = rebuild(_rec("0020000106************", "9000"), codes)
    assert sent[5:] != b"1234" and len(sent[5:]) == 6  # no 6-digit code is this card's: wrong


def test_rebuild_change_and_unblock_choose_new_codes() -> None:
    codes = Codes("1234", "12345678")
    sent, new = rebuild(_rec("0024000108****************", "9000"), codes)
    assert sent[5:9] == b"1234" and new is not None and sent[9:] == new.encode() and new != "1234"
    sent, new = rebuild(_rec("0024000108****************", "63C2"), codes)
    assert sent[5:9] != b"1234" and len(sent) == 13
    sent, new = rebuild(_rec("002C00010C************************", "9000"), codes)
    assert sent[5:13] == b"12345678" and new is not None and sent[13:] == new.encode()
    sent, _ = rebuild(_rec("002C00010C************************", "63C9"), codes)
    assert sent[5:13] != b"12345678" and sent[5:13].isdigit()
    sent, _ = rebuild(_rec("002C00010C************************", "6A80"), codes)
    assert not sent[13:].isdigit()  # the card said "not digits": so must the replayed code
    assert rebuild(_rec("00A4040C02A000", "9000"), codes) == (bytes.fromhex("00A4040C02A000"), None)


def test_new_pin_is_tracked(tmp_path: Path) -> None:
    """After a replayed change, VERIFY 9000 needs the code replay chose, not the profile's."""
    trace = tmp_path / "t.jsonl"
    lines = [
        ("0024000108****************", "9000"),
        ("0020000104********", "9000"),
        ("0020000104********", "63C2"),
        ("002C00010C************************", "9000"),
        ("0020000104********", "9000"),
    ]
    trace.write_text("".join(json.dumps({"command": c, "response": r}) + "\n" for c, r in lines))
    assert replay(trace, "cps-roulette").identical


# --- bad traces --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"command": "00200001", "response": "63C3"}\nnot json\n', "line 2: not JSON"),
        ("[1, 2]\n", "line 1: not a JSON object"),
        ('{"command": "00200001"}\n', "line 1: 'command' and 'response' must be hex strings"),
        ('{"command": "00A4040C02****", "response": "9000"}\n', "line 1: 'command': masked data on a"),
        ('{"command": "0020000104******", "response": "9000"}\n', "line 1: 'command': the masked length"),
        ('{"command": "0020", "response": "9000"}\n', "line 1: 'command': not an APDU in hex"),
        ('{"command": "00200001", "response": "9"}\n', "line 1: 'response': not hex"),
        ('{"command": "00200001", "response": "9000", "time": "now"}\n', "line 1: 'time': not a number"),
        ("\n\n", "no exchange in this trace"),
    ],
)
def test_bad_trace(tmp_path: Path, content: str, problem: str) -> None:
    trace = tmp_path / "bad.jsonl"
    trace.write_text(content)
    with pytest.raises(InputError) as e:
        load_trace(trace)
    assert str(e.value) == f"{trace}: {problem}" or str(e.value).startswith(f"{trace}: {problem}")
    r = run("replay", str(trace), "--profile", "cps-roulette")
    assert r.returncode == 2
    assert r.stderr.startswith(f"cartesim: {trace}: {problem}") and r.stderr.count("\n") == 1


def test_missing_trace_and_bad_profile(tmp_path: Path) -> None:
    r = run("replay", str(tmp_path / "none.jsonl"), "--profile", "cps-roulette")
    assert r.returncode == 2 and "none.jsonl: No such file or directory" in r.stderr
    trace = DATA / "traces" / "vitale-famille--read.jsonl"
    r = run("replay", str(trace), "--profile", "no-such-card")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = run("replay", str(trace))
    assert r.returncode == 2 and "--profile" in r.stderr
