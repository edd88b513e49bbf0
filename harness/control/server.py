"""The control socket's server, run by ``cartesim emulate``: one request, one reply, never raises."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import struct
import threading
from pathlib import Path
from typing import Any

from cartesim.core import strict_json
from cartesim.core.errors import InputError
from cartesim.harness.control.local import LocalCardControl
from cartesim.harness.control.socket import MAX_LINE, OPS, PROTOCOL_VERSION, make_folder

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 60.0  # a client that says nothing for this long is dropped
# Connections served at once (one thread each); more are refused at once, with a reason. `card`
# makes one connection per command: a handful at most in real use.
MAX_CLIENTS = 16
MAX_TEXT = 4096  # a path, a profile name or a setting
MAX_SETTINGS = 32
_MAX_DIGITS = 9  # no number in a request is longer (a slot is 0 or 1)
_SUN_PATH_MAX = 107  # struct sockaddr_un.sun_path holds 108 bytes with the final NUL
_BUSY = {
    "ok": False,
    "kind": "busy",
    "error": f"cartesim emulate serves {MAX_CLIENTS} control connections at most: "
    "this one is refused, try again when one closes",
}


def _arg(request: dict[str, Any], key: str, kind: type) -> Any:
    value = request.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError("request", key, f"missing or not a {kind.__name__}")
    return value


def _text(value: object, key: str) -> str:
    """A string a request may carry: bounded, valid UTF-8, no control character (NUL included).
    Paths and names reach the file system and the log: anything else is refused here."""
    if not isinstance(value, str):
        raise InputError("request", key, "missing or not a string")
    if len(value) > MAX_TEXT:
        raise InputError("request", key, f"longer than {MAX_TEXT} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("request", key, "not valid text (a lone surrogate)") from None
    if any(ch < " " or ch == "\x7f" for ch in value):
        raise InputError("request", key, "holds a control character (NUL included)")
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
        return control.swap(slot, _text(request.get("profile"), "profile")).to_dict()
    if op == "set":
        settings = _arg(request, "settings", list)
        if len(settings) > MAX_SETTINGS:
            raise InputError("request", "settings", f"more than {MAX_SETTINGS}")
        return control.set(slot, *(_text(x, "settings") for x in settings)).to_dict()
    path = Path(_text(request.get("file"), "file"))
    if not path.is_absolute():  # the emulator's working folder is not the client's
        raise InputError(str(path), "", "an absolute path is needed")
    return {"file": str(control.save_state(slot, path))}


def handle(control: LocalCardControl, line: bytes) -> dict[str, Any]:
    """One request line, one reply; never raises."""
    try:
        request = strict_json.loads(line, max_digits=_MAX_DIGITS)
    except strict_json.BadJson as e:
        problem = "not a JSON line" if e.syntax else e.problem
        return {"ok": False, "kind": "input", "error": f"request: {problem}"}
    try:
        result = _dispatch(control, request)
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
    """Serves ``control`` on a Unix socket: one thread accepting, one thread per client, at most
    ``MAX_CLIENTS`` clients at once."""

    def __init__(self, control: LocalCardControl, path: Path) -> None:
        self.control, self.path = control, path
        self._clients = threading.BoundedSemaphore(MAX_CLIENTS)
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
            if not self._clients.acquire(blocking=False):
                with conn, contextlib.suppress(OSError):
                    conn.settimeout(1.0)
                    conn.sendall(json.dumps(_BUSY).encode() + b"\n")
                continue
            threading.Thread(
                target=self._client, args=(conn,), name="cartesim-control-client", daemon=True
            ).start()

    def _client(self, conn: socket.socket) -> None:
        try:
            self._serve(conn)
        finally:
            self._clients.release()

    def _serve(self, conn: socket.socket) -> None:
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
