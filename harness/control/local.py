"""Live card control: remove, insert, swap, reset, inspect and set the cards being emulated.

One API, two implementations (both satisfy ``CardController``):

- ``LocalCardControl``: in-process, over the served slots of ``run_emulation`` (or over cards with
  no reader behind them, ``LocalCardControl.in_process``);
- ``CardControl``: a client of the control socket ``run_emulation`` serves with ``ControlServer``:
  JSON lines over a Unix socket, in an owner-only folder (0700), the socket itself 0600.

The card-level settings and status live in ``harness.card_settings`` (a bare CardOS): no PIN
or unblock code ever leaves either module, except into an owner-only state file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from cartesim.core.errors import InputError, TransportError
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.harness.control.settings import (
    CardStatus,
    card_status,
    persist,
    reset_card,
    save_card_state,
    set_card,
)

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
ENV_CONTROL = "CARTESIM_CONTROL"  # overrides the default socket path, for emulate and card alike
SOCKET_NAME = "control.sock"
INSERT_WAIT = 2.0  # insert/swap wait this long for vpcd to poll the card: pcscd then shows it
CLIENT_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0  # a client that says nothing for this long is dropped
MAX_LINE = 64 * 1024
_SUN_PATH_MAX = 107  # struct sockaddr_un.sun_path holds 108 bytes with the final NUL

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


# --- the socket's folder: owner-only, or refused -------------------------------------------------
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


# --- slots: what run_emulation serves ----------------------------------------------------------
class Reader(Protocol):
    """The reader side of a slot: VpcdCard satisfies it."""

    def remove(self) -> None: ...

    def insert(self) -> None: ...

    def wait_present(self, timeout: float | None = None) -> bool: ...


class Unplugged:
    """A slot with no reader behind it (in-process use): the card is seen as soon as inserted."""

    def __init__(self) -> None:
        self._inserted = True

    def remove(self) -> None:
        self._inserted = False

    def insert(self) -> None:
        self._inserted = True

    def wait_present(self, timeout: float | None = None) -> bool:
        return self._inserted


class SlotCard:
    """What vpcd serves in a slot. VpcdCard keeps one card object per connection, so the card is
    swapped behind this one; the lock keeps control changes out of an APDU in progress."""

    def __init__(self, card: CardOS) -> None:
        self.card = card
        self.lock = threading.Lock()

    @property
    def atr(self) -> bytes:
        with self.lock:
            return self.card.atr

    def process(self, raw: bytes) -> bytes:
        with self.lock:
            return self.card.process(raw)

    def reset(self) -> None:
        with self.lock:
            self.card.reset()


@dataclass
class Slot:
    profile: str  # a sample name or a profile path
    holder: SlotCard
    reader: Reader = field(default_factory=Unplugged)
    present: bool = True
    # Cards swapped out of this slot, by profile: swapping one back gives the same card.
    drawer: dict[str, CardOS] = field(default_factory=dict)


@dataclass(frozen=True)
class SlotStatus:
    slot: int
    profile: str
    present: bool  # in the reader, as the emulator sees it
    seen_by_reader: bool  # vpcd has polled it since its insertion: pcscd shows it
    card: CardStatus

    def to_dict(self) -> dict[str, Any]:
        head = {"slot": self.slot, "profile": self.profile, "present": self.present}
        return {**head, "seen_by_reader": self.seen_by_reader, **asdict(self.card)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlotStatus:
        names = {f.name for f in fields(CardStatus)}  # a newer emulator may say more
        card = CardStatus(**{k: v for k, v in data.items() if k in names})
        return cls(data["slot"], data["profile"], data["present"], data["seen_by_reader"], card)


class CardController(Protocol):
    """The control API, in-process (LocalCardControl) or through the socket (CardControl)."""

    def status(self, slot: int) -> SlotStatus: ...

    def status_all(self) -> list[SlotStatus]: ...

    def remove(self, slot: int) -> SlotStatus: ...

    def insert(self, slot: int) -> SlotStatus: ...

    def swap(self, slot: int, profile: str | Path) -> SlotStatus: ...

    def reset(self, slot: int) -> SlotStatus: ...

    def set(self, slot: int, *settings: str) -> SlotStatus: ...

    def save_state(self, slot: int, path: str | Path) -> Path: ...


MakeCard = Callable[[int, str], CardOS]


class LocalCardControl:
    """The control API over served slots. ``make_card(slot, profile)`` builds a card for ``swap``
    (run_emulation binds it to its --state file)."""

    def __init__(
        self, slots: Sequence[Slot], make_card: MakeCard | None = None, *, insert_wait: float = INSERT_WAIT
    ) -> None:
        self.slots = list(slots)
        self._make: MakeCard = make_card or (lambda _slot, profile: load_card(profile))
        self.insert_wait = insert_wait
        self._ops = threading.Lock()  # one control operation at a time, whatever the client

    @classmethod
    def in_process(cls, profiles: Sequence[str]) -> LocalCardControl:
        """Cards with no reader behind them: for tests and scripts that need no PC/SC."""
        return cls([Slot(p, SlotCard(load_card(p))) for p in profiles])

    def _slot(self, slot: int) -> Slot:
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < len(self.slots):
            raise InputError("slot", str(slot), f"no such slot (slots 0 to {len(self.slots) - 1})")
        return self.slots[slot]

    def _status(self, index: int) -> SlotStatus:
        s = self.slots[index]
        with s.holder.lock:
            card = card_status(s.holder.card)
        seen = s.present and s.reader.wait_present(0)
        return SlotStatus(index, s.profile, s.present, seen, card)

    def _put_in(self, s: Slot) -> None:
        s.reader.insert()
        s.present = True
        s.reader.wait_present(self.insert_wait)  # not there in time: status says so, no error

    def status(self, slot: int) -> SlotStatus:
        self._slot(slot)
        return self._status(slot)

    def status_all(self) -> list[SlotStatus]:
        return [self._status(i) for i in range(len(self.slots))]

    def remove(self, slot: int) -> SlotStatus:
        with self._ops:
            s = self._slot(slot)
            s.reader.remove()
            s.present = False
            log.info("slot %d: card removed", slot)
            return self._status(slot)

    def insert(self, slot: int) -> SlotStatus:
        with self._ops:
            s = self._slot(slot)
            # Even when we think it is in: a fault from the profile may have pulled it out.
            self._put_in(s)
            log.info("slot %d: card inserted", slot)
            return self._status(slot)

    def swap(self, slot: int, profile: str | Path) -> SlotStatus:
        """Take the slot's card out, put the card of ``profile`` in (it ends up inserted)."""
        name = str(profile)
        with self._ops:
            s = self._slot(slot)
            if name == s.profile:
                new = s.holder.card  # the same card, taken out and put back
            else:
                new = s.drawer[name] if name in s.drawer else self._make(slot, name)  # bad: no change
                s.drawer.pop(name, None)
            if s.present:
                s.reader.remove()
                s.present = False
                if new.atr != s.holder.card.atr:
                    _wait_removal_seen(slot, s.reader)
            with s.holder.lock:
                old, s.holder.card = s.holder.card, new
                new.reset()
            if new is not old:
                persist(old)  # its state file, if any, holds the card as it left the slot
                s.drawer[s.profile] = old
            s.profile = name
            self._put_in(s)
            log.info("slot %d: %s swapped in", slot, name)
            return self._status(slot)

    def reset(self, slot: int) -> SlotStatus:
        with self._ops:
            s = self._slot(slot)
            with s.holder.lock:
                reset_card(s.holder.card, s.profile)
            log.info("slot %d: card reset to its profile", slot)
            return self._status(slot)

    def set(self, slot: int, *settings: str) -> SlotStatus:
        with self._ops:
            s = self._slot(slot)
            with s.holder.lock:
                set_card(s.holder.card, settings)
            log.info("slot %d: set %s", slot, " ".join(settings))
            return self._status(slot)

    def save_state(self, slot: int, path: str | Path) -> Path:
        with self._ops:
            s = self._slot(slot)
            with s.holder.lock:
                return save_card_state(s.holder.card, Path(path))


