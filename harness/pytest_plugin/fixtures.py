"""The cartesim pytest plugin (entry point ``pytest11`` ``cartesim``): emulated cards as fixtures.

The same test runs in-process (``--cartesim-transport=direct``, the default) or through a real
pcscd + vpcd (``--cartesim-transport=pcsc``). In pcsc mode the session (each pytest-xdist worker)
runs its own private pcscd and vpcd readers, no root needed (``--cartesim-pcscd=private``), or
uses the machine's (``--cartesim-pcscd=system``). One emulated card per vpcd slot lives for the
whole session; a test gets a fresh card of the same kind by swapping the emulator behind the slot,
not by re-inserting it (pcscd notices an insertion only every ~400 ms).

Fixtures, by what they hand the test:
- ``cps_card`` / ``vitale_card``: the engine, ready (``CpsCard`` / ``VitaleCard``) on a fresh
  sample card (cps-roulette / vitale-famille) in a reader;
- ``cps_transport`` / ``vitale_transport``: the raw transport to that card;
- ``emulated_cps`` / ``emulated_vitale``: that card itself, in its reader (``InsertedCard``:
  ``os`` white-box, ``remove()``, ``insert()``, ``set("last-try")``…);
- ``cartesim``: a factory, ``cartesim.insert(profile, state=None, slot=None) -> InsertedCard``;
- ``apdu_trace``: every exchange of this test's cards (codes redacted);
- ``pcscd_free_slots``: pcscd with empty vpcd readers, for a card process of the test's own.
Within one test they are one card: ``cps_card`` talks to ``emulated_cps`` over ``cps_transport``.

Nothing heavy is imported until a fixture or ``--cartesim-transport=pcsc`` asks for it (as
hypothesis's own plugin does): a project that has cartesim installed but does not use it pays
nothing at pytest's start.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from cartesim.harness.pytest_plugin import shared
from cartesim.harness.pytest_plugin.shared import unavailable

if TYPE_CHECKING:
    from cartesim.core.cps import CpsCard
    from cartesim.core.trace import ListTracer
    from cartesim.core.transport import Transport
    from cartesim.core.vitale import VitaleCard
    from cartesim.harness.pytest_plugin.cards import CardFactory, CardSession, InsertedCard

__all__ = ["unavailable"]  # for tests that need pcscd and something more (a tool, a package)


def pytest_addoption(parser: pytest.Parser) -> None:
    shared.add_options(parser)


def pytest_report_header(config: pytest.Config) -> str:
    mode = config.getoption("--cartesim-transport")
    return f"cartesim transport: {mode}" + (
        f" ({config.getoption('--cartesim-pcscd')} pcscd)" if mode == "pcsc" else ""
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    shared.start_session(session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    shared.finish_session(session.config)


@pytest.fixture(scope="session")
def _cartesim_session(request: pytest.FixtureRequest) -> CardSession:
    return shared.card_session(request.config)


@pytest.fixture
def pcscd_free_slots(_cartesim_session: CardSession) -> CardSession:
    """pcscd with the vpcd readers and no card of ours in them: for tests that run their own card
    process. Skips (fails under CI=true) without pcscd + vpcd."""
    _cartesim_session.ensure_pcscd()
    _cartesim_session.release()
    return _cartesim_session


@pytest.fixture
def apdu_trace() -> ListTracer:
    """Every APDU exchange of this test's cards (``Exchange``: command, response), codes redacted."""
    from cartesim.core.trace import ListTracer

    return ListTracer()


@pytest.fixture
def cartesim(_cartesim_session: CardSession, apdu_trace: ListTracer) -> Iterator[CardFactory]:
    """Put emulated cards in readers: ``cartesim.insert(profile, state=None, slot=None)`` takes a
    sample name or a profile file and returns an ``InsertedCard`` (``transport``, ``os``,
    ``remove()``, ``insert()``, ``power_cycle()``, ``status()``, ``set(...)``, ``reset()``,
    ``save_state(path)``). In-process, or in vpcd readers with ``--cartesim-transport=pcsc``."""
    from cartesim.harness.pytest_plugin.cards import CardFactory

    factory = CardFactory(_cartesim_session, apdu_trace)
    yield factory
    factory.close()


@pytest.fixture
def emulated_cps(cartesim: CardFactory) -> InsertedCard:
    """The sample CPS (cps-roulette: PIN 1234, unblock code 12345678), fresh for this test, in its
    reader: the emulated card itself (``InsertedCard``: ``os``, ``transport``, ``set("last-try")``…)."""
    return cartesim.insert("cps-roulette")


@pytest.fixture
def emulated_vitale(cartesim: CardFactory) -> InsertedCard:
    """The sample Carte Vitale (vitale-famille), fresh for this test, in its reader: the emulated
    card itself (``InsertedCard``)."""
    return cartesim.insert("vitale-famille")


@pytest.fixture
def cps_transport(emulated_cps: InsertedCard) -> Transport:
    """The raw transport (``send``, ``transmit``) to ``emulated_cps``, as an application holds it."""
    return emulated_cps.transport


@pytest.fixture
def vitale_transport(emulated_vitale: InsertedCard) -> Transport:
    """The raw transport to ``emulated_vitale``, as an application holds it."""
    return emulated_vitale.transport


@pytest.fixture
def cps_card(cps_transport: Transport) -> CpsCard:
    """The engine's ``CpsCard``, ready, on the fresh sample CPS cps-roulette (PIN 1234, unblock
    code 12345678) of ``emulated_cps``."""
    from cartesim.core.cps import CpsCard

    return CpsCard(cps_transport)


@pytest.fixture
def vitale_card(vitale_transport: Transport) -> VitaleCard:
    """The engine's ``VitaleCard``, ready, on the fresh sample Carte Vitale vitale-famille of
    ``emulated_vitale``."""
    from cartesim.core.vitale import VitaleCard

    return VitaleCard(vitale_transport)
