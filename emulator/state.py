"""A card's mutable state (codes, counters) in its own JSON file, written atomically.

The YAML profile is never rewritten: it is the card as issued. The state file is the card as it
is now; a missing file means a fresh card.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cartesim.core import pins
from cartesim.core.errors import InputError
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.validation import one_line

FORMAT = "cartesim-state/1"


class _PinState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=pins.PIN_PATTERN)
    tries_left: int = Field(ge=0, le=15)


class _UnblockState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tries_left: int = Field(ge=0, le=15)
    uses_left: int = Field(ge=0, le=255)


class _StateFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str = Field(pattern=f"^{FORMAT}$")
    atr: str
    pin: _PinState | None = None
    unblock: _UnblockState | None = None


def snapshot(card: CardOS) -> dict[str, Any]:
    out: dict[str, Any] = {"format": FORMAT, "atr": card.atr.hex().upper()}
    if card.pin:
        out["pin"] = {"code": card.pin.code, "tries_left": card.pin.tries_left}
    if card.unblock:
        out["unblock"] = {"tries_left": card.unblock.tries_left, "uses_left": card.unblock.uses_left}
    return out


def apply(card: CardOS, data: object, source: str) -> None:
    """Put a saved state into ``card``; InputError if it does not fit this card."""
    try:
        state = _StateFile.model_validate(data)
    except ValidationError as e:
        raise one_line(e, source) from None
    if state.atr != card.atr.hex().upper():
        raise InputError(source, "atr", "this state file belongs to another kind of card")
    if (state.pin is None) != (card.pin is None) or (state.unblock is None) != (card.unblock is None):
        raise InputError(source, "pin", "this state file belongs to another kind of card")
    if card.pin and state.pin:
        if state.pin.tries_left > card.pin.tries_max:
            raise InputError(source, "pin.tries_left", "greater than the profile's tries_max")
        card.pin.code, card.pin.tries_left = state.pin.code, state.pin.tries_left
    if card.unblock and state.unblock:
        u = card.unblock
        if state.unblock.tries_left > u.tries_max:
            raise InputError(source, "unblock.tries_left", "greater than the profile's tries_max")
        if state.unblock.uses_left > u.uses_max:
            raise InputError(source, "unblock.uses_left", "greater than the profile's uses_max")
        u.tries_left, u.uses_left = state.unblock.tries_left, state.unblock.uses_left


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
    write_atomic(path, (json.dumps(snapshot(card), indent=2) + "\n").encode())


def load(card: CardOS, path: Path) -> bool:
    """Apply the state saved at ``path`` if it exists; return whether it did."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise InputError(str(path), "", e.strerror or str(e)) from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(str(path), "", f"not a cartesim state file ({e})") from None
    apply(card, data, str(path))
    return True


def bind(card: CardOS, path: Path) -> None:
    """Load ``path`` into the card if present, and save every change to it from now on."""
    if not path.parent.is_dir():
        raise InputError(str(path), "", "its folder does not exist")
    load(card, path)
    card.on_persist = lambda: save(card, path)