REMOVAL_SEEN_TIMEOUT = 2.0  # seconds: pcscd polls a vpcd slot about every 400 ms


def _wait_removal_seen(slot: int, reader: Reader) -> None:
    """Wait until pcscd has seen the card leave: a card of another kind put back before pcscd's
    next poll would be taken for the old one, old ATR included (seen in test_control_pcsc)."""
    if isinstance(reader, Unplugged):
        return
    try:
        from cartesim.core.transport.pcsc import wait_reader
        from cartesim.harness.stack.pcscd import vpcd_reader

        if wait_reader(vpcd_reader(slot), present=False, timeout=REMOVAL_SEEN_TIMEOUT) is not None:
            return
    except (ImportError, TransportError):
        pass  # no PC/SC here (a remote vpcd): give pcscd two polls
    time.sleep(2 * 0.4)


# --- the protocol ------------------------------------------------------------------------------
def _arg(request: dict[str, Any], key: str, kind: type) -> Any:
    value = request.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError("request", key, f"missing or not a {kind.__name__}")
    return value


def _dispatch(control: LocalCardControl, request: object) -> Any:
    if not isinstance(request, dict):
        raise InputError("request", "", "not a JSON object")
    if request.get("v") != PROTOCOL_VERSION:
        raise InputError("request", "v", f"protocol version {PROTOCOL_VERSION} expected")
    op = request.get("op")
    if op not in OPS:
        raise InputError("request", "op", f"unknown operation (operations: {', '.join(OPS)})")
    if op == "status" and request.get("slot") is None:
        return [s.to_dict() for s in control.status_all()]
    slot = _arg(request, "slot", int)
    if op == "status":
        return control.status(slot).to_dict()
    if op == "remove":
        return control.remove(slot).to_dict()
    if op == "insert":
        return control.insert(slot).to_dict()
    if op == "reset":
        return control.reset(slot).to_dict()
    if op == "swap":
        return control.swap(slot, _arg(request, "profile", str)).to_dict()
    if op == "set":
        settings = _arg(request, "settings", list)
        if not all(isinstance(x, str) for x in settings):
            raise InputError("request", "settings", "not a list of strings")
        return control.set(slot, *settings).to_dict()
    path = Path(_arg(request, "file", str))
    if not path.is_absolute():  # the emulator's working folder is not the client's
        raise InputError(str(path), "", "an absolute path is needed")
    return {"file": str(control.save_state(slot, path))}


