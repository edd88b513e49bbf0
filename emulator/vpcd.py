"""The card side of vsmartcard's vpcd protocol: an emulated card in a PC/SC reader.

vpcd (a pcscd driver) listens on TCP port 35963 + slot; the card connects to it as a client.
Every message is a 2-byte big-endian length then the payload. A 1-byte payload is a control
byte (00 power off, 01 power on, 02 reset, 04 get ATR: only get ATR is answered); any other
payload is a C-APDU, answered with the R-APDU. Closing the connection is a card removal.

One thread per card, blocking on recv: the fastest answer, and a card never waits for another
(vpcd declares itself slot-thread-safe, so pcscd may drive both slots at once).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import threading
from contextlib import suppress
from pathlib import Path

from cartesim.core.apdu import ApduCard, redact_hex
from cartesim.core.errors import CardMute, CardRemoved, LinkDropped
from cartesim.emulator.faults import CardPulled

log = logging.getLogger(__name__)

VPCD_HOST = "localhost"
VPCD_PORT = 35963  # slot N listens on VPCD_PORT + N
# Set by a private PC/SC stack (cartesim.harness.stack.private): vpcd is in a network namespace of
# its own, and this Unix socket hands out connections to its ports.
ENV_VPCD_SOCKET = "CARTESIM_VPCD_SOCKET"

CTRL_POWER_OFF = 0x00
CTRL_POWER_ON = 0x01
CTRL_RESET = 0x02
CTRL_GET_ATR = 0x04

_CONTROL_NAMES = {CTRL_POWER_OFF: "power off", CTRL_POWER_ON: "power on", CTRL_RESET: "reset"}

BACKOFF_START = 0.05
BACKOFF_MAX = 1.0
MUTE_SECONDS = 2.0  # how long a mute card keeps vpcd waiting before the link drops
CONNECT_TIMEOUT = 2.0  # a remote vpcd host that drops SYNs must not hang stop()

_LENGTH = struct.Struct(">H")
_RECV_SIZE = 4096  # short APDUs fit; a longer message just takes several reads
# Linux only: delayed ACKs on the card side meet Nagle on vpcd's side (48 ms per APDU).
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def ask_vpcd_socket(path: Path, request: bytes) -> tuple[bytes, list[int]]:
    """One request to a private stack's vpcd socket: its answer line, and the descriptors sent."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(CONNECT_TIMEOUT)
        conn.connect(str(path))
        conn.sendall(request + b"\n")
        answer, fds, _flags, _addr = socket.recv_fds(conn, 64, 1)
    if not answer.startswith(b"ok"):
        for fd in fds:
            os.close(fd)
        code = int(answer.split()[1]) if answer.startswith(b"error ") and answer.split()[1].isdigit() else 0
        raise OSError(code or errno.EIO, os.strerror(code or errno.EIO))
    return answer, fds


def connect_through(path: Path, port: int) -> socket.socket:
    """A TCP connection to vpcd's ``port`` in a private stack's network namespace."""
    _answer, fds = ask_vpcd_socket(path, b"connect %d" % port)
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise OSError(errno.EPROTO, "no connection from the private stack")
    return socket.socket(fileno=fds[0])


class _Closed(Exception):
    """vpcd closed the connection (or stop()/remove() shut it down)."""


