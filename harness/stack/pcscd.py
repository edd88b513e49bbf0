"""The machine's pcscd: use the running one, else start it (root only).

Our own pcscd runs in the foreground as a child process (no systemd needed) and is stopped at
the end. Readiness is pcscd listing the vpcd readers, waited for through PC/SC itself.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import IO

from cartesim.core.errors import NoService

log = logging.getLogger(__name__)

PCSCD_PACKAGE = "pcscd"
VPCD_PACKAGE = "vsmartcard-vpcd"
# What vsmartcard-vpcd installs (dpkg -L): the driver, and the reader.conf entry loading it.
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
RUN_DIR = Path("/run/pcscd")
SBIN_PCSCD = Path("/usr/sbin/pcscd")  # not on a normal user's PATH

VPCD_SLOTS = 2  # vpcd's default: two readers, ports 35963 and 35964
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
SOCKET_POLL = 0.01  # before pcscd's socket exists PC/SC cannot notify us: poll, briefly
LOG_TAIL = 2000


class PcscdUnavailable(NoService):
    """pcscd with the vpcd readers cannot be had here; the message says why in one line.
    A NoService, so the CLI answers it with exit code 3 like any missing PC/SC service."""


VPCD_SLOTS_PER_READER = 2  # vpcd's driver: two slots per reader.conf entry, on consecutive ports


def friendly_name(entry: int) -> str:
    """The FRIENDLYNAME of vpcd's reader.conf entry ``entry``: the machine's own entry is
    "Virtual PCD"; a private stack's further ones must differ, or pcscd gives their slots the same
    reader names."""
    return "Virtual PCD" if entry == 0 else f"Virtual PCD {entry}"


def vpcd_reader(slot: int = 0) -> str:
    """The reader of card slot ``slot`` (vpcd port 35963 + slot): pcscd names a reader
    "<FRIENDLYNAME> <reader index> <slot>", both in hex."""
    entry, within = divmod(slot, VPCD_SLOTS_PER_READER)
    return f"{friendly_name(entry)} 00 {within:02X}"


VPCD_READERS = tuple(vpcd_reader(s) for s in range(VPCD_SLOTS))


def _pcsc() -> ModuleType:
    """core.transport.pcsc, imported late: it needs pyscard, which may be missing."""
    try:
        from cartesim.core.transport import pcsc
    except ImportError as e:
        raise PcscdUnavailable(str(e)) from e  # PyscardMissing: pip install 'cartesim[pcsc]'
    return pcsc


def _running_readers() -> list[str] | None:
    """The readers of a running pcscd, None when no pcscd answers."""
    from cartesim.core.errors import NoService

    try:
        return _pcsc().reader_names()
    except NoService:
        return None


def _binary() -> str | None:
    found = shutil.which("pcscd")
    if found:
        return found
    return str(SBIN_PCSCD) if os.access(SBIN_PCSCD, os.X_OK) else None


def _check_startable() -> str:
    """The pcscd binary we may start, or PcscdUnavailable with the reason."""
    binary = _binary()
    if binary is None:
        raise PcscdUnavailable(f"pcscd is not installed (apt-get install {PCSCD_PACKAGE})")
    if not VPCD_DRIVER.exists() or not VPCD_CONF.exists():
        raise PcscdUnavailable(f"the vpcd reader driver is not installed (apt-get install {VPCD_PACKAGE})")
    if os.geteuid() != 0:
        raise PcscdUnavailable("pcscd is not running and only root can start it (systemctl start pcscd)")
    return binary


def _missing(names: Sequence[str], wanted: Sequence[str]) -> list[str]:
    return [r for r in wanted if r not in names]


def pcscd_available() -> tuple[bool, str]:
    """Can pcscd with the vpcd readers be had here (running, or startable), and why not."""
    try:
        names = _running_readers()
        if names is not None:
            if _missing(names, VPCD_READERS):
                return (
                    False,
                    f"pcscd is running without the vpcd readers ({VPCD_PACKAGE} missing or not loaded)",
                )
            return True, "pcscd is running with the vpcd readers"
        _check_startable()
    except PcscdUnavailable as e:
        return False, str(e)
    return True, "pcscd can be started"


class Pcscd:
    """pcscd with the vpcd readers, for the duration of a ``with`` block.

    Uses the running pcscd when there is one (``owned`` is then False and stop() leaves it);
    otherwise starts ``pcscd --foreground`` (``debug``: with ``--debug --apdu``, logged to
    ``log_path``) and stops it at the end.
    """

    def __init__(
        self,
        *,
        debug: bool = False,
        log_path: Path | None = None,
        timeout: float = START_TIMEOUT,
        readers: Sequence[str] = VPCD_READERS,
    ) -> None:
        self.debug, self.log_path, self.timeout = debug, log_path, timeout
        self.readers = tuple(readers)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def owned(self) -> bool:
        return self.process is not None

    def start(self) -> Pcscd:
        names = _running_readers()
        if names is not None:
            missing = _missing(names, self.readers)
            if missing:
                raise PcscdUnavailable(
                    f"pcscd is running without the reader(s) {', '.join(missing)} "
                    f"(install {VPCD_PACKAGE}, then restart pcscd)"
                )
            log.info("using the running pcscd")
            return self
        binary = _check_startable()
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--foreground"] + (["--debug", "--apdu"] if self.debug else [])
        # A file, not a pipe: nobody reads pcscd's output while it runs, and a full pipe blocks it.
        self._log = open(self.log_path, "w+b") if self.log_path else tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        log.info("started pcscd (pid %d)", self.process.pid)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        from cartesim.core.errors import NoService

        assert self.process is not None
        pcsc = _pcsc()
        deadline = time.monotonic() + self.timeout
        while True:
            if self.process.poll() is not None:
                raise PcscdUnavailable(
                    f"pcscd exited with status {self.process.returncode}: {self._log_tail()}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise PcscdUnavailable(
                    f"pcscd did not list {', '.join(self.readers)} within {self.timeout:g} s"
                )
            try:
                # Once pcscd answers, it tells us when its reader list changes: no polling.
                if pcsc.wait_for_readers(lambda names: not _missing(names, self.readers), left) is not None:
                    return
            except NoService:
                time.sleep(SOCKET_POLL)  # its socket is not there yet

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0, os.SEEK_END)
        size = self._log.tell()
        self._log.seek(max(0, size - LOG_TAIL))
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else "(no output)"

    def stop(self) -> None:
        """Stop the pcscd we started (SIGTERM, then SIGKILL); leave a running one alone."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("pcscd (pid %d) ignored SIGTERM, killing it", proc.pid)
                proc.kill()
                proc.wait()
            log.info("stopped pcscd (pid %d)", proc.pid)
        if self._log is not None:
            self._log.close()
            self._log = None

    def pause_pcscd(self) -> None:
        """Stop pcscd, if it is ours (``owned``)."""
        if self.process is None:
            raise PcscdUnavailable("this pcscd is the machine's, not ours to stop")
        self.stop()

    def resume_pcscd(self) -> None:
        self.start()

    def __enter__(self) -> Pcscd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
