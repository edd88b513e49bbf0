"""Which PC/SC stack a session or a command uses.

- ``private`` (the default): a ``PrivateStack`` of its own, no root needed, side by side with
  anything else on the machine;
- ``system``: the machine's pcscd and its vpcd readers (``Pcscd``: the running one, or started
  as root), as before private stacks existed; one user of the default vpcd ports at a time.

A process already inside a private stack (``PCSCLITE_CSOCK_NAME`` set, e.g. a command run by a
test) uses that one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cartesim.emulator.vpcd import ENV_VPCD_SOCKET
from cartesim.harness.stack.pcscd import Pcscd, PcscdUnavailable
from cartesim.harness.stack.private import ENV_PCSC_SOCKET, PrivateStack, StackUnavailable

MODES = ("private", "system")
Stack = PrivateStack | Pcscd


def new_stack(mode: str, readers: int = 2) -> Stack:
    """A stack of ``mode``, not started."""
    if mode not in MODES:
        raise ValueError(f"mode: one of {MODES}")
    return PrivateStack(readers) if mode == "private" else Pcscd()


def inside_a_stack() -> bool:
    """Whether this process was started inside a private stack (by a test, or an emulate)."""
    return bool(os.environ.get(ENV_PCSC_SOCKET) and os.environ.get(ENV_VPCD_SOCKET))


@contextmanager
def tool_stack(readers: int = 2, say: Callable[[str], None] = lambda _: None) -> Iterator[Stack | None]:
    """The stack for a command that puts emulated cards behind pcscd (demo, bench, crash test,
    scenarios through pcsc): the one it runs in, else a private one; where namespaces are refused,
    the machine's pcscd, and one line that says so. Yields None inside an existing stack."""
    if inside_a_stack():
        yield None
        return
    try:
        stack: Stack = PrivateStack(readers).start()
    except StackUnavailable as e:
        say(f"{e}: the machine's pcscd is used instead")
        try:
            stack = Pcscd().start()
        except PcscdUnavailable as why:
            raise PcscdUnavailable(f"{e}; and the machine's: {why}") from None
    try:
        yield stack
    finally:
        stack.stop()
