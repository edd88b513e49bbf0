"""PcscTransport: a card in a PC/SC reader (pcscd), through pyscard's low-level ``scard`` API.

pyscard is an extra (``pip install 'cartesim[pcsc]'``), imported here only, so the rest of
cartesim (the engine in-process, the emulator, which speaks vpcd, the pytest plugin) works
without it; importing this module without it raises ``PyscardMissing``, which says so in one line. The low-level API is
used because the object layer adds Python work to every APDU; each call here is one pcscd round
trip and returns a plain status code, mapped to the engine's errors.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from cartesim.core.atr import CardKind, detect, protocols
from cartesim.core.errors import (
    CardMute,
    CardRemoved,
    NoCard,
    NoReader,
    NoService,
    PyscardMissing,
    TransportError,
)
from cartesim.core.trace import CardEvent
from cartesim.core.transport import Transport

try:
    from smartcard import scard
except ImportError as e:
    raise PyscardMissing from e

log = logging.getLogger(__name__)

ReaderSpec = str | re.Pattern[str] | None

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"  # pseudo reader: changes of the reader list

_SERVICE_GONE = frozenset({scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED})
_CARD_GONE = frozenset(
    {
        scard.SCARD_W_REMOVED_CARD,
        scard.SCARD_E_NO_SMARTCARD,
        scard.SCARD_W_UNPOWERED_CARD,
        scard.SCARD_E_READER_UNAVAILABLE,
    }
)
_READER_GONE = frozenset({scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_NO_READERS_AVAILABLE})

MSG_NO_SERVICE = "Service PC/SC indisponible (pcscd ne répond pas)"
MSG_NO_READER = "Aucun lecteur"
MSG_REMOVED = "Carte retirée"
REMOVAL_POLL = 1.0  # seconds: two of pcscd's polls of a vpcd slot


def _u32(hr: int) -> int:
    return hr & 0xFFFFFFFF  # pyscard may hand back a signed long


def _pcsc_error(hr: int, what: str) -> TransportError:
    """Anything not mapped to a precise error: keep pcscd's own words and the code."""
    return TransportError(f"Erreur PC/SC ({what}) : {scard.SCardGetErrorMessage(hr)} [0x{_u32(hr):08X}]")


def _no_card(reader: str) -> NoCard:
    return NoCard(f"Pas de carte dans le lecteur « {reader} »")


def _protocol_mask(atr: bytes) -> int:
    """The PC/SC protocols to ask for, from those the ATR offers (T=0 and/or T=1)."""
    offered = protocols(atr)
    mask = (scard.SCARD_PROTOCOL_T0 if 0 in offered else 0) | (scard.SCARD_PROTOCOL_T1 if 1 in offered else 0)
    return mask or (scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)


# --- contexts and reader states --------------------------------------------------------------
def _establish() -> int:
    try:
        hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    except scard.error as e:  # pyscard raises on some failures instead of returning the code
        raise NoService(MSG_NO_SERVICE) from e
    if hr != scard.SCARD_S_SUCCESS:
        # No socket, refused, stopped: for the user all mean that pcscd is not there.
        raise NoService(MSG_NO_SERVICE)
    return ctx


def _release(ctx: int) -> None:
    scard.SCardReleaseContext(ctx)


@contextmanager
def _context() -> Iterator[int]:
    ctx = _establish()
    try:
        yield ctx
    finally:
        _release(ctx)


def _reader_names(ctx: int) -> list[str]:
    hr, names = scard.SCardListReaders(ctx, [])
    if hr == scard.SCARD_E_NO_READERS_AVAILABLE:
        return []
    if hr in _SERVICE_GONE:
        raise NoService(MSG_NO_SERVICE)
    if hr != scard.SCARD_S_SUCCESS:
        raise _pcsc_error(hr, "liste des lecteurs")
    return list(names)


def _has_card(state: int) -> bool:
    return bool(state & scard.SCARD_STATE_PRESENT) and not state & scard.SCARD_STATE_MUTE


