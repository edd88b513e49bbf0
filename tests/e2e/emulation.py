"""`cartesim emulate` as a separate process, and waiting for what PC/SC clients see of it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.test_cli import CLI, run

CPS_READER, VITALE_READER = "Virtual PCD 00 00", "Virtual PCD 00 01"
TIMEOUT = 10.0  # pcscd polls the vpcd slots every ~400 ms; generous for a loaded machine


def readers() -> dict[str, dict]:
    r = run("readers", "--json")
    return {row["reader"]: row for row in json.loads(r.stdout)} if r.returncode == 0 else {}


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
