"""A card's mutable state (codes, counters) in its own JSON file: the state file is the card.

The YAML profile is never rewritten: it is the card as issued. The state file is the card as it
is now; a missing file means a fresh card. A state file names the card it belongs to (kind,
serial, and a digest of the issued profile) and is refused for any other card.

Every command that reads or changes codes or counters runs in a *session* of the card: an
exclusive lock on the card (``flock`` on ``FILE.lock``), the file re-read inside it, the command
applied, every change written atomically (temp file, fsync, rename, fsync of the folder) before
the card answers, then the lock released. A CLI command is one session; ``cartesim emulate`` makes
each APDU and each live-control operation one. Whatever processes share a state file, the outcome
is one that some serial order of their commands gives, and no process ever writes counters older
than the file's: a card that holds no session re-reads the file before anything else.

Why ``fcntl.flock`` rather than the ``filelock`` library: it is in the standard library, the
kernel releases it when its holder dies (a ``kill -9`` mid-command leaves no stale lock to clean
up), and two descriptors of one process exclude each other, so the threads of ``emulate`` (one per
slot, one for live control) and other processes are kept apart by one mechanism. ``filelock`` is
a wrapper around the same call on Linux; it would add a dependency and nothing else we need. The
lock file is never deleted: deleting it would let a waiting process lock a file nobody else sees.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cartesim.core import pins, strict_json
from cartesim.core.apdu import ApduCard
from cartesim.core.errors import InputError
from cartesim.core.sw import SW
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.files import open_file, read_file
from cartesim.emulator.validation import one_line

if TYPE_CHECKING:
    from cartesim.emulator.profile import CpsProfile, VitaleProfile

log = logging.getLogger(__name__)

FORMAT = "cartesim-state/2"
MAX_BYTES = 64 * 1024  # a state file is a few hundred bytes
_MAX_DIGITS = 9  # no number in a state file is longer


# --- the card's identity ---------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """The card a state file belongs to: its kind, its serial, and a digest of the profile it
    was issued from (codes included: a state made on another card of the same serial is refused)."""

    type: str
    serial: str
    profile_sha256: str


def identity(profile: CpsProfile | VitaleProfile) -> Identity:
    # The description and the faults do not make another card; unset defaults do not either, so
    # a profile keeps its identity when a later cartesim adds a field with a default.
    issued = profile.model_dump(mode="json", exclude={"description", "faults"}, exclude_defaults=True)
    canonical = json.dumps(issued, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return Identity(profile.kind.value, profile.serial, hashlib.sha256(canonical.encode()).hexdigest())


# Each card built from a profile, and its identity: a card object carries no field for it.
_ISSUED: weakref.WeakKeyDictionary[CardOS, Identity] = weakref.WeakKeyDictionary()


def register(card: CardOS, ident: Identity) -> None:
    _ISSUED[card] = ident


def identity_of(card: CardOS) -> Identity:
    try:
        return _ISSUED[card]
    except KeyError:
        raise InputError("card", "", "built without a profile: it cannot have a state file") from None


# --- the file format -------------------------------------------------------------------------
class _Strict(BaseModel):
    # A count is a whole number: true, "3" and 3.0 are refused.
    model_config = ConfigDict(extra="forbid", strict=True)


class _CardId(_Strict):
    type: str
    serial: str
    profile_sha256: str = Field(pattern="^[0-9a-f]{64}$")


class _PinState(_Strict):
    code: str = Field(pattern=pins.PIN_PATTERN)
    tries_left: int = Field(ge=0, le=15)


class _UnblockState(_Strict):
    tries_left: int = Field(ge=0, le=15)
    uses_left: int = Field(ge=0, le=255)


class _StateFile(_Strict):
    format: Literal["cartesim-state/2"]
    card: _CardId
    pin: _PinState | None = None
    unblock: _UnblockState | None = None


def snapshot(card: CardOS) -> dict[str, Any]:
    ident = identity_of(card)
    out: dict[str, Any] = {
        "format": FORMAT,
        "card": {"type": ident.type, "serial": ident.serial, "profile_sha256": ident.profile_sha256},
    }
    if card.pin:
        out["pin"] = {"code": card.pin.code, "tries_left": card.pin.tries_left}
    if card.unblock:
        out["unblock"] = {"tries_left": card.unblock.tries_left, "uses_left": card.unblock.uses_left}
    return out


def encode(card: CardOS) -> bytes:
    return (json.dumps(snapshot(card), indent=2) + "\n").encode()


def parse(raw: bytes, source: str) -> object:
    """The JSON of a state file; InputError (one line, no value echoed) if it is not JSON."""
    try:
        return strict_json.loads(raw, max_digits=_MAX_DIGITS)
    except strict_json.BadJson as e:
        raise InputError(source, "", f"not a cartesim state file ({e.problem})") from None


def apply(card: CardOS, data: object, source: str) -> None:
    """Put a saved state into ``card``; InputError if it does not fit this card. Nothing is
    changed unless everything fits."""
    if isinstance(data, dict) and data.get("format") == "cartesim-state/1":
        raise InputError(source, "format", "cartesim-state/1 names no card: delete it to start afresh")
    try:
        state = _StateFile.model_validate(data)
    except ValidationError as e:
        raise one_line(e, source) from None
    ident, saved = identity_of(card), state.card
    if saved.type != ident.type:
        raise InputError(
            source, "card.type", f"this state file is a {saved.type} card's, not a {ident.type}'s"
        )
    if saved.serial != ident.serial:
        raise InputError(
            source, "card.serial", f"this state file belongs to card {saved.serial}, not to {ident.serial}"
        )
    if saved.profile_sha256 != ident.profile_sha256:
        raise InputError(
            source,
            "card.profile_sha256",
            "this state file belongs to another card (issued from another profile): delete it to start afresh",
        )
    for code in ("pin", "unblock"):
        if (getattr(state, code) is None) != (getattr(card, code) is None):
            raise InputError(source, code, "this state file belongs to another kind of card")
    if card.pin and state.pin and state.pin.tries_left > card.pin.tries_max:
        raise InputError(source, "pin.tries_left", "greater than the profile's tries_max")
    if card.unblock and state.unblock:
        if state.unblock.tries_left > card.unblock.tries_max:
            raise InputError(source, "unblock.tries_left", "greater than the profile's tries_max")
        if state.unblock.uses_left > card.unblock.uses_max:
            raise InputError(source, "unblock.uses_left", "greater than the profile's uses_max")
    if card.pin and state.pin:
        card.pin.code, card.pin.tries_left = state.pin.code, state.pin.tries_left
    if card.unblock and state.unblock:
        card.unblock.tries_left, card.unblock.uses_left = state.unblock.tries_left, state.unblock.uses_left


# --- files -----------------------------------------------------------------------------------
def write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename, fsync the folder: old or new, never half."""
    folder = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, 0o600)  # the state holds the current PIN
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save(card: CardOS, path: Path) -> None:
    """A copy of the card's state at ``path`` (``card save-state``): atomic, owner-only."""
    try:
        write_atomic(path, encode(card))
    except OSError as e:
        raise InputError(str(path), "", e.strerror or str(e)) from None


