"""A private network namespace for pcscd and the emulated cards: the loopback-only set-up.

vpcd listens on 0.0.0.0 and cannot be told otherwise, so anyone who reaches ports 35963-35964
can present a card. Run pcscd, and the cards that connect to vpcd, in a network namespace whose
only interface is loopback: vpcd then listens where no network reaches, while PC/SC clients
still talk to pcscd through its Unix socket (a file, not the network). The packaged vpcd's
reversed mode (the card listening on 127.0.0.1) was tried first: pcscd aborts as soon as such a
card goes away, so it is not used.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

from cartesim.core.errors import NoService

NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000


class NetnsUnavailable(NoService):
    """The namespace cannot be had here (not root, no iproute2)."""


def path(name: str) -> Path:
    return NETNS_DIR / name


def ensure(name: str) -> None:
    """Create the namespace ``name`` with its loopback up, unless it exists."""
    if path(name).exists():
        return
    if os.geteuid() != 0:
        raise NetnsUnavailable(f"network namespace {name}: creating it needs root")
    ip = shutil.which("ip")
    if ip is None:
        raise NetnsUnavailable("network namespaces need the `ip` command (apt package iproute2)")
    for argv in ([ip, "netns", "add", name], [ip, "-n", name, "link", "set", "lo", "up"]):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise NetnsUnavailable(f"network namespace {name}: {done.stderr.strip() or 'ip failed'}")


def enter(name: str) -> None:
    """Move this thread, and the threads and processes it starts from now on, into ``name``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path(name), os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsUnavailable(f"network namespace {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def same_netns(pid: int, name: str) -> bool:
    """Whether process ``pid`` runs in the namespace ``name``."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(path(name)).st_ino
    except OSError:
        return False
