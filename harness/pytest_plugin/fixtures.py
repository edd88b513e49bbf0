"""The cartesim pytest plugin (entry point ``pytest11``): emulated cards as fixtures.

The same test runs in-process (``--cartesim-transport=direct``, the default) or through a real
pcscd + vpcd (``--cartesim-transport=pcsc``). In pcsc mode the session (each pytest-xdist worker)
runs its own private pcscd and vpcd readers, no root needed (``--cartesim-pcscd=private``), or
uses the machine's (``--cartesim-pcscd=system``). One emulated card per vpcd slot lives for the
whole session; a test gets a fresh card of the same kind by swapping the emulator behind the slot,
not by re-inserting it (pcscd notices an insertion only every ~400 ms).

Fixtures:
- ``cartesim``: a factory, ``cartesim.insert(profile, state=None, slot=None) -> InsertedCard``;
- ``cps_card`` / ``vitale_card``: the samples cps-roulette / vitale-famille, inserted;
- ``cps_transport``: the engine's transport to ``cps_card``;
- ``apdu_trace``: every exchange of this test's transports (codes redacted).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cartesim.core.apdu import ApduCard
from cartesim.core.errors import NoService
from cartesim.core.trace import ListTracer
from cartesim.core.transport import Transport
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.harness.control import settings as card_settings
from cartesim.harness.control.socket import ENV_CONTROL
from cartesim.harness.stack.private import PrivateStack
from cartesim.harness.stack.slots import CardSlot, InProcessSlot, VpcdSlot

if TYPE_CHECKING:  # pyscard and pcscd are needed only with --cartesim-transport=pcsc
    from cartesim.harness.stack.stacks import Stack

TRANSPORTS = ("direct", "pcsc")
CPS_SLOT, VITALE_SLOT = 0, 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cartesim", "cartesim emulated cards")
    group.addoption(
        "--cartesim-transport",
        choices=TRANSPORTS,
        default=os.environ.get("CARTESIM_TRANSPORT", "direct"),
        help="direct: the emulator in-process; pcsc: through pcscd + vpcd (default: direct)",
    )
    group.addoption(
        "--cartesim-pcscd",
        choices=("private", "system"),
        default=os.environ.get("CARTESIM_PCSCD", "private"),
        help="with pcsc: private: a pcscd and vpcd readers of this session's own, no root needed "
        "(default); system: the machine's pcscd (running, or started as root)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    mode = config.getoption("--cartesim-transport")
    return f"cartesim transport: {mode}" + (
        f" ({config.getoption('--cartesim-pcscd')} pcscd)" if mode == "pcsc" else ""
    )


def unavailable(reason: str) -> None:
    """Skip for want of pcscd/vpcd; under CI=true fail, so CI cannot pass by skipping."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"pcscd/vpcd needed under CI: {reason}")
    pytest.skip(reason)


@dataclass
class InsertedCard:
    """An emulated card in a reader: ``os`` is the emulator (white-box), ``transport`` the engine's."""

    os: CardOS
    transport: Transport
    slot: CardSlot = field(repr=False)
    profile: str | Path = field(default="", repr=False)  # what reset() goes back to

    def remove(self) -> None:
        self.slot.remove()

    def insert(self) -> None:
        """Put the card back; ``transport`` is a new one afterwards."""
        self.slot.insert()
        tracers = self.transport.tracers
        self.transport.close()
        self.transport = self.slot.open()
        self.transport.tracers.extend(tracers)

    def power_cycle(self) -> None:
        self.transport.power_cycle()

    # The calls of `cartesim card` (cartesim.harness.control), on this card.
    def status(self) -> card_settings.CardStatus:
        """Tries left, blocked or not (never the codes)."""
        return card_settings.card_status(self.os)

    def set(self, *states: str) -> card_settings.CardStatus:
        """``"last-try"``, ``"blocked"``, ``"unblock-last-try"``, ``"definitively-blocked"``,
        ``"fresh"``, ``"pin_tries_left=N"``…, applied in order; the state file follows."""
        return card_settings.set_card(self.os, states)

    def reset(self) -> card_settings.CardStatus:
        """Back to the profile as issued: code porteur and counters."""
        return card_settings.reset_card(self.os, self.profile)

    def save_state(self, path: Path) -> Path:
        """The exact state (cartesim-state/1, 0600): for ``emulate --state-file`` or a scenario."""
        return card_settings.save_card_state(self.os, path)