@dataclass(frozen=True)
class ReaderInfo:
    name: str
    card_present: bool
    atr: bytes | None


def _states(ctx: int, names: Sequence[str]) -> list[ReaderInfo]:
    if not names:
        return []
    hr, states = scard.SCardGetStatusChange(ctx, 0, [(n, scard.SCARD_STATE_UNAWARE) for n in names])
    if hr in _SERVICE_GONE:
        raise NoService(MSG_NO_SERVICE)
    if hr in _READER_GONE:
        raise NoReader(MSG_NO_READER)
    if hr not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
        raise _pcsc_error(hr, "état des lecteurs")
    return [
        ReaderInfo(name, _has_card(state), bytes(atr) if _has_card(state) and atr else None)
        for name, state, atr in states
    ]


def list_readers() -> list[ReaderInfo]:
    """Every reader pcscd knows, with the ATR of the card it holds. NoService without pcscd."""
    with _context() as ctx:
        return _states(ctx, _reader_names(ctx))


def reader_names() -> list[str]:
    with _context() as ctx:
        return _reader_names(ctx)


def first_reader_with(predicate: Callable[[bytes], bool]) -> ReaderInfo | None:
    """The first reader holding a card whose ATR satisfies ``predicate`` (e.g. a CPS)."""
    for info in list_readers():
        if info.atr is not None and predicate(info.atr):
            return info
    return None


def _await_state(
    ctx: int, names: list[str], accept: Callable[[int, bytes], bool], timeout: float
) -> tuple[str, bytes] | None:
    """The first of ``names`` whose (state, ATR) ``accept`` takes, waiting up to ``timeout``
    seconds on pcscd's change notifications; None on timeout."""
    deadline = time.monotonic() + timeout
    query = [(n, scard.SCARD_STATE_UNAWARE) for n in names]
    wait_ms = 0
    while True:
        hr, states = scard.SCardGetStatusChange(ctx, wait_ms, query)
        if hr in _SERVICE_GONE:
            raise NoService(MSG_NO_SERVICE)
        if hr in _READER_GONE:
            raise NoReader(MSG_NO_READER if len(names) > 1 else f"Lecteur « {names[0]} » introuvable")
        if hr == scard.SCARD_S_SUCCESS:
            for name, state, atr in states:
                if state & scard.SCARD_STATE_UNKNOWN:
                    raise NoReader(f"Lecteur « {name} » introuvable")
                if accept(state, bytes(atr)):
                    return name, bytes(atr)
            query = [(n, st & ~scard.SCARD_STATE_CHANGED) for n, st, _ in states]
        elif hr != scard.SCARD_E_TIMEOUT:
            raise _pcsc_error(hr, "attente d'une carte")
        wait_ms = int((deadline - time.monotonic()) * 1000)
        if wait_ms <= 0:
            return None


def wait_reader(reader: str, *, present: bool, timeout: float) -> ReaderInfo | None:
    """Wait until ``reader`` holds a card (``present``) or is empty; None on timeout."""
    with _context() as ctx:
        found = _await_state(ctx, [reader], lambda state, _atr: _has_card(state) == present, timeout)
    if found is None:
        return None
    return ReaderInfo(reader, present, found[1] if present and found[1] else None)


def wait_for_readers(predicate: Callable[[list[str]], bool], timeout: float) -> list[str] | None:
    """Wait until the reader list satisfies ``predicate``; None on timeout.

    Uses pcscd's reader-list notification, so there is no polling once pcscd answers.
    """
    deadline = time.monotonic() + timeout
    with _context() as ctx:
        state = scard.SCARD_STATE_UNAWARE
        while True:
            names = _reader_names(ctx)
            if predicate(names):
                return names
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                return None
            hr, states = scard.SCardGetStatusChange(ctx, left_ms, [(PNP_NOTIFICATION, state)])
            if hr in _SERVICE_GONE:
                raise NoService(MSG_NO_SERVICE)
            if hr == scard.SCARD_S_SUCCESS:
                state = states[0][1] & ~scard.SCARD_STATE_CHANGED
            elif hr != scard.SCARD_E_TIMEOUT:
                raise _pcsc_error(hr, "attente des lecteurs")


