"""APDU tracing: one record per exchange, with the codes of PIN commands redacted."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import IO

from cartesim.core.apdu import redact_hex


@dataclass(frozen=True)
class Exchange:
    time: float  # UNIX time the command was sent
    command: str  # hex, PIN data masked with '*'
    response: str  # hex, data then status word
    duration_us: int


Tracer = Callable[[Exchange], None]


def make_exchange(command: bytes, response: bytes, started: float, elapsed_ns: int) -> Exchange:
    return Exchange(started, redact_hex(command), response.hex().upper(), elapsed_ns // 1000)


class JsonlTracer:
    """Writes each exchange as a JSON line to a file (opened by the caller)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, ex: Exchange) -> None:
        self.stream.write(json.dumps(asdict(ex)) + "\n")
        self.stream.flush()


class ListTracer(list[Exchange]):
    """Keeps exchanges in memory (tests, scenario step reports)."""

    def __call__(self, ex: Exchange) -> None:
        self.append(ex)


def now() -> float:
    return time.time()
