"""What the tests share: paths, sending APDUs, running the CLI, emulate as a separate process.

Test modules import from here, never from each other.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pexpect
import yaml

from cartesim.emulator.cardos import CardOS
from cartesim.harness.tools import CARTESIM_ARGV

ROOT = Path(__file__).resolve().parent.parent
CARDS = ROOT / "fixtures" / "cards"
DATA = Path(__file__).resolve().parent / "data"
SCENARIOS = sorted((ROOT / "fixtures" / "scenarios").glob("*.yaml"))
ROULETTE = str(CARDS / "cps-roulette.yaml")
CLI = list(CARTESIM_ARGV)


def apdu(card: CardOS, hexcmd: str) -> str:
    """Send one APDU given in hex (spaces allowed); the response as upper-case hex."""
    return card.process(bytes.fromhex(hexcmd)).hex().upper()


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`cartesim ARGS` as a user runs it: a process, stdin, no CARTESIM_* variable but ``env``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CARTESIM_")}
    full_env.update(env or {})
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, env=full_env, timeout=60, check=False
    )


def spawn(*args: str, timeout: float = 20) -> pexpect.spawn:
    """`cartesim ARGS` on a pseudo-terminal, as a person runs it; ``child.logfile_read`` keeps
    everything the screen showed (``screen(child)``)."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TERM": "dumb"}
    child = pexpect.spawn(CLI[0], [*CLI[1:], *args], env=env, encoding="utf-8", timeout=timeout)
    child.logfile_read = io.StringIO()
    return child


def screen(child: pexpect.spawn) -> str:
    log = child.logfile_read
    assert isinstance(log, io.StringIO)
    return log.getvalue()


# The codes of the sample cards and the new code the tests set: none may ever be printed.
SAMPLE_CODES = ("1234", "12345678", "4321")


def code_forms(codes: tuple[str, ...] = SAMPLE_CODES) -> list[str]:
    """Each code as it could leak: plain, and its bytes in hex (both cases)."""
    return [form for c in codes for form in (c, c.encode().hex(), c.encode().hex().upper())]


def faulty(tmp_path: Path, base: str, *faults: dict[str, Any]) -> Path:
    """A copy of the sample ``base`` with these ``faults:`` entries."""
    doc = yaml.safe_load((CARDS / f"{base}.yaml").read_text())
    doc["faults"] = list(faults)
    path = tmp_path / f"{base}-faulty.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


# A scenario that expects the wrong thing on purpose (its report is what the tests look at).
MISMATCH = """
    description: expects the wrong thing on purpose
    cards: [cps-blocked]
    steps:
      - unblock: {code: "12345678", new_pin: "4321"}
        expect: {sw: "9000", tries_left: 3}
      - verify: "1234"
        expect: {sw: 63C1, error: blocked, tries_left: 1}
      - tries_left
"""


# --- `cartesim emulate` as a separate process, and what PC/SC clients see of it ----------------
CPS_READER, VITALE_READER = "Virtual PCD 00 00", "Virtual PCD 00 01"
TIMEOUT = 10.0  # pcscd polls the vpcd slots every ~400 ms; generous for a loaded machine


