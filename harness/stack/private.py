"""A private PC/SC stack, without root: pcscd and its vpcd readers in namespaces of their own.

``PrivateStack`` starts ``cartesim.harness.stack.inside`` (new user, mount and network namespaces:
its own loopback, its own /run/pcscd) and hands this process, and every process it starts, the
two ways in:

- ``PCSCLITE_CSOCK_NAME``: pcsc-lite's own variable, the path of the private pcscd's socket.
  Every PC/SC client (pyscard, opensc-tool, cardpeek, the software under test) honours it;
- ``CARTESIM_VPCD_SOCKET``: where an emulated card asks for a connection to a vpcd port of the
  private stack (``cartesim.emulator.vpcd``): it gets the connected socket itself.

Nothing else on the machine sees this pcscd or its ports, and it disturbs nothing: two stacks
(two test sessions, two pytest-xdist workers, two CI jobs) use the default reader names and vpcd
ports side by side.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from cartesim.core.errors import NoService
from cartesim.emulator.vpcd import ENV_VPCD_SOCKET, VPCD_PORT, ask_vpcd_socket
from cartesim.harness.stack.pcscd import VPCD_SLOTS_PER_READER, friendly_name, vpcd_reader

ENV_PCSC_SOCKET = "PCSCLITE_CSOCK_NAME"
START_TIMEOUT = 15.0
MAX_READERS = 16


class StackUnavailable(NoService):
    """A private stack cannot be had here; the message says why and what to do instead."""


def reader_conf(readers: int, drivers: list[str]) -> str:
    """reader.conf entries for ``readers`` vpcd readers: entry k serves ports 35963 + 2k and the
    next one. pcscd names the first entry's slots "Virtual PCD 00 00" and "Virtual PCD 00 01", as
    the machine's own vpcd; entries of the same name would get the same reader names, so entry k
    is "Virtual PCD k" (slots "Virtual PCD k 00 00" and "Virtual PCD k 00 01").

    vpcd's driver keeps its connections in one table per loaded library, indexed by slot: two
    entries loading the same library file share it and serve the same cards. So entry k loads
    ``drivers[k]``, a copy of the driver of its own (pcscd loads each file once)."""
    entries = []
    for k in range(entries_for(readers)):
        port = VPCD_PORT + VPCD_SLOTS_PER_READER * k
        entries.append(
            f'FRIENDLYNAME "{friendly_name(k)}"\nDEVICENAME /dev/null:0x{port:04X}\nLIBPATH {drivers[k]}\n'
            f"CHANNELID 0x{port:04X}\n"
        )
    return "\n".join(entries)


def entries_for(readers: int) -> int:
    return (readers + VPCD_SLOTS_PER_READER - 1) // VPCD_SLOTS_PER_READER


def vpcd_driver() -> str:
    from cartesim.harness.stack.pcscd import VPCD_DRIVER, VPCD_PACKAGE

    if not VPCD_DRIVER.exists():
        raise StackUnavailable(f"the vpcd reader driver is not installed (apt-get install {VPCD_PACKAGE})")
    return str(VPCD_DRIVER)


class PrivateStack:
    """pcscd with ``readers`` vpcd readers (slot N on port 35963 + N), private to this process
    and its children, for a ``with`` block or until ``stop()``."""

    owned = True

    def __init__(self, readers: int = 2, *, timeout: float = START_TIMEOUT) -> None:
        if not 1 <= readers <= MAX_READERS:
            raise ValueError(f"readers: 1 to {MAX_READERS}")
        self.readers = readers
        self.timeout = timeout
        self.folder: Path | None = None
        self._inside: subprocess.Popen[str] | None = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def reader_names(self) -> tuple[str, ...]:
        return tuple(vpcd_reader(s) for s in range(self.readers))

    @property
    def pcsc_socket(self) -> Path:
        assert self.folder is not None
        return self.folder / "run" / "pcscd.comm"

    @property
    def vpcd_socket(self) -> Path:
        assert self.folder is not None
        return self.folder / "vpcd.sock"

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to use this stack (set in ``os.environ`` while it runs)."""
        return {ENV_PCSC_SOCKET: str(self.pcsc_socket), ENV_VPCD_SOCKET: str(self.vpcd_socket)}

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> PrivateStack:
        from cartesim.harness.stack.inside import pcscd_binary

        if not os.access(pcscd_binary(), os.X_OK):
            raise StackUnavailable("pcscd is not installed (apt-get install pcscd)")
        # A short path: a Unix socket's path holds at most 107 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="cartesim-stack-", dir=_short_tmp()))
        (self.folder / "run").mkdir()
        conf = self.folder / "reader.conf.d"
        conf.mkdir()
        driver = vpcd_driver()
        drivers = [driver]
        for k in range(1, entries_for(self.readers)):
            copy = self.folder / f"libifdvpcd-{k}.so"
            shutil.copyfile(driver, copy)
            drivers.append(str(copy))
        (conf / "vpcd").write_text(reader_conf(self.readers, drivers))
        try:
            self._inside = subprocess.Popen(
                [sys.executable, "-m", "cartesim.harness.stack.inside", str(self.folder)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert self._inside.stdout is not None
            first = self._inside.stdout.readline().strip()
            if first != "ready":
                raise StackUnavailable(_why(first or self._tail()))
            self._activate()
            self._wait_ready()
        except BaseException:
            if not os.environ.get("CARTESIM_KEEP"):
                self.stop()
            raise
        return self

    def _activate(self) -> None:
        for key, value in self.env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _wait_ready(self) -> None:
        from cartesim.core.transport import pcsc

        deadline = time.monotonic() + self.timeout
        wanted = set(self.reader_names)
        while True:
            if time.monotonic() > deadline or self._dead():
                raise StackUnavailable(f"private pcscd did not start: {self._tail()}")
            try:
                # Once pcscd answers, it tells us when its reader list changes: no polling.
                left = max(0.1, deadline - time.monotonic())
                if pcsc.wait_for_readers(lambda names: wanted <= set(names), left) is None:
                    raise StackUnavailable(
                        f"private pcscd did not list {', '.join(sorted(wanted))}: {self._tail()}"
                    )
                return
            except StackUnavailable:
                raise
            except NoService:
                time.sleep(0.01)  # its socket is not there, or not listening, yet

    def _dead(self) -> bool:
        return self._inside is None or self._inside.poll() is not None

    def _tail(self) -> str:
        if self.folder is None:
            return ""
        log = self.folder / "pcscd.log"
        lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
        return lines[-1] if lines else "(no output)"

    def pause_pcscd(self) -> None:
        """Stop the private pcscd (the stack stays): PC/SC clients see no service."""
        ask_vpcd_socket(self.vpcd_socket, b"stop-pcscd")
        while self.pcsc_socket.exists():  # pcscd removes its socket as it leaves
            time.sleep(0.01)

    def resume_pcscd(self) -> None:
        """Start the private pcscd again (the cards find it again by themselves)."""
        ask_vpcd_socket(self.vpcd_socket, b"start-pcscd")
        self._wait_ready()

    def stop(self) -> None:
        inside, self._inside = self._inside, None
        if inside is not None:
            _close(inside.stdin)  # its stdin closing tells it to stop pcscd and leave
            try:
                inside.wait(10)
            except subprocess.TimeoutExpired:
                inside.kill()
                inside.wait()
            _close(inside.stdout)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> PrivateStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _close(stream: IO[str] | None) -> None:
    if stream is not None:
        with suppress(OSError):
            stream.close()


def _short_tmp() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return runtime if runtime and os.path.isdir(runtime) and len(runtime) < 40 else tempfile.gettempdir()


def _why(reason: str) -> str:
    reason = reason.removeprefix("refused ")
    return (
        f"no private PC/SC stack here ({reason}): user namespaces are not allowed to this user "
        "(Ubuntu 24.04: sysctl kernel.apparmor_restrict_unprivileged_userns=0; a container: "
        "--cap-add SYS_ADMIN, or --privileged)"
    )


@contextmanager
def private_stack(readers: int = 2) -> Iterator[PrivateStack]:
    with PrivateStack(readers) as stack:
        yield stack
