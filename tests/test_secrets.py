"""No code porteur or code de déblocage in any output, trace, log or exception, plain or hex.

The card uses codes that cannot appear by chance (no 1234), every command runs with -vv and
--trace, and every byte that comes out is searched for each code, as text and as the hex of its
ASCII digits (how it travels in an APDU).
"""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
import yaml

from cartesim.core.cps import CpsCard
from cartesim.core.errors import CartesimError
from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator.cards import load_card
from tests.helpers import CARDS, run

PIN, UNBLOCK, NEW_PIN, WRONG = "739158", "58203917", "648201", "904417"
SECRETS = (PIN, UNBLOCK, NEW_PIN, WRONG)


def forms(code: str) -> list[str]:
    hexed = code.encode().hex()
    return [code, hexed.upper(), hexed, " ".join(hexed[i : i + 2] for i in range(0, len(hexed), 2)).upper()]


def assert_clean(text: str, where: str) -> None:
    for code in SECRETS:
        for form in forms(code):
            assert form not in text, f"a code ({form!r}) leaked into {where}"


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    doc = yaml.safe_load((CARDS / "cps-roulette.yaml").read_text())
    doc["pin"]["code"] = PIN
    doc["unblock"]["code"] = UNBLOCK
    path = tmp_path / "secret.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def test_every_cps_command_with_trace_and_debug(profile: Path, tmp_path: Path) -> None:
    state, trace = tmp_path / "s.json", tmp_path / "t.jsonl"
    common = ["--profile", str(profile), "--state", str(state), "--trace", str(trace)]
    runs = [
        (["cps", "read", *common], f"{PIN}\n"),
        (["cps", "read", *common], f"{WRONG}\n"),
        (["cps", "verify", *common], f"{WRONG}\n"),
        (["cps", "verify", *common], f"{WRONG}\n"),
        (["cps", "verify", *common], f"{PIN}\n"),  # blocked now: refused
        (["cps", "status", *common, "--json"], ""),
        (["cps", "unblock", *common], f"{WRONG[:6]}00\n{NEW_PIN}\n{NEW_PIN}\n"),
        (["cps", "unblock", *common], f"{UNBLOCK}\n{NEW_PIN}\n{WRONG}\n"),  # mismatch
        (["cps", "unblock", *common], f"{UNBLOCK}\n{NEW_PIN}\n{NEW_PIN}\n"),
        (["cps", "change-pin", *common], f"{NEW_PIN}\n{PIN}\n{PIN}\n"),
        (["cps", "change-pin", *common], f"{WRONG}\n{PIN}\n{PIN}\n"),
        (["cps", "verify", *common], "12\n"),  # malformed
    ]
    codes_seen = []
    for args, stdin in runs:
        r = run("-vv", *args, stdin=stdin)
        codes_seen.append(r.returncode)
        assert "Traceback" not in r.stderr
        assert_clean(r.stdout, f"stdout of {args[:2]}")
        assert_clean(r.stderr, f"stderr of {args[:2]}")
    assert codes_seen == [0, 1, 1, 1, 1, 0, 1, 2, 0, 0, 1, 2]
    assert_clean(trace.read_text(), "the trace")
    assert len(trace.read_text().splitlines()) > 20
    # the state file holds the current code by design (it is the card): owner-only
    assert state.stat().st_mode & 0o077 == 0


def test_env_codes_and_demo(profile: Path) -> None:
    r = run("-vv", "cps", "read", "--profile", str(profile), env={"CARTESIM_PIN": PIN})
    assert r.returncode == 0
    assert_clean(r.stdout + r.stderr, "cps read with CARTESIM_PIN")
    r = run("-vv", "demo", "--transport", "direct")
    for code in ("12345678", "4321", "0000", "1111", "9999"):
        assert code not in r.stdout.replace("0000021520", "")  # the demo's codes are masked


def test_engine_exceptions_hold_no_code(profile: Path) -> None:
    card = CpsCard(DirectTransport(load_card(profile)))
    raised: list[BaseException] = []
    attempts = [
        lambda: card.verify(WRONG),
        lambda: card.verify(WRONG[:3]),
        lambda: card.unblock(WRONG[:7], NEW_PIN, NEW_PIN),
        lambda: card.unblock(UNBLOCK, NEW_PIN, WRONG),
        lambda: card.unblock("00000000", NEW_PIN, NEW_PIN),
        lambda: card.change_pin(WRONG, NEW_PIN, NEW_PIN),
        lambda: card.read(WRONG, confirm_last_try=True),
    ]
    for attempt in attempts:
        with pytest.raises(CartesimError) as e:
            attempt()
        raised.append(e.value)
    for exc in raised:
        text = str(exc) + repr(exc) + "".join(traceback.format_exception(exc))
        assert_clean(text, f"{type(exc).__name__}")


def test_scenarios_with_trace_debug_and_a_mismatch(profile: Path, tmp_path: Path) -> None:
    trace = tmp_path / "scenario.jsonl"
    steps = [
        {"verify": WRONG, "expect": {"sw": "63C2"}},
        {"verify": PIN, "expect": {"sw": "9000"}},
        {"change_pin": {"code": PIN, "new_pin": NEW_PIN}, "expect": {"sw": "9000"}},
        {"verify": WRONG, "expect": {"sw": "63C2"}},
        {"verify": WRONG},
        {"verify": WRONG, "expect": {"error": "blocked"}},
        {"unblock": {"code": WRONG[:6] + "00", "new_pin": PIN}, "expect": {"sw": "63C9"}},
        {
            "unblock": {"code": UNBLOCK, "new_pin": PIN, "remove_card": "before_answer"},
            "expect": {"error": "card_removed"},
        },
        {"insert": None},
        {"read_cps": PIN, "expect": {"fields": {"nom": "ROULETTE RPPS"}}},
        {"verify": WRONG, "expect": {"sw": "9000"}},  # a deliberate mismatch: the report shows the APDUs
    ]
    scenario = tmp_path / "secret-scenario.yaml"
    scenario.write_text(
        yaml.safe_dump({"cards": [{"profile": str(profile)}], "steps": steps}, allow_unicode=True)
    )
    r = run("-vv", "scenario", "run", str(scenario), "--trace", str(trace))
    assert r.returncode == 1, r.stdout + r.stderr  # the mismatch at the last step
    assert "MISMATCH" in r.stdout + r.stderr
    assert_clean(r.stdout, "scenario stdout")
    assert_clean(r.stderr, "scenario stderr")
    assert_clean(trace.read_text(), "the scenario trace")
    replayed = run("-vv", "replay", str(trace), "--profile", str(profile))
    assert_clean(replayed.stdout + replayed.stderr, "replay output")
