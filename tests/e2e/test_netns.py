"""The loopback-only set-up: `cartesim emulate --netns NAME` runs pcscd and the card in a private
network namespace with only loopback; PC/SC clients on the host still see the card (pcscd's
socket is a file), and nothing listens for vpcd on the host's network."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from cartesim.harness.pytest_plugin.fixtures import CardSession, unavailable
from tests.helpers import CLI, CPS_READER, run, wait_for

pytestmark = pytest.mark.e2e


def _listening_on_host(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_emulate_in_a_private_network_namespace(pcscd_free_slots: CardSession, tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        unavailable("network namespaces need root and iproute2")
    session = pcscd_free_slots
    assert session.pcscd is not None
    if not session.pcscd.owned:
        pytest.skip("a pcscd not started by these tests runs: not ours to stop")
    name = f"cartesim-test-{uuid.uuid4().hex[:6]}"
    session.pcscd.stop()  # the namespace gets its own pcscd
    proc = subprocess.Popen(
        [*CLI, "emulate", "--netns", name, "cps-roulette", "--control", str(tmp_path / "c" / "control.sock")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for({CPS_READER: "cps"})
        r = run("cps", "verify", "--pcsc", stdin="1234\n")  # a host client, through pcscd's socket
        assert (r.returncode, r.stdout.strip()) == (0, "Code porteur correct")
        assert not _listening_on_host(35963)  # vpcd listens in the namespace only
        inside = subprocess.run(["ip", "netns", "exec", name, "ss", "-ltn"], capture_output=True, text=True)
        assert ":35963" in inside.stdout
        links = subprocess.run(["ip", "-n", name, "-o", "link"], capture_output=True, text=True).stdout
        assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        subprocess.run(["ip", "netns", "del", name], check=False)
        session.pcscd.start()  # back to the session's pcscd
    assert proc.returncode == 0, err
    assert f"espace de noms {name}" in err


def test_refuses_a_pcscd_outside_the_namespace(pcscd_free_slots: CardSession) -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        unavailable("network namespaces need root and iproute2")
    name = f"cartesim-test-{uuid.uuid4().hex[:6]}"
    try:
        r = run("emulate", "--netns", name, "cps-roulette")  # the session's pcscd runs on the host
        assert r.returncode == 3
        assert f"a pcscd already runs outside the network namespace {name}" in r.stderr
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