class CardSession:
    """Session-wide: the transport mode, and in pcsc mode pcscd and one vpcd slot per number,
    kept from test to test (a card of the same kind is swapped in place: no wait for pcscd)."""

    def __init__(self, mode: str, pcscd: str = "private") -> None:
        self.mode = mode
        self.pcscd_mode = pcscd
        self.stack: Stack | None = None
        self.slots: dict[int, VpcdSlot] = {}
        self._saved_control: str | None = None
        self._refused: str | None = None

    def start_stack(self) -> None:
        """Start this session's PC/SC stack, or remember in one line why it cannot be had.

        Called as the session starts, before any test: pcsc-lite's client library reads the
        socket to use (``PCSCLITE_CSOCK_NAME``) once per process, at its first call."""
        from cartesim.harness.stack.pcscd import pcscd_available
        from cartesim.harness.stack.stacks import new_stack

        if self.pcscd_mode == "system":
            ok, why = pcscd_available()
            if not ok:
                self._refused = why
                return
        stack = new_stack(self.pcscd_mode)
        try:
            stack.start()
        except NoService as e:  # a stack that cannot be had here: the reason, in one line
            hint = " (or --cartesim-pcscd=system)" if self.pcscd_mode == "private" else ""
            self._refused = f"{e}{hint}"
            return
        self.stack = stack
        if isinstance(stack, PrivateStack) and stack.folder is not None:
            # `cartesim emulate` and `card` run by this session's tests: their own control socket,
            # so that sessions side by side (xdist workers) never drive each other's cards.
            self._saved_control = os.environ.get(ENV_CONTROL)
            os.environ[ENV_CONTROL] = str(stack.folder / "control" / "control.sock")

    def ensure_pcscd(self) -> None:
        """The stack is there; else the test skips (fails under CI=true), saying why."""
        if self.stack is None:
            unavailable(self._refused or "no PC/SC stack in this session (--cartesim-transport=direct)")

    def insert(self, card: ApduCard, number: int) -> CardSlot:
        """``card`` in slot ``number``, seen by the reader."""
        if self.mode == "direct":
            return InProcessSlot(number, card)
        self.ensure_pcscd()
        slot = self.slots.get(number)
        if slot is None:
            slot = self.slots[number] = VpcdSlot(number, card).start()
        else:
            slot.replace(card)
        return slot

    def release(self) -> None:
        """Take every served card out of its slot (pcscd keeps running): the slots are free
        for another card process, such as ``cartesim emulate``."""
        for slot in self.slots.values():
            slot.close()
        self.slots.clear()

    def close(self) -> None:
        self.release()
        if self.stack is not None:
            self.stack.stop()
            if self._saved_control is None:
                os.environ.pop(ENV_CONTROL, None)
            else:
                os.environ[ENV_CONTROL] = self._saved_control


class CardFactory:
    """The ``cartesim`` fixture: insert emulated cards for one test."""

    def __init__(self, session: CardSession, trace: ListTracer) -> None:
        self.session, self.trace = session, trace
        self.cards: list[InsertedCard] = []

    @property
    def mode(self) -> str:
        return self.session.mode

    def insert(self, profile: str | Path, state: Path | None = None, slot: int | None = None) -> InsertedCard:
        """Insert the card of ``profile`` (a path or a sample name) in ``slot`` (default: by kind)."""
        card = load_card(profile, state)
        if slot is None:
            slot = CPS_SLOT if card.pin is not None else VITALE_SLOT
        held = self.session.insert(card, slot)
        transport = held.open()
        transport.tracers.append(self.trace)
        inserted = InsertedCard(card, transport, held, profile)
        self.cards.append(inserted)
        return inserted

    def close(self) -> None:
        for c in self.cards:
            c.transport.close()


_SESSION = pytest.StashKey[CardSession]()


def _runs_tests(config: pytest.Config) -> bool:
    """Not the pytest-xdist controller, which hands tests to its workers and runs none."""
    return hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None)


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    mode = config.getoption("--cartesim-transport")
    card_session = CardSession(mode, config.getoption("--cartesim-pcscd"))
    config.stash[_SESSION] = card_session
    if mode == "pcsc" and _runs_tests(config):
        card_session.start_stack()


def pytest_sessionfinish(session: pytest.Session) -> None:
    card_session = session.config.stash.get(_SESSION, None)
    if card_session is not None:
        card_session.close()


@pytest.fixture(scope="session")
def _cartesim_session(request: pytest.FixtureRequest) -> CardSession:
    return request.config.stash[_SESSION]


@pytest.fixture
def pcscd_free_slots(_cartesim_session: CardSession) -> CardSession:
    """pcscd with the vpcd readers and no card of ours in them: for tests that run their own card
    process. Skips (fails under CI=true) without pcscd + vpcd."""
    _cartesim_session.ensure_pcscd()
    _cartesim_session.release()
    return _cartesim_session


@pytest.fixture
def apdu_trace() -> ListTracer:
    """Every APDU exchange of this test's cards, codes redacted."""
    return ListTracer()


@pytest.fixture
def cartesim(_cartesim_session: CardSession, apdu_trace: ListTracer) -> Iterator[CardFactory]:
    factory = CardFactory(_cartesim_session, apdu_trace)
    yield factory
    factory.close()


@pytest.fixture
def cps_card(cartesim: CardFactory) -> InsertedCard:
    """The sample CPS (cps-roulette: PIN 1234, unblock code 12345678), fresh for this test."""
    return cartesim.insert("cps-roulette")


@pytest.fixture
def vitale_card(cartesim: CardFactory) -> InsertedCard:
    """The sample Carte Vitale (vitale-famille), fresh for this test."""
    return cartesim.insert("vitale-famille")


@pytest.fixture
def cps_transport(cps_card: InsertedCard) -> Transport:
    return cps_card.transport
