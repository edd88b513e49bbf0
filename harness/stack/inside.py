"""The inside of a private PC/SC stack: ``python -m cartesim.harness.stack.inside FOLDER``.

Run by ``PrivateStack`` as a fresh (single-threaded) process, it moves itself into new user,
mount and network namespaces, then:

- brings the namespace's loopback up: vpcd's ports (35963…) exist there only, out of reach of the
  network and of any other pcscd or emulator on the machine;
- mounts FOLDER/run on /run/pcscd, where pcscd keeps its socket: clients outside reach this pcscd
  through FOLDER/run/pcscd.comm (``PCSCLITE_CSOCK_NAME``), nothing else on the machine sees it;
- starts ``pcscd --foreground -c FOLDER/reader.conf.d`` (its own vpcd readers);
- serves FOLDER/vpcd.sock: a card process outside asks for a connection to a vpcd port and gets
  the connected socket itself (SCM_RIGHTS), so APDUs go straight to vpcd, with no relay.

It runs until its stdin closes (the owner is gone) or it is told to stop; pcscd goes with it.
No root is needed: the user namespace makes this process root of its own namespaces only.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import IO

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
RUN_PCSCD = "/run/pcscd"
SBIN_PCSCD = "/usr/sbin/pcscd"

_libc = ctypes.CDLL(None, use_errno=True)


class Refused(Exception):
    """The namespaces cannot be had here; the message says why, in one line."""


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise Refused(f"{what}: {os.strerror(err)} (errno {err})")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def enter_namespaces() -> None:
    """New user (mapped to our uid), mount and network namespaces for this process."""
    uid, gid = os.geteuid(), os.getegid()
    try:
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET), "unshare")
    except Refused:
        if uid != 0:
            raise
        # Root in a container that forbids user namespaces may still have mount and net ones.
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET), "unshare")
    else:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    # Nothing mounted here may reach the machine's mount table.
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def mount_run_dir(folder: Path) -> None:
    if not os.path.isdir(RUN_PCSCD):
        raise Refused(
            f"{RUN_PCSCD} does not exist (systemd makes it at boot for pcscd; without systemd: mkdir {RUN_PCSCD} as root, as ci/setup.sh does)"
        )
    source = str(folder / "run").encode()
    _check(_libc.mount(source, RUN_PCSCD.encode(), None, MS_BIND, None), "mount --bind")


def pcscd_binary() -> str:
    return shutil.which("pcscd") or SBIN_PCSCD


def start_pcscd(folder: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    argv = [pcscd_binary(), "--foreground", "--config", str(folder / "reader.conf.d")]
    if os.environ.get("CARTESIM_PCSCD_DEBUG"):
        argv += ["--debug", "--apdu"]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def _answer(
    conn: socket.socket, line: bytes, folder: Path, state: dict[str, subprocess.Popen[bytes] | None]
) -> None:
    """One request of the vpcd socket: ``connect PORT``, ``stop-pcscd``, ``start-pcscd``."""
    words = line.split()
    if len(words) == 2 and words[0] == b"connect" and words[1].isdigit():
        try:
            peer = socket.create_connection(("127.0.0.1", int(words[1])), timeout=2.0)
        except OSError as e:
            conn.sendall(b"error %d\n" % (e.errno or errno.EIO))
            return
        with peer:
            peer.setblocking(True)
            socket.send_fds(conn, [b"ok\n"], [peer.fileno()])
    elif words == [b"stop-pcscd"]:
        _stop(state.pop("pcscd", None))
        state["pcscd"] = None
        conn.sendall(b"ok\n")
    elif words == [b"start-pcscd"]:
        if state.get("pcscd") is None:
            with open(folder / "pcscd.log", "ab") as log:
                state["pcscd"] = start_pcscd(folder, log)
        conn.sendall(b"ok\n")
    else:
        conn.sendall(b"error %d\n" % errno.EINVAL)


def serve(folder: Path) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock_path = folder / "vpcd.sock"
    server.bind(str(sock_path))
    os.chmod(sock_path, 0o600)
    server.listen(16)
    with open(folder / "pcscd.log", "ab") as log:
        state: dict[str, subprocess.Popen[bytes] | None] = {"pcscd": start_pcscd(folder, log)}
    print("ready", flush=True)  # the owner waits for this line, then for pcscd's readers
    try:
        while True:
            ready, _, _ = select.select([server, sys.stdin], [], [])
            if sys.stdin in ready and not os.read(sys.stdin.fileno(), 1):
                return  # the owner is gone (or closed our stdin to stop us)
            if server in ready:
                conn, _ = server.accept()
                # A client that goes away gets no answer, and stops nothing.
                with conn, contextlib.suppress(OSError):
                    conn.settimeout(5.0)
                    _answer(conn, conn.recv(64), folder, state)
    finally:
        _stop(state.get("pcscd"))


def _stop(pcscd: subprocess.Popen[bytes] | None) -> None:
    if pcscd is None:
        return
    pcscd.terminate()
    try:
        pcscd.wait(5)
    except subprocess.TimeoutExpired:
        pcscd.kill()
        pcscd.wait()


def main() -> int:
    folder = Path(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        enter_namespaces()
        loopback_up()
        mount_run_dir(folder)
    except (Refused, OSError) as e:
        print(f"refused {e}", flush=True)
        return 1
    serve(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
