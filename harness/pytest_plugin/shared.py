"""What the two pytest plugins share, light enough for every pytest start in every project.

The plugins (``cartesim``: fixtures; ``cartesim-scenarios``: scenario files) each work alone
(``-p no:cartesim`` or ``-p no:cartesim-scenarios``), so each registers the options and drives the
session through here; whichever comes first does the work, the other finds it done.

Like hypothesis's ``_hypothesis_pytestplugin``, nothing here imports more than pytest and the
standard library: the emulator, pydantic, yaml and pyscard are imported when a fixture, a
scenario or ``--cartesim-transport=pcsc`` asks for them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from cartesim.harness.pytest_plugin.cards import CardSession

TRANSPORTS = ("direct", "pcsc")
GROUP = "cartesim"


def add_options(parser: pytest.Parser) -> None:
    """The options of the session: once, whichever plugin asks first."""
    group = parser.getgroup(GROUP, "cartesim emulated cards")
    if any("--cartesim-transport" in option.names() for option in group.options):
        return
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


def unavailable(reason: str) -> NoReturn:
    """Skip for want of pcscd/vpcd; under CI=true fail, so CI cannot pass by skipping."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"pcscd/vpcd needed under CI: {reason}")
    pytest.skip(reason)


_SESSION = pytest.StashKey["CardSession"]()
_CLOSED = pytest.StashKey[bool]()


def _runs_tests(config: pytest.Config) -> bool:
    """Not the pytest-xdist controller, which hands tests to its workers and runs none."""
    return hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None)


def start_session(config: pytest.Config) -> None:
    """At the session's start. In pcsc mode the PC/SC stack starts now, before any test:
    pcsc-lite's client library reads the socket to use (``PCSCLITE_CSOCK_NAME``) once per
    process, at its first call. In-process, nothing is imported until a test needs a card."""
    if config.getoption("--cartesim-transport") == "pcsc" and _runs_tests(config):
        card_session(config).start_stack()


def card_session(config: pytest.Config) -> CardSession:
    """The session's cards and PC/SC stack, made at first use."""
    if _SESSION not in config.stash:
        from cartesim.harness.pytest_plugin.cards import CardSession

        config.stash[_SESSION] = CardSession(
            config.getoption("--cartesim-transport"), config.getoption("--cartesim-pcscd")
        )
    return config.stash[_SESSION]


def finish_session(config: pytest.Config) -> None:
    """At the session's end: the cards out, the stack stopped (once)."""
    session = config.stash.get(_SESSION, None)
    if session is not None and not config.stash.get(_CLOSED, False):
        config.stash[_CLOSED] = True
        session.close()
