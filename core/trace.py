"""APDU tracing: one record per exchange (codes of PIN commands redacted), and the card's
power-ups and resets, as pySim's ApduTracer records them: a trace says where each card session
starts, so a replay never has to guess it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Protocol

from cartesim.core.apdu import redact_hex
from cartesim.core.errors import InputError


@dataclass(frozen=True)
class Exchange:
    time: float  # UNIX time the command was sent
    command: str  # hex, PIN data masked with '*'
    response: str  # hex, data then status word
    duration_us: int


class CardEvent(str, Enum):
    POWER_UP = "power_up"  # a transport starts a session with the card: security status is fresh
    RESET = "reset"  # the card was reset or power-cycled within a session


@dataclass(frozen=True)
class Event:
    time: float
    event: CardEvent


class Tracer(Protocol):
    def exchange(self, ex: Exchange) -> None: ...

    def card_event(self, ev: Event) -> None: ...


def make_exchange(command: bytes, response: bytes, started: float, elapsed_ns: int) -> Exchange:
    return Exchange(started, redact_hex(command), response.hex().upper(), elapsed_ns // 1000)


class JsonlTracer:
    """Writes each exchange and event as a JSON line to a file (opened by the caller)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def _write(self, record: dict[str, object]) -> None:
        try:
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()
        except OSError as e:  # a full disk, /dev/full: the first record (the power-up) fails
            name = str(getattr(self.stream, "name", "trace"))
            raise InputError(name, "", f"cannot write the trace ({e.strerror or e})") from None

    def exchange(self, ex: Exchange) -> None:
        self._write(asdict(ex))

    def card_event(self, ev: Event) -> None:
        self._write({"time": ev.time, "event": ev.event.value})


@contextmanager
def trace_file(path: Path) -> Iterator[JsonlTracer]:
    """A JsonlTracer appending to ``path``; InputError (one line) if it cannot be opened or
    written. A write that failed is not retried at close: it was reported once."""
    try:
        stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed below, quietly
    except OSError as e:
        raise InputError(str(path), "", e.strerror or str(e)) from None
    try:
        yield JsonlTracer(stream)
    finally:
        with suppress(OSError):
            stream.close()


class ListTracer(list[Exchange]):
    """Keeps exchanges in memory (tests, scenario step reports); events in ``events``."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    def exchange(self, ex: Exchange) -> None:
        self.append(ex)

    def card_event(self, ev: Event) -> None:
        self.events.append(ev)