def load(card: CardOS, path: Path) -> bool:
    """Apply the state saved at ``path`` if it exists; return whether it did. For saved states
    that are read, never written (``replay --state``, ``emulate --state-file``, scenarios): a
    regular file, bounded; the card's own state file goes through ``bind``."""
    try:
        raw = read_file(path, MAX_BYTES)
    except FileNotFoundError:
        return False
    apply(card, parse(raw, str(path)), str(path))
    return True


# --- the card bound to its state file --------------------------------------------------------
class _Unwritten(BaseException):
    """A change the card could not write. A BaseException so that the card OS's catch-all does
    not turn it into a 6F00 answer: the session turns it into an InputError."""

    def __init__(self, error: InputError) -> None:
        super().__init__(str(error))
        self.error = error


def _pin_values(card: CardOS) -> tuple[str, int] | None:
    return (card.pin.code, card.pin.tries_left) if card.pin else None


class Binding:
    """A card bound to its state file: its sessions, and the persist hook its card OS calls."""

    def __init__(self, card: CardOS, path: Path) -> None:
        self.card, self.path = card, path
        self.source = str(path)
        self.lock_path = path.with_name(path.name + ".lock")
        # The card as issued: what a state file that disappears goes back to.
        self._issued = (
            _pin_values(card),
            (card.unblock.tries_left, card.unblock.uses_left) if card.unblock else None,
        )
        self._synced: bytes | None = None  # the file's bytes as last read or written; None: no file
        self._mutex = threading.RLock()  # the threads of one process: one session at a time
        self._depth = 0

    # The lock --------------------------------------------------------------------------------
    def _lock(self) -> int:
        while True:
            try:
                fd = open_file(self.lock_path, os.O_RDWR | os.O_CREAT, private=True)
            except FileNotFoundError as e:  # a folder where no file can be created (/proc)
                raise InputError(
                    self.source, "", f"cannot lock it: {self.lock_path.name}: {e.strerror}"
                ) from None
            except InputError as e:
                raise InputError(
                    self.source, "", f"cannot lock it: {self.lock_path.name}: {e.problem}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                here = os.stat(self.lock_path, follow_symlinks=False)
                held = os.fstat(fd)
            except OSError as e:
                os.close(fd)
                if isinstance(e, FileNotFoundError):
                    continue  # the lock file was deleted while we waited: lock the new one
                raise InputError(self.source, "", f"cannot lock it: {e.strerror}") from None
            if (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino):
                return fd
            os.close(fd)  # replaced while we waited: the lock that counts is the file there now

    # Sessions --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        with self._mutex:
            if self._depth:  # nested in this thread's session: already locked and fresh
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            fd = self._lock()
            self._depth = 1
            try:
                self._refresh()
                yield
            except _Unwritten as e:
                raise e.error from None
            finally:
                self._depth = 0
                os.close(fd)  # releases the lock

    def _read(self) -> bytes | None:
        try:
            return read_file(self.path, MAX_BYTES, private=True)
        except FileNotFoundError:
            return None

    def _refresh(self) -> None:
        """Make the card what its file says (the lock is held)."""
        raw = self._read()
        if raw == self._synced:
            return
        before = _pin_values(self.card)
        if raw is None:  # deleted: a fresh card
            pin, unblock = self._issued
            if self.card.pin and pin:
                self.card.pin.code, self.card.pin.tries_left = pin
            if self.card.unblock and unblock:
                self.card.unblock.tries_left, self.card.unblock.uses_left = unblock
        else:
            apply(self.card, parse(raw, self.source), self.source)
        if self.card.pin and _pin_values(self.card) != before:
            # Another process used the card meanwhile: as on a card shared between two
            # applications, a verification it made fail, or a changed code, ends ours.
            self.card.pin.verified = False
        self._synced = raw

    def _write(self) -> None:
        data = encode(self.card)
        try:
            write_atomic(self.path, data)
        except OSError as e:
            raise _Unwritten(InputError(self.source, "", f"cannot write it ({e.strerror or e})")) from None
        self._synced = data

    # The card OS's persist hook --------------------------------------------------------------
    def __call__(self) -> None:
        """Write the card's codes and counters, before its answer leaves. In a session: at once.
        Outside (a caller that took none): only if the file is still what this card last read
        or wrote; a newer file is never overwritten (InputError: the card OS answers 6F00)."""
        with self._mutex:
            if self._depth:
                self._write()
                return
            fd = self._lock()
            try:
                if self._read() != self._synced:
                    raise InputError(self.source, "", "changed by another process meanwhile: not overwritten")
                self._write()
            except _Unwritten as e:
                raise e.error from None
            finally:
                os.close(fd)

    def flush(self) -> None:
        """In a session: a card whose file is missing writes it (emulate's last save). A file
        that exists is the card's latest state: it is never overwritten with an older one."""
        with self.session():
            if self._synced is None:
                self._write()


def binding(card: object) -> Binding | None:
    hook = getattr(card, "on_persist", None)
    return hook if isinstance(hook, Binding) else None


def bind(card: CardOS, path: Path) -> Binding:
    """Bind the card to its state file: load it if present (in a session), and write every change
    to it from now on. The file is checked first, without the lock: a file that is refused
    leaves no lock file behind."""
    if not path.parent.is_dir():
        raise InputError(str(path), "", "its folder does not exist")
    bound = Binding(card, path)
    raw = bound._read()
    if raw is not None:
        apply(card, parse(raw, str(path)), str(path))  # all or nothing; the session reads again
    card.on_persist = bound
    with bound.session():
        pass
    return bound


def session(card: object) -> contextlib.AbstractContextManager[None]:
    """The card's session (lock held, card fresh from its file); nothing for an unbound card."""
    bound = binding(card)
    return bound.session() if bound is not None else contextlib.nullcontext()


def serve(card: ApduCard, raw: bytes) -> bytes:
    """One APDU as a card in a reader answers it: in its own session. A state file that cannot be
    used is logged in one line, and the card answers 6581 (memory failure), as a card whose
    EEPROM write fails does: no code is compared without its try being recorded."""
    bound = binding(card)
    if bound is None:
        return card.process(raw)
    try:
        with bound.session():
            return card.process(raw)
    except (InputError, _Unwritten) as e:
        log.error("%s", e)
        return int(SW.MEMORY_FAILURE).to_bytes(2, "big")


def flush(card: object) -> None:
    """``Binding.flush`` for a bound card; nothing for another."""
    bound = binding(card)
    if bound is not None:
        bound.flush()


def adopt(card: CardOS, saved: Path) -> None:
    """Start the card from a saved state (read, never written); its own state file, if bound,
    takes it at once."""
    with session(card):
        if not load(card, saved):
            raise InputError(str(saved), "", "no such file")
        bound = binding(card)
        if bound is not None:
            bound._write()
