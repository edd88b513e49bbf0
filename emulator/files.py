"""Reading untrusted files: regular files only, bounded in size, and for private files (state files)
no symbolic link, owned by the user and writable by nobody else.

A FIFO or a device given as a profile, a state file or a trace would hang the reader or never
end: it is refused before a byte is read (opened non-blocking, then ``fstat`` on the open file, so
what is checked is what is read).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from cartesim.core.errors import InputError


def _refuse_unsafe(st: os.stat_result, source: str) -> None:
    """A private file must be the user's own and writable by no one else: anyone who can write it
    can set the card's codes and counters."""
    if st.st_uid != os.geteuid():
        raise InputError(source, "", f"owned by uid {st.st_uid}, not by you: refusing it")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        raise InputError(
            source, "", f"mode {mode:04o} lets group or others write it: refusing it (chmod 600)"
        )


def check_private(fd: int, source: str) -> os.stat_result:
    """``fd`` is a regular file, the user's own, writable by no one else; its stat."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(source, "", "not a regular file (FIFOs, devices and folders are refused)")
    _refuse_unsafe(st, source)
    return st


def open_file(path: Path | str, flags: int, *, private: bool, mode: int = 0o600) -> int:
    """``os.open`` for input files: never blocks on a FIFO; ``private``: no symbolic link, then the
    ownership and mode checks of ``check_private``. FileNotFoundError passes through."""
    source = str(path)
    flags |= os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOFOLLOW if private else 0)
    try:
        fd = os.open(path, flags, mode)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno == errno.ELOOP and private:
            raise InputError(source, "", "a symbolic link: refused (give the file itself)") from None
        if e.errno == errno.ENXIO:  # a FIFO opened for writing with no reader
            raise InputError(
                source, "", "not a regular file (FIFOs, devices and folders are refused)"
            ) from None
        raise InputError(source, "", e.strerror or str(e)) from None
    try:
        if private:
            check_private(fd, source)
        elif not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(source, "", "not a regular file (FIFOs, devices and folders are refused)")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_file(path: Path | str, limit: int, *, private: bool = False) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes; InputError (one line)
    otherwise. FileNotFoundError passes through: a missing file means something to some callers."""
    fd = open_file(path, os.O_RDONLY, private=private)
    try:
        if os.fstat(fd).st_size > limit:
            raise InputError(str(path), "", f"file larger than {_size(limit)}")
        chunks, total = [], 0
        while total <= limit:  # the size may grow while it is read: never more than limit + 1
            chunk = os.read(fd, min(1 << 16, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as e:
        raise InputError(str(path), "", e.strerror or str(e)) from None
    finally:
        os.close(fd)
    if total > limit:
        raise InputError(str(path), "", f"file larger than {_size(limit)}")
    return b"".join(chunks)


def _size(n: int) -> str:
    return f"{n // 1024} KiB"