def handle(control: LocalCardControl, line: bytes) -> dict[str, Any]:
    """One request line, one reply; never raises."""
    try:
        result = _dispatch(control, json.loads(line))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"ok": False, "kind": "input", "error": "request: not a JSON line"}
    except InputError as e:
        return {"ok": False, "kind": "input", "error": str(e)}
    except Exception:
        log.exception("control request failed")
        return {"ok": False, "kind": "internal", "error": "internal error in cartesim emulate (see its log)"}
    return {"ok": True, "result": result}


_PEERCRED: int | None = getattr(socket, "SO_PEERCRED", None)
_UCRED = struct.Struct("3i")  # pid, uid, gid


def _peer_uid(conn: socket.socket) -> int | None:
    if _PEERCRED is None:
        return None
    return _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, _PEERCRED, _UCRED.size))[1]


class ControlServer:
    """Serves ``control`` on a Unix socket: one thread accepting, one thread per client."""

    def __init__(self, control: LocalCardControl, path: Path) -> None:
        self.control, self.path = control, path
        self._sock: socket.socket | None = None
        self._ino: int | None = None
        self._thread: threading.Thread | None = None

    def _clear_stale(self) -> None:
        try:
            st = self.path.lstat()
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise InputError(str(self.path), "", "exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.path))
        except (ConnectionRefusedError, FileNotFoundError):
            self.path.unlink(missing_ok=True)  # left by an emulate that died: nobody listens
            return
        finally:
            probe.close()
        raise InputError(str(self.path), "", "another cartesim emulate listens on it (use --control)")

    def start(self) -> ControlServer:
        if len(os.fsencode(self.path)) > _SUN_PATH_MAX:
            raise InputError(
                str(self.path), "", f"longer than the {_SUN_PATH_MAX} bytes a socket path allows"
            )
        make_folder(self.path.parent)
        self._clear_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            # The 0700 folder already keeps others out; 0600 holds even if the folder is opened.
            os.chmod(self.path, 0o600)
            sock.listen(8)
        except OSError as e:
            sock.close()
            raise InputError(str(self.path), "", e.strerror or str(e)) from None
        self._sock, self._ino = sock, self.path.stat().st_ino
        self._thread = threading.Thread(target=self._accept, name="cartesim-control", daemon=True)
        self._thread.start()
        log.info("control socket %s", self.path)
        return self

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes accept() up (EINVAL on Linux)
        sock.close()
        if self._thread is not None:
            self._thread.join(5.0)
        with contextlib.suppress(OSError):
            if self.path.lstat().st_ino == self._ino:  # ours, not a newer emulate's
                self.path.unlink()

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(
                target=self._client, args=(conn,), name="cartesim-control-client", daemon=True
            ).start()

    def _client(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            uid = _peer_uid(conn)
            if uid is not None and uid not in (os.geteuid(), 0):
                conn.sendall(b'{"ok": false, "kind": "input", "error": "not your emulator"}\n')
                return
            conn.settimeout(IDLE_TIMEOUT)
            stream = conn.makefile("rwb")
            while True:
                line = stream.readline(MAX_LINE + 1)
                if not line:
                    return
                if len(line) > MAX_LINE:
                    stream.write(b'{"ok": false, "kind": "input", "error": "request: line too long"}\n')
                    stream.flush()
                    return
                stream.write(json.dumps(handle(self.control, line)).encode() + b"\n")
                stream.flush()


# --- the client --------------------------------------------------------------------------------
def _profile_arg(profile: str | Path) -> str:
    """A profile path is made absolute (the emulator's working folder is not ours); a sample name
    is sent as is."""
    text = str(profile)
    path = Path(text)
    if path.exists() or path.suffix or "/" in text:
        return str(path.resolve())
    return text


class CardControl:
    """The control API of a running ``cartesim emulate``, through its control socket."""

    def __init__(self, path: str | Path | None = None, *, timeout: float = CLIENT_TIMEOUT) -> None:
        self.path = Path(path) if path is not None else default_socket_path()
        self.timeout = timeout

    def _absent(self) -> NoEmulator:
        return NoEmulator(f"Aucun cartesim emulate n'écoute sur {self.path}")

    def _call(self, op: str, **args: Any) -> Any:
        try:
            check_folder(self.path.parent)
        except FileNotFoundError:
            raise self._absent() from None
        request = json.dumps({"v": PROTOCOL_VERSION, "op": op, **args}).encode() + b"\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            try:
                sock.connect(str(self.path))
            except (FileNotFoundError, ConnectionRefusedError):
                raise self._absent() from None
            except OSError as e:
                raise ControlError(f"{self.path}: {e.strerror or e}") from None
            try:
                sock.sendall(request)
                line = sock.makefile("rb").readline(MAX_LINE + 1)
            except OSError as e:
                raise ControlError(f"{self.path}: {e.strerror or e}") from None
        try:
            reply = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ControlError(f"{self.path}: no valid answer from cartesim emulate") from None
        if not isinstance(reply, dict):
            raise ControlError(f"{self.path}: no valid answer from cartesim emulate")
        if reply.get("ok"):
            return reply.get("result")
        if reply.get("kind") == "input":
            raise RemoteInputError(str(reply.get("error")))
        raise ControlError(str(reply.get("error")))

    def _slot_op(self, op: str, slot: int, **args: Any) -> SlotStatus:
        return SlotStatus.from_dict(self._call(op, slot=slot, **args))

    def status(self, slot: int) -> SlotStatus:
        return self._slot_op("status", slot)

    def status_all(self) -> list[SlotStatus]:
        return [SlotStatus.from_dict(d) for d in self._call("status")]

    def remove(self, slot: int) -> SlotStatus:
        return self._slot_op("remove", slot)

    def insert(self, slot: int) -> SlotStatus:
        return self._slot_op("insert", slot)

    def swap(self, slot: int, profile: str | Path) -> SlotStatus:
        return self._slot_op("swap", slot, profile=_profile_arg(profile))

    def reset(self, slot: int) -> SlotStatus:
        return self._slot_op("reset", slot)

    def set(self, slot: int, *settings: str) -> SlotStatus:
        return self._slot_op("set", slot, settings=list(settings))

    def save_state(self, slot: int, path: str | Path) -> Path:
        return Path(self._call("save-state", slot=slot, file=str(Path(path).absolute()))["file"])
