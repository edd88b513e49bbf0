"""The transport interface: the engine's only view of a card, whatever carries the APDUs.

The T=0 rules (61xx → GET RESPONSE, 6Cxx → resend with Le) are applied here, once, for every
transport.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from cartesim.core.apdu import INS_GET_RESPONSE, CommandApdu, ResponseApdu
from cartesim.core.atr import CardKind, detect
from cartesim.core.errors import CardDataError, TransportError, WrongCard
from cartesim.core.sw import SW1_MORE_DATA, SW1_WRONG_LE
from cartesim.core.trace import CardEvent, Event, Tracer, make_exchange

_T = TypeVar("_T", bound="Transport")

MAX_T0_ROUNDS = 64  # a card that keeps answering 61xx/6Cxx is broken, not chatty


class Transport(ABC):
    """Carries raw APDUs to one card."""

    def __init__(self) -> None:
        self.tracers: list[Tracer] = []
        self.apdu_count = 0  # APDUs sent so far: errors name the one that failed
        self._operation: str | None = None
        self._in_session = False  # the first exchange starts a card session (traced power-up)

    @property
    @abstractmethod
    def atr(self) -> bytes:
        """The ATR of the card now in the reader."""

    @abstractmethod
    def _exchange(self, command: bytes) -> bytes:
        """Send one raw command, return the raw response (data‖SW)."""

    @abstractmethod
    def _power_cycle(self) -> None:
        """Power the card off and on."""

    def power_cycle(self) -> None:
        """Power the card off and on (security status is lost, counters are not)."""
        self._power_cycle()
        self._trace_event(CardEvent.RESET)

    def _trace_event(self, event: CardEvent) -> None:
        """Tell the tracers the card was reset (``RESET``), or that the next exchange opens a new
        session (``POWER_UP``, traced with that exchange)."""
        if event is CardEvent.POWER_UP:
            self._in_session = False
            return
        ev = Event(time.time(), event)
        for tracer in self.tracers:
            tracer.card_event(ev)

    def expect_kind(self, kind: CardKind) -> None:
        """Refuse a card whose ATR says it is of another kind: WrongCard, naming what it is.

        An ATR the table does not know passes (a card generation it lacks may still be one), and
        so does an empty reader: the first command then says so, naming its APDU."""
        try:
            atr = self.atr
        except TransportError:
            return
        found = detect(atr)
        if found not in (kind, CardKind.UNKNOWN):
            raise WrongCard(found, kind)

    def close(self) -> None:  # noqa: B027 - optional for transports that hold nothing
        """Release the reader."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the card for a multi-APDU operation (PC/SC: an exclusive transaction)."""
        yield

    @contextmanager
    def operation(self, name: str) -> Iterator[None]:
        """Name what the next APDUs are for, so that an error can say which operation failed."""
        outer, self._operation = self._operation, self._operation or name
        try:
            yield
        finally:
            self._operation = outer

    def transmit(self, command: bytes) -> bytes:
        """One raw exchange, traced. A transport error names the operation and the APDU."""
        self.apdu_count += 1
        if not self.tracers:
            self._in_session = True
            return self._located(command)
        if not self._in_session:
            self._in_session = True
            power_up = Event(time.time(), CardEvent.POWER_UP)
            for tracer in self.tracers:
                tracer.card_event(power_up)
        started, t0 = time.time(), time.perf_counter_ns()
        response = self._located(command)
        ex = make_exchange(command, response, started, time.perf_counter_ns() - t0)
        for tracer in self.tracers:
            tracer.exchange(ex)
        return response

    def _located(self, command: bytes) -> bytes:
        try:
            return self._exchange(command)
        except TransportError as e:
            where = f"{self._operation}, " if self._operation else ""
            header = command[:4].hex(" ").upper()
            e.args = (
                f"{e.args[0] if e.args else e} ({where}APDU n°{self.apdu_count} : {header})",
                *e.args[1:],
            )
            raise

    def send(self, cmd: CommandApdu) -> ResponseApdu:
        """Send a command and apply the T=0 rules until the card gives its final answer."""
        resp = ResponseApdu.parse(self.transmit(cmd.to_bytes()))
        data = b""
        for _ in range(MAX_T0_ROUNDS):
            if resp.sw1 == SW1_WRONG_LE:
                retry = CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, resp.sw2 or 256)
                resp = ResponseApdu.parse(self.transmit(retry.to_bytes()))
            elif resp.sw1 == SW1_MORE_DATA:
                data += resp.data
                get = CommandApdu(cmd.cla & 0x03, INS_GET_RESPONSE, 0, 0, le=resp.sw2 or 256)
                resp = ResponseApdu.parse(self.transmit(get.to_bytes()))
            else:
                return ResponseApdu(data + resp.data, resp.sw)
        raise CardDataError("the card keeps answering 61xx/6Cxx")

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
