"""pyscard is an extra: without it the in-process mode and the emulator work, and a command that
needs PC/SC says so in one line, exit 3. Here pyscard is hidden from a child process; the wheel
in a virtualenv without pyscard is tests/test_packaging.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cartesim.core.errors import PyscardMissing
from tests.helpers import FakeVpcd, stop

MISSING = "cartesim: pyscard n'est pas installé : pip install 'cartesim[pcsc]'\n"
# `cartesim ARGS` in a Python where `import smartcard` fails, as where pyscard is not installed.
WITHOUT = (
    "import sys; sys.modules['smartcard'] = None; "
    "from cartesim.harness.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("CARTESIM_", "PCSCLITE_"))}


def without_pyscard(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [("readers",), ("cps", "status", "--pcsc"), ("vitale", "read", "--reader", "Virtual PCD 00 01")],
    ids=" ".join,
)
def test_a_command_that_needs_pcsc_says_so_in_one_line(args: tuple[str, ...]) -> None:
    r = without_pyscard(*args)
    assert (r.returncode, r.stdout, r.stderr) == (3, "", MISSING)


def test_in_process_commands_need_no_pyscard() -> None:
    r = without_pyscard("cps", "verify", stdin="1234\n")
    assert (r.returncode, r.stdout) == (0, "Code porteur correct\n"), r.stderr
    r = without_pyscard("demo", "--transport", "auto")
    assert r.returncode == 0, r.stderr
    assert "pyscard n'est pas installé" in r.stdout and "Carte débloquée" in r.stdout


def test_the_emulator_speaks_vpcd_without_pyscard() -> None:
    vpcd = FakeVpcd()
    proc = subprocess.Popen(
        [sys.executable, "-c", WITHOUT, "emulate", "cps-roulette", "--vpcd", f"127.0.0.1:{vpcd.port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        vpcd.accept()
        assert vpcd.ask(b"\x04") == bytes.fromhex("3BAC00402A001225006480000310009000")  # its ATR
        assert vpcd.ask(bytes.fromhex("00200001")) == b"\x63\xc3"  # the tries-left query
    finally:
        vpcd.close()
        assert stop(proc) == 0, proc.stderr.read() if proc.stderr else ""


def test_the_import_error_is_both_kinds() -> None:
    e = PyscardMissing()
    assert isinstance(e, ImportError)  # `except ImportError` around the import still works
    assert str(e) == "pyscard n'est pas installé : pip install 'cartesim[pcsc]'"
