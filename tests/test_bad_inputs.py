"""Every bad input an attacker tried (issue 10): one line on stderr, exit 2, no traceback, and no
code echoed. Profiles, traces and options through the CLI's entry point in this process (fast);
what depends on the process itself (closed stdin, a full stdout, a FIFO, an unwritable folder)
through real processes."""

from __future__ import annotations

import ctypes
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cartesim.harness.cli.main import main
from tests.helpers import CARDS, CLI, DATA, ROULETTE, run

VITALE = CARDS / "vitale-famille.yaml"
TRACE = DATA / "traces" / "cps-roulette--change-pin.jsonl"


def cli(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    """`cartesim ARGS` through its entry point, in this process: (exit code, stdout, stderr). An
    exception main() does not turn into a line fails the test with its traceback."""
    old, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        code = main(list(args))
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def edited(tmp_path: Path, base: Path, old: str, new: str, name: str = "bad.yaml") -> Path:
    text = base.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


# --- profiles ----------------------------------------------------------------------------------
PROFILES: list[tuple[str, Path, str, str, str]] = [
    # (case, sample, text replaced, by, what the line says)
    (
        "date 2025-02-30",
        VITALE,
        "fin_validite: 2030-12-31",
        "fin_validite: 2025-02-30",
        "assure.fin_validite: Input should be a valid date or datetime, day value is outside expected range",
    ),
    (
        "month 13",
        VITALE,
        "{debut: 2026-01-01,",
        "{debut: 2026-13-01,",
        "droits_amo[0].debut: Input should be a valid date or datetime, month value is outside expected range",
    ),
    (
        "nesting, block style",
        Path(ROULETTE),
        "description: CPS",
        "description:\n" + "  " + "- " * 5000 + "x\nx: CPS",
        "nested deeper than 32 levels",
    ),
    (
        "nesting, flow style",
        Path(ROULETTE),
        "description: CPS de test",
        "description: " + "[" * 5000 + "]" * 5000,
        "nested deeper than 32 levels",
    ),
    (
        "a list as a key",
        Path(ROULETTE),
        "type: cps\n",
        "type: cps\n[1,2]: 3\n",
        "a key must be a plain value",
    ),
    (
        "!!timestamp x",
        Path(ROULETTE),
        "description: CPS de test",
        'description: !!timestamp "x"\nx: CPS de test',
        "not a valid date",
    ),
    ("5,000 digits", Path(ROULETTE), "tries_max: 3", "tries_max: " + "7" * 5000, "not a valid whole number"),
    (
        "a huge hex number",
        Path(ROULETTE),
        "tries_max: 3",
        "tries_max: 0x" + "f" * 5000,
        "whole number too large",
    ),
    (
        "tries_max: true",
        Path(ROULETTE),
        "tries_max: 3",
        "tries_max: true",
        "pin.tries_max: Input should be a valid integer",
    ),
    (
        'tries_max: "3"',
        Path(ROULETTE),
        "tries_max: 3",
        'tries_max: "3"',
        "pin.tries_max: Input should be a valid integer",
    ),
    (
        "tries_max: 3.0",
        Path(ROULETTE),
        "tries_max: 3",
        "tries_max: 3.0",
        "pin.tries_max: Input should be a valid integer",
    ),
    (
        "a fault's mute: 1",
        Path(ROULETTE),
        "pin:\n",
        "faults: [{apdu: 2, mute: 1}]\npin:\n",
        "faults[0].mute: Input should be a valid boolean",
    ),
    (
        "!!map on a list",
        Path(ROULETTE),
        "description: CPS de test",
        "description: !!map [1]\nx: CPS de test",
        "expected a mapping",
    ),
]


@pytest.mark.parametrize(
    ("base", "old", "new", "message"), [c[1:] for c in PROFILES], ids=[c[0] for c in PROFILES]
)
def test_bad_profiles(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base: Path, old: str, new: str, message: str
) -> None:
    bad = edited(tmp_path, base, old, new)
    code, _, err = cli(capsys, "profile", "check", str(bad))
    one_line(code, err, f"{bad}: ", message)
    command = ("cps", "read") if base != VITALE else ("vitale", "read")
    code, _, err = cli(capsys, *command, "--profile", str(bad), stdin="1234\n")
    one_line(code, err, message)


def test_a_code_in_a_profile_is_never_echoed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for value in ('!!int "7391528x"', '!!float "7391528x"', '!!bool "7391528x"', "7391528x", "73915284000"):
        bad = edited(tmp_path, Path(ROULETTE), 'code: "1234"', f"code: {value}")
        code, out, err = cli(capsys, "cps", "read", "--profile", str(bad), stdin="1234\n")
        one_line(code, err, f"{bad}: ")
        assert "7391528" not in err + out, value


# --- traces given to replay --------------------------------------------------------------------
def _trace_with(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text(TRACE.read_text() + line + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[" * 20_000 + "]" * 20_000, "nested too deep"),
        (
            '{"command": "00200001", "response": "9000", "duration_us": ' + "9" * 5000 + "}",
            "a number longer than 20 digits",
        ),
        (
            '{"command": "00200001", "response": "9000", "duration_us": true}',
            "'duration_us': not a whole number",
        ),
        ('{"command": "00200001", "response": "9000", "time": NaN}', "NaN is not a number"),
        ('{"command": "00200001", "response": "9000", "time": true}', "'time': not a number"),
    ],
    ids=["nesting", "5,000 digits", "a boolean duration", "NaN", "a boolean time"],
)
def test_bad_traces(capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str, message: str) -> None:
    bad = _trace_with(tmp_path, line)
    n = len(TRACE.read_text().splitlines()) + 1
    code, _, err = cli(capsys, "replay", str(bad), "--profile", "cps-roulette")
    one_line(code, err, f"{bad}: line {n}: {message}")


def test_trace_size_limit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as f:
        f.truncate(120 << 20)  # 120 MB (sparse): once replayed for more than 20 s
    code, _, err = cli(capsys, "replay", str(huge), "--profile", "cps-roulette")
    one_line(code, err, f"{huge}: file larger than 8192 KiB")


# --- state files through the CLI ---------------------------------------------------------------
def test_bad_state_through_the_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    code, _, _ = cli(capsys, "cps", "verify", "--state", str(state), stdin="0000\n")
    assert code == 1
    saved = json.loads(state.read_text())
    for value, message in (
        ("9" * 5000, "a number longer than 9 digits"),
        ("true", "pin.tries_left: Input should be a valid integer"),
        ("[" * 30_000 + "]" * 30_000, "nested too deep"),
    ):
        text = json.dumps(saved).replace('"tries_left": 2', f'"tries_left": {value}')
        state.write_text(text)
        code, _, err = cli(capsys, "cps", "verify", "--state", str(state), stdin="1234\n")
        one_line(code, err, f"{state}: ", message)
    other = edited(tmp_path, Path(ROULETTE), 'code: "1234"', 'code: "4242"', "other.yaml")
    state.unlink()
    cli(capsys, "cps", "verify", "--profile", str(other), "--state", str(state), stdin="4242\n")
    code, _, err = cli(capsys, "cps", "verify", "--state", str(state), stdin="4242\n")
    one_line(code, err, "belongs to another card")


# --- options and output ------------------------------------------------------------------------
def test_bench_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    for value in ("-1", "0", "nan", "1e9"):
        code, _, err = cli(capsys, "bench", "--seconds", value)
        one_line(code, err, "is not in the range 0.1<=x<=3600")


def test_trace_to_a_full_disk(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    code, _, err = cli(capsys, "cps", "verify", "--state", str(state), "--trace", "/dev/full", stdin="0000\n")
    one_line(code, err, "/dev/full: cannot write the trace (No space left on device)")
    assert not state.exists()  # its first record (the power-up) failed: no APDU was sent


def test_stdout_to_a_full_disk() -> None:
    for args in (("cps", "status"), ("profile", "schema")):
        with open("/dev/full", "w") as full:
            r = subprocess.run(
                [*CLI, *args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, check=False
            )
        one_line(r.returncode, r.stderr, "cartesim: standard output: No space left on device")


def test_stdin_closed(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    r = subprocess.run(
        [*CLI, "cps", "verify", "--state", str(state)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: os.close(0),  # `<&-`: the process starts with fd 0 closed
    )
    one_line(r.returncode, r.stderr, "Code porteur : entrée standard fermée")
    assert not state.exists()


@pytest.mark.parametrize("what", ["--state", "--profile", "replay"])
def test_fifos_refused_at_once(tmp_path: Path, what: str) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    args = (
        ("replay", str(fifo), "--profile", "cps-roulette")
        if what == "replay"
        else ("cps", "status", what, str(fifo))
    )
    r = run(*args)  # a hang would time the test out (60 s): a FIFO was once read forever
    one_line(r.returncode, r.stderr, f"{fifo}: not a regular file")


_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it
_PR_CAPBSET_DROP = 24


def _without_capabilities() -> None:
    """In the child, before exec: drop every capability from the bounding set, so that root runs
    the CLI as a plain owner (root's CAP_DAC_OVERRIDE would write into any folder)."""
    for cap in range(64):
        _LIBC.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)


def test_state_in_a_folder_that_cannot_be_written(tmp_path: Path) -> None:
    """Once a traceback, then 6F00: now one line, and no code compared."""
    folder = tmp_path / "ro"
    folder.mkdir()
    state = folder / "s.json"

    def verify(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "cps", "verify", "--state", str(state)],
            input=f"{code}\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            preexec_fn=_without_capabilities if os.geteuid() == 0 else None,
        )

    folder.chmod(0o555)
    try:
        r = verify("0000")  # no lock file can be made
        one_line(r.returncode, r.stderr, f"{state}: cannot lock it: s.json.lock: Permission denied")
        folder.chmod(0o755)
        assert verify("0000").returncode == 1  # the state and its lock exist now
        folder.chmod(0o555)
        r = verify("0000")  # the try cannot be written: no code compared
        one_line(r.returncode, r.stderr, f"{state}: cannot write it (Permission denied)")
    finally:
        folder.chmod(0o755)
    assert json.loads(state.read_text())["pin"]["tries_left"] == 2