# --- reader choice and waiting for a card -------------------------------------------------------
def _candidates(ctx: int, reader: ReaderSpec) -> list[str]:
    names = _reader_names(ctx)
    if not names:
        raise NoReader(MSG_NO_READER)
    if reader is None:
        return names
    if isinstance(reader, re.Pattern):
        found = [n for n in names if reader.search(n)]
        if not found:
            raise NoReader(f"Aucun lecteur ne correspond à « {reader.pattern} »")
        return found
    if reader not in names:
        raise NoReader(f"Lecteur « {reader} » introuvable")
    return [reader]


def _wait_card(ctx: int, names: list[str], timeout: float) -> tuple[str, bytes]:
    """The first of ``names`` holding a (non-mute) card, waiting up to ``timeout`` seconds."""
    found = _await_state(ctx, names, lambda state, atr: _has_card(state) and bool(atr), timeout)
    if found is None:
        raise _no_card(names[0]) if len(names) == 1 else NoCard("Pas de carte dans les lecteurs")
    return found


# --- the transport ----------------------------------------------------------------------------
class PcscTransport(Transport):
    """A card in a PC/SC reader.

    ``reader``: an exact reader name, a compiled regex (first match holding a card), or None
    (first reader holding a card). ``timeout``: seconds to wait for a card to be inserted.
    """

    def __init__(self, reader: ReaderSpec = None, *, timeout: float = 0.0, exclusive: bool = False) -> None:
        super().__init__()
        self._share = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED
        self._ctx: int | None = _establish()
        self._hcard: int | None = None
        self._depth = 0  # nesting of transaction(): only the outermost one talks to pcscd
        try:
            self.reader, atr = _wait_card(self._ctx, _candidates(self._ctx, reader), timeout)
            self._connect(atr)
        except BaseException:
            self.close()
            raise

    def _connect(self, atr: bytes) -> None:
        assert self._ctx is not None
        self._mask = _protocol_mask(atr)
        hr, hcard, proto = scard.SCardConnect(self._ctx, self.reader, self._share, self._mask)
        if hr != scard.SCARD_S_SUCCESS:
            raise self._error(hr, "connexion", absent=_no_card(self.reader))
        self._hcard, self._protocol = hcard, proto
        log.debug("connected to %s, T=%d", self.reader, 0 if proto == scard.SCARD_PROTOCOL_T0 else 1)

    def _error(self, hr: int, what: str, absent: TransportError | None = None) -> TransportError:
        if hr in _SERVICE_GONE:
            return NoService(MSG_NO_SERVICE)
        if hr in _CARD_GONE:
            return absent or CardRemoved(MSG_REMOVED)
        if hr == scard.SCARD_E_UNKNOWN_READER:
            return NoReader(f"Lecteur « {self.reader} » introuvable")
        if hr == scard.SCARD_W_UNRESPONSIVE_CARD:
            return NoCard(f"Carte muette dans le lecteur « {self.reader} »")
        if hr == scard.SCARD_E_SHARING_VIOLATION:
            return TransportError(f"Lecteur « {self.reader} » occupé par une autre application")
        return _pcsc_error(hr, what)

    def _handle(self) -> int:
        if self._hcard is None:
            raise CardRemoved(MSG_REMOVED)
        return self._hcard

    def _acknowledge_reset(self) -> None:
        """Another application reset the card: take the new session as it is."""
        hr, proto = scard.SCardReconnect(self._handle(), self._share, self._mask, scard.SCARD_LEAVE_CARD)
        if hr != scard.SCARD_S_SUCCESS:
            raise self._error(hr, "reconnexion")
        self._protocol = proto
        self._trace_event(CardEvent.RESET)

    # --- Transport --------------------------------------------------------------------------
    @property
    def atr(self) -> bytes:
        hr, _reader, _state, _proto, atr = scard.SCardStatus(self._handle())
        if hr == scard.SCARD_W_RESET_CARD:
            self._acknowledge_reset()
            hr, _reader, _state, _proto, atr = scard.SCardStatus(self._handle())
        if hr != scard.SCARD_S_SUCCESS:
            raise self._error(hr, "état de la carte")
        return bytes(atr)

    def _exchange(self, command: bytes) -> bytes:
        hr, response = scard.SCardTransmit(self._handle(), self._protocol, list(command))
        if hr == scard.SCARD_W_RESET_CARD:
            self._acknowledge_reset()
            hr, response = scard.SCardTransmit(self._handle(), self._protocol, list(command))
        if hr != scard.SCARD_S_SUCCESS:
            raise self._error(hr, "échange")
        if len(response) < 2:
            # No status word: vpcd answers nothing when its card leaves mid-command, and pcscd
            # notices the removal only at its next poll (~400 ms): wait for it before calling
            # the card mute. (A real reader reports an error instead.)
            hr, *_ = scard.SCardStatus(self._handle())
            if hr != scard.SCARD_S_SUCCESS:
                raise self._error(hr, "échange")
            if wait_reader(self.reader, present=False, timeout=REMOVAL_POLL) is not None:
                raise CardRemoved(MSG_REMOVED)
            raise CardMute("La carte n'a pas répondu")
        return bytes(response)

    def _power_cycle(self) -> None:
        hr, proto = scard.SCardReconnect(self._handle(), self._share, self._mask, scard.SCARD_UNPOWER_CARD)
        if hr != scard.SCARD_S_SUCCESS:
            raise self._error(hr, "remise sous tension")
        self._protocol = proto

    def reconnect(self, timeout: float = 0.0) -> None:
        """After a removal: wait for a card in the same reader and open a new session on it."""
        if self._ctx is None:
            raise CardRemoved(MSG_REMOVED)
        _, atr = _wait_card(self._ctx, [self.reader], timeout)
        if self._hcard is not None:
            scard.SCardDisconnect(self._hcard, scard.SCARD_LEAVE_CARD)
            self._hcard = None
        self._connect(atr)
        self._trace_event(CardEvent.POWER_UP)  # a card put back: a new session
        if self._depth:
            self._begin()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Exclusive access for a multi-APDU operation; nested blocks share the outermost one."""
        if self._depth == 0:
            self._begin()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._end()

    def _begin(self) -> None:
        hr = scard.SCardBeginTransaction(self._handle())
        if hr == scard.SCARD_W_RESET_CARD:
            self._acknowledge_reset()
            hr = scard.SCardBeginTransaction(self._handle())
        if hr != scard.SCARD_S_SUCCESS:
            raise self._error(hr, "début de transaction")

    def _end(self) -> None:
        if self._hcard is None:
            return
        hr = scard.SCardEndTransaction(self._hcard, scard.SCARD_LEAVE_CARD)
        if hr != scard.SCARD_S_SUCCESS:
            # The card went away mid-operation: the exchange has already said so.
            log.debug("end of transaction on %s: %s", self.reader, scard.SCardGetErrorMessage(hr))

    def close(self) -> None:
        if self._hcard is not None:
            scard.SCardDisconnect(self._hcard, scard.SCARD_LEAVE_CARD)
            self._hcard = None
        if self._ctx is not None:
            _release(self._ctx)
            self._ctx = None


def open_reader(reader: str | None, kind: CardKind, *, timeout: float = 0.0) -> PcscTransport:
    """The card a user names: ``reader`` is an exact reader name, ``re:PATTERN``, or None for the
    first reader holding a card of ``kind`` (detected by its ATR)."""
    if reader is None:
        found = first_reader_with(lambda atr: detect(atr) is kind)
        if found is None:
            raise NoCard(f"Aucun lecteur ne contient de {kind.label}")
        return PcscTransport(found.name, timeout=timeout)
    if reader.startswith("re:"):
        return PcscTransport(re.compile(reader[3:]), timeout=timeout)
    return PcscTransport(reader, timeout=timeout)