class VpcdCard:
    """One emulated card inserted in one vpcd slot; ``start()`` serves it in a daemon thread.

    The card survives vpcd going away (pcscd restarted): the thread reconnects with backoff and
    the same card object, so counters are kept; each disconnection is a power loss (reset).
    """

    def __init__(
        self,
        card: ApduCard,
        host: str = VPCD_HOST,
        port: int = VPCD_PORT,
        *,
        quickack: bool = True,
    ) -> None:
        self.card = card
        self.host, self.port = host, port
        self.quickack = quickack and _QUICKACK is not None
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._inserted = True
        self._stopping = False
        self._wake = threading.Event()  # set whenever _inserted/_stopping change
        self._connected = threading.Event()  # TCP connection to vpcd is up
        self._polled = threading.Event()  # vpcd has spoken on this connection: pcscd sees the card
        self._thread: threading.Thread | None = None

    @classmethod
    def for_slot(cls, card: ApduCard, slot: int, host: str = VPCD_HOST, *, quickack: bool = True) -> VpcdCard:
        return cls(card, host, VPCD_PORT + slot, quickack=quickack)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # --- lifecycle (any thread) -------------------------------------------------------------
    def start(self) -> VpcdCard:
        if self._thread is not None:
            raise RuntimeError("VpcdCard already started")
        self._thread = threading.Thread(target=self.run, name=f"vpcd-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        """Remove the card and end the serving thread."""
        with self._lock:
            self._stopping = True
            self._wake.set()
            self._shutdown_locked()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def remove(self) -> None:
        """Take the card out of the reader: close the connection, stay out until ``insert()``."""
        with self._lock:
            self._inserted = False
            self._connected.clear()
            self._polled.clear()
            self._wake.set()
            self._shutdown_locked()

    def insert(self) -> None:
        """Put the card back: reconnect to vpcd."""
        with self._lock:
            self._inserted = True
            self._wake.set()

    def _pulled_out(self, back_after: float | None) -> None:
        log.info("vpcd %s: card removed (fault)", self.address)
        with self._lock:
            self._inserted = False
            self._wake.set()
        if back_after is not None:
            timer = threading.Timer(back_after, self.insert)
            timer.daemon = True
            timer.start()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """True once the TCP connection to vpcd is up (vpcd may not have polled the card yet)."""
        return self._connected.wait(timeout)

    def wait_present(self, timeout: float | None = None) -> bool:
        """True once vpcd has talked to the card on this connection: pcscd knows it is there."""
        return self._polled.wait(timeout)

    def __enter__(self) -> VpcdCard:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _shutdown_locked(self) -> None:
        # shutdown, not close: the serving thread may be blocked in recv on this socket, and a
        # closed descriptor could be reused under it. The serving thread closes it.
        if self._sock is not None:
            with suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    # --- serving thread ---------------------------------------------------------------------
    def run(self) -> None:
        """Serve the card until ``stop()``: connect, answer, reconnect when vpcd goes away."""
        delay = BACKOFF_START
        while True:
            self._wake.clear()  # cleared before the checks, so no wake-up is lost
            with self._lock:
                if self._stopping:
                    return
                inserted = self._inserted
            if not inserted:
                self._wake.wait()
                continue
            sock = self._connect()
            if sock is None:
                self._wake.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            delay = BACKOFF_START
            with self._lock:
                if self._stopping or not self._inserted:
                    sock.close()
                    continue
                self._sock = sock
                self._connected.set()
            log.info("connected to vpcd %s", self.address)
            try:
                self._serve(sock)
            except (_Closed, OSError):
                pass
            finally:
                with self._lock:
                    self._sock = None
                    self._connected.clear()
                    self._polled.clear()
                    wanted = self._inserted and not self._stopping
                sock.close()
                self.card.reset()  # out of the reader is unpowered: security status is lost
            if wanted:
                log.info("vpcd went away, reconnecting")

    def _connect(self) -> socket.socket | None:
        private = os.environ.get(ENV_VPCD_SOCKET)
        try:
            if private and self.host == VPCD_HOST:  # "localhost": where pcscd's vpcd is
                sock = connect_through(Path(private), self.port)
            else:
                sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        except OSError as e:
            log.debug("vpcd %s not there: %s", self.address, e)
            return None
        sock.settimeout(None)
        # vpcd answers every message at once: never hold a small reply back.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _recv(self, sock: socket.socket) -> bytes:
        if self.quickack:
            # Linux turns QUICKACK off again by itself: set it before every read (docs/architecture.md).
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)  # type: ignore[arg-type]
        chunk = sock.recv(_RECV_SIZE)
        if not chunk:
            raise _Closed
        return chunk

    def _serve(self, sock: socket.socket) -> None:
        card = self.card
        debug = log.isEnabledFor(logging.DEBUG)
        buf = b""
        while True:
            # One recv usually brings a whole message (length and payload): one syscall per APDU.
            while len(buf) < 2:
                buf += self._recv(sock)
            end = 2 + _LENGTH.unpack_from(buf)[0]
            while len(buf) < end:
                buf += self._recv(sock)
            payload, buf = buf[2:end], buf[end:]
            if not self._polled.is_set():
                self._polled.set()
            if len(payload) == 1:
                reply = self._control(payload[0])
                if reply is None:
                    continue
            else:
                try:
                    reply = card.process(payload)
                except CardRemoved as e:  # a fault pulled the card out: no answer, no reconnection
                    self._pulled_out(e.back_after if isinstance(e, CardPulled) else None)
                    raise _Closed from None
                except LinkDropped:  # a fault dropped the link: the run loop reconnects
                    log.info("vpcd %s: connection dropped (fault)", self.address)
                    raise _Closed from None
                except CardMute:
                    # A mute card keeps vpcd (and so pcscd) waiting: give up after a while,
                    # as a reader would, by dropping the link; the card comes back unpowered.
                    log.info("vpcd %s: card mute for %.1f s (fault)", self.address, MUTE_SECONDS)
                    self._wake.wait(MUTE_SECONDS)
                    raise _Closed from None
                if debug:
                    log.debug("%s C: %s R: %s", self.address, redact_hex(payload), reply.hex().upper())
            sock.sendall(_LENGTH.pack(len(reply)) + reply)

    def _control(self, code: int) -> bytes | None:
        if code == CTRL_GET_ATR:
            return bytes(self.card.atr)
        if code in (CTRL_POWER_OFF, CTRL_POWER_ON, CTRL_RESET):
            log.debug("vpcd %s: %s", self.address, _CONTROL_NAMES[code])
            self.card.reset()
        else:
            log.debug("vpcd %s: unknown control byte %02X ignored", self.address, code)
        return None