def reader_rows(env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """`cartesim readers --json`'s rows (cartesim-readers/1); none when PC/SC cannot say."""
    r = run("readers", "--json", env=env)
    return list(json.loads(r.stdout)["readers"]) if r.returncode == 0 else []


def readers() -> dict[str, dict]:
    return {row["reader"]: row for row in reader_rows()}


def wait_for(expected: dict[str, str | None]) -> dict[str, dict]:
    """Poll `cartesim readers --json` until each reader holds a card of that type (None: empty)."""
    deadline = time.monotonic() + TIMEOUT
    rows: dict[str, dict] = {}
    while time.monotonic() < deadline:
        rows = readers()
        seen = {name: (row["type"] if row["card"] else None) for name, row in rows.items()}
        if all(name in seen and seen[name] == kind for name, kind in expected.items()):
            return rows
        time.sleep(0.05)
    raise AssertionError(f"readers never showed {expected}: {rows}")


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(10)


@contextmanager
def emulating(*args: str, expect: dict[str, str | None]) -> Iterator[subprocess.Popen[str]]:
    """`cartesim emulate ARGS` until the block ends (SIGTERM unless the block stopped it), once
    the readers show ``expect``; afterwards those readers are empty again for the next test."""
    proc = subprocess.Popen(
        [*CLI, "emulate", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    try:
        wait_for(expect)
        yield proc
    finally:
        stop(proc)
        wait_for(dict.fromkeys(expect))


# --- a stand-in for vpcd: the card side alone, no pcscd --------------------------------------------
VPCD_TIMEOUT = 5.0  # a generous bound on a loaded machine; nothing is timed


class FakeVpcd:
    """Listens like vpcd on one port and speaks its framing to the card that connects."""

    def __init__(self, port: int = 0) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.server.settimeout(VPCD_TIMEOUT)
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(VPCD_TIMEOUT)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(struct.pack(">H", len(payload)) + payload)

    def ask(self, payload: bytes) -> bytes:
        self.send(payload)
        assert self.conn is not None
        head = self._read(2)
        return self._read(struct.unpack(">H", head)[0])

    def _read(self, n: int) -> bytes:
        assert self.conn is not None
        out = b""
        while len(out) < n:
            chunk = self.conn.recv(n - len(out))
            if not chunk:
                raise ConnectionError("card closed the connection")
            out += chunk
        return out

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self.drop()
        self.server.close()


# --- a project of someone else's, with cartesim installed ---------------------------------------
def project(root: Path, files: dict[str, str]) -> Path:
    """A scratch project: ``files`` (relative path -> text, dedented) under ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def pytest_in(
    folder: Path, *args: str, python: str = sys.executable, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` run in ``folder`` as its own project would run it: none of this
    session's pytest, xdist or cartesim variables, no cache written."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CARTESIM_", "PYTEST_", "PYTHON")) and k not in ("VIRTUAL_ENV",)
    }
    return subprocess.run(
        [python, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


# --- the README's Python examples, run as written -----------------------------------------------
README = ROOT / "README.md"


def readme_python_blocks() -> list[str]:
    """Every ```python block of README.md, in order, as written."""
    return re.findall(r"^```python\n(.*?)^```$", README.read_text(encoding="utf-8"), re.S | re.M)


def readme_test_modules() -> dict[str, str]:
    """The README's pytest examples (blocks that define tests), as the files of a project."""
    return {
        f"test_readme_{n}.py": block
        for n, block in enumerate(readme_python_blocks())
        if re.search(r"^def test_", block, re.M)
    }


def readme_pcsc_examples() -> list[str]:
    """The README's application examples that open a PC/SC reader (run in the e2e suite)."""
    return [b for b in readme_python_blocks() if "cartesim.core.transport.pcsc" in b and "def test_" not in b]


def readme_pkcs11_examples() -> list[str]:
    """The README's PKCS#11 example (PyKCS11 on OpenSC's module), run in the e2e suite."""
    return [b for b in readme_python_blocks() if "import PyKCS11" in b]


def passed_failed(out: str) -> dict[str, int]:
    """pytest's closing counts: {"passed": 3, "failed": 1, ...}."""
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|errors?|skipped)", out)}


# --- JSON outputs: each names its format and matches its published schema (docs/json.md) -------
def assert_valid(doc: Any, what: str) -> None:
    """``doc`` is a ``cartesim-WHAT/1`` document that its shipped JSON Schema accepts."""
    from jsonschema import Draft202012Validator

    from cartesim.harness.cli import schema

    assert isinstance(doc, dict) and doc.get("format") == schema.format_name(what), doc
    validator = Draft202012Validator(schema.load(what), format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == [], errors
