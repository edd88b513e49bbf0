"""The control socket's client: the control API of a running ``cartesim emulate``."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from cartesim.emulator.catalog import is_sample_name
from cartesim.harness.control.local import SlotStatus
from cartesim.harness.control.socket import (
    MAX_LINE,
    PROTOCOL_VERSION,
    ControlError,
    NoEmulator,
    RemoteInputError,
    check_folder,
    default_socket_path,
)

CLIENT_TIMEOUT = 10.0


def _profile_arg(profile: str | Path) -> str:
    """A profile path is made absolute (the emulator's working folder is not ours); a sample name
    is sent as is."""
    text = str(profile)
    path = Path(text)
    return str(path.resolve()) if path.exists() or not is_sample_name(text) else text


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
            except BrokenPipeError:
                pass  # an emulate that refuses the connection answers, then closes: read why
            except OSError as e:
                raise ControlError(f"{self.path}: {e.strerror or e}") from None
            try:
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
