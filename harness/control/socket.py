"""The control socket's place and protocol, shared by the server (``cartesim emulate``) and the
client (``cartesim card``): JSON lines over a Unix socket in an owner-only folder (0700), the socket
itself 0600.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from cartesim.core.errors import InputError, TransportError

PROTOCOL_VERSION = 1
ENV_CONTROL = "CARTESIM_CONTROL"  # overrides the default socket path, for emulate and card alike
SOCKET_NAME = "control.sock"
MAX_LINE = 64 * 1024
OPS = ("status", "remove", "insert", "swap", "reset", "set", "save-state")


class NoEmulator(TransportError):
    """No ``cartesim emulate`` listens on the control socket (CLI exit 3)."""


class ControlError(TransportError):
    """The control socket answered something unexpected, or the emulator failed (CLI exit 3)."""


class RemoteInputError(InputError):
    """Bad input reported by the emulator (unknown slot, state or profile): CLI exit 2."""

    def __init__(self, message: str) -> None:
        self.source, self.where, self.problem = "cartesim emulate", "", message
        Exception.__init__(self, message)


def default_socket_path() -> Path:
    """``$CARTESIM_CONTROL``, else ``$XDG_RUNTIME_DIR/cartesim/control.sock``, else
    ``/tmp/cartesim-UID/control.sock`` (``$TMPDIR`` instead of /tmp if set)."""
    if os.environ.get(ENV_CONTROL):
        return Path(os.environ[ENV_CONTROL])
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = (
        Path(runtime) / "cartesim" if runtime else Path(tempfile.gettempdir()) / f"cartesim-{os.geteuid()}"
    )
    return folder / SOCKET_NAME


def control_socket(explicit: Path | None) -> tuple[Path, bool]:
    """The socket ``emulate`` serves, and whether it may go without: a path the user chose
    (``--control`` or ``$CARTESIM_CONTROL``) must work; the default is only reported if it cannot."""
    if explicit is not None:
        return explicit, False
    return default_socket_path(), not os.environ.get(ENV_CONTROL)


def check_folder(folder: Path) -> None:
    """Refuse a folder another user owns or may enter: they could read or replace the socket.

    FileNotFoundError when it does not exist; InputError when it is not safe.
    """
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(str(folder), "", "not a folder (symbolic links are refused)")
    if st.st_uid != os.geteuid():
        raise InputError(str(folder), "", f"owned by uid {st.st_uid}, not by you: refusing to use it")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise InputError(
            str(folder), "", f"mode {mode:04o} lets group or others in: refusing to use it (chmod 700 it)"
        )


def make_folder(folder: Path) -> None:
    """Create the socket's folder 0700 if missing; refuse it if it is not owner-only."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=True)
    check_folder(folder)
