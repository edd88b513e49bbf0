"""Private PC/SC stacks: pcscd and its vpcd readers in namespaces of their own, side by side.

The session itself runs in one (``--cartesim-pcscd=private``, the default). These tests start
more, as `cartesim emulate --private` processes, and check that each PC/SC view holds its own
cards on the same reader names and vpcd ports, and that a stack has as many readers as cards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from cartesim.core import layout
from cartesim.core.atr import CardKind, detect
from cartesim.harness.pytest_plugin.cards import CardFactory
from cartesim.harness.stack.pcscd import vpcd_reader
from cartesim.harness.stack.private import ENV_PCSC_SOCKET, _why, reader_conf
from tests.helpers import CLI, reader_rows, run

pytestmark = pytest.mark.e2e


@contextmanager
def private_emulate(*profiles: str) -> Iterator[dict[str, str]]:
    """`cartesim emulate --private PROFILES`: the environment that reaches its stack, once every
    card shows in its readers."""
    proc = subprocess.Popen(
        [*CLI, "emulate", "--private", *profiles],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # export PCSCLITE_CSOCK_NAME=…
        assert line.startswith(f"export {ENV_PCSC_SOCKET}="), (
            line,
            proc.stderr.read() if proc.stderr else "",
        )
        env = {ENV_PCSC_SOCKET: line.split("=", 1)[1]}
        expected = {vpcd_reader(i): detect_kind(p) for i, p in enumerate(profiles)}
        seen: dict[str, str | None] = {}
        deadline = time.monotonic() + 30  # a bound for a loaded machine; the cards show in ~0.4 s
        while time.monotonic() < deadline:
            seen = {row["reader"]: row["type"] for row in reader_rows(env)}
            if all(seen.get(reader) == kind for reader, kind in expected.items()):
                break
            time.sleep(0.1)
        assert all(seen.get(reader) == kind for reader, kind in expected.items()), seen
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def detect_kind(profile: str) -> str:
    return "vitale" if profile.startswith("vitale") else "cps"


def test_more_readers_than_the_machines_vpcd() -> None:
    cards = (
        "cps-roulette",
        "vitale-famille",
        "cps-two-situations",
        "vitale-expired-rights",
        "cpf-infirmier-remplacant",
    )
    with private_emulate(*cards) as env:
        rows = {row["reader"]: row for row in reader_rows(env)}
        assert vpcd_reader(4) == "Virtual PCD 2 00 00"
        assert rows[vpcd_reader(4)]["type"] == "cps"
        r = run("cps", "read", "--reader", vpcd_reader(2), env={**env, "CARTESIM_PIN": "4242"})
        assert r.returncode == 0, r.stderr
        assert "Raison structure= CENTRE DE SANTE DES LILAS" in r.stdout  # cps-two-situations


def test_stacks_side_by_side(cartesim: CardFactory) -> None:
    """This session's stack holds a CPS in "Virtual PCD 00 00" (vpcd port 35963); another stack,
    started meanwhile, holds a Vitale on the same reader name and port. Neither sees the other."""
    if cartesim.mode != "pcsc":
        pytest.skip("the session runs in-process")
    mine = cartesim.insert("cps-roulette")
    with private_emulate("vitale-famille") as other:
        theirs = reader_rows(other)
        assert [(r["reader"], r["type"]) for r in theirs if r["card"]] == [(vpcd_reader(0), "vitale")]
        assert detect(mine.transport.atr) is CardKind.CPS  # ours, unchanged
        ours = reader_rows()  # this process's own stack
        assert {r["reader"]: r["type"] for r in ours}[vpcd_reader(0)] == "cps"
        assert ours != theirs
    assert mine.transport.atr == layout.ATR_CPS3


def test_the_session_runs_in_a_private_stack(cartesim: CardFactory, request: pytest.FixtureRequest) -> None:
    if cartesim.mode != "pcsc" or request.config.getoption("--cartesim-pcscd") != "private":
        pytest.skip("not a private stack")
    socket_path = os.environ[ENV_PCSC_SOCKET]
    assert socket_path.endswith("/run/pcscd.comm") and "cartesim-stack-" in socket_path
    assert "/run/pcscd/pcscd.comm" not in socket_path  # never the machine's pcscd


def test_reader_conf_names_each_entry_apart() -> None:
    conf = reader_conf(5, ["/d0.so", "/d1.so", "/d2.so"])
    assert conf.count("FRIENDLYNAME") == 3
    assert 'FRIENDLYNAME "Virtual PCD"\n' in conf and 'FRIENDLYNAME "Virtual PCD 2"' in conf
    assert "0x8C7B" in conf and "0x8C7F" in conf  # ports 35963 and 35967
    assert "LIBPATH /d2.so" in conf  # a driver file of its own for each entry


def test_refusal_says_why_and_what_to_do() -> None:
    text = _why("refused unshare: Operation not permitted (errno 1)")
    assert "unshare: Operation not permitted" in text
    assert "apparmor_restrict_unprivileged_userns" in text and "SYS_ADMIN" in text
