"""Model-based test: a hypothesis state machine drives the emulated CPS and checks every answer
against a small reference model of the counters and states.

It runs on the transport of the session (`--cartesim-transport`): in-process in the default env,
through pcscd + vpcd in e2e. `HYPOTHESIS_PROFILE=thorough` runs at least 5,000 steps; the count of
steps is printed at the end of the session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from cartesim.harness.pytest_plugin.cards import CardFactory, InsertedCard

STEPS = {"count": 0}
PIN_MAX, UNBLOCK_MAX, USES_MAX = 3, 10, 10
UNBLOCK_CODE = "12345678"

pins = st.text("0123456789", min_size=4, max_size=8)


@dataclass
class Model:
    """What a CPS must do, in ten lines: the reference the card is checked against."""

    code: str = "1234"
    tries: int = PIN_MAX
    unblock_tries: int = UNBLOCK_MAX
    uses: int = USES_MAX
    verified: bool = False

    def counter(self, left: int) -> str:
        return "6983" if left == 0 else f"63C{left:X}"

    def verify(self, code: str) -> str:
        if self.tries == 0:
            return "6983"
        if code == self.code:
            self.tries, self.verified = PIN_MAX, True
            return "9000"
        self.tries -= 1
        self.verified = False
        return self.counter(self.tries)

    def query(self) -> str:
        if self.tries == 0:
            return "6983"
        return "9000" if self.verified else self.counter(self.tries)

    def change(self, old: str, new: str) -> str:
        if self.tries == 0:
            return "6983"
        if old != self.code:
            self.tries -= 1
            self.verified = False
            return self.counter(self.tries)
        self.code, self.tries, self.verified = new, PIN_MAX, True
        return "9000"

    def unblock(self, code: str, new: str) -> str:
        if self.unblock_tries == 0 or self.uses == 0:
            return "6983"
        if code != UNBLOCK_CODE:
            self.unblock_tries -= 1
            return self.counter(self.unblock_tries)
        self.unblock_tries, self.uses = UNBLOCK_MAX, self.uses - 1
        self.code, self.tries, self.verified = new, PIN_MAX, False
        return "9000"

    def unblock_query(self) -> str:
        return "6983" if self.unblock_tries == 0 or self.uses == 0 else self.counter(self.unblock_tries)


def _hex(code: str) -> str:
    return code.encode().hex().upper()


class CpsMachine(RuleBasedStateMachine):
    factory: CardFactory  # set by the test before the machine runs

    @initialize()
    def insert(self) -> None:
        self.card: InsertedCard = self.factory.insert("cps-roulette")
        self.model = Model()

    def send(self, hexcmd: str) -> str:
        STEPS["count"] += 1
        return self.card.transport.transmit(bytes.fromhex(hexcmd)).hex().upper()

    def check(self, hexcmd: str, expected: str) -> None:
        got = self.send(hexcmd)
        assert got == expected, f"{hexcmd[:10]}…: card {got}, model {expected}"

    @rule()
    def verify_right(self) -> None:
        code = self.model.code
        self.check(f"00200001{len(code):02X}{_hex(code)}", self.model.verify(code))

    @rule(code=pins)
    def verify_any(self, code: str) -> None:
        self.check(f"00200001{len(code):02X}{_hex(code)}", self.model.verify(code))

    @rule()
    def tries_left_query(self) -> None:
        self.check("00200001", self.model.query())

    @rule()
    def unblock_tries_left_query(self) -> None:
        self.check("00200002", self.model.unblock_query())

    @rule(new=pins, right_old=st.booleans())
    def change(self, new: str, right_old: bool) -> None:
        current = self.model.code
        # the card splits old‖new at the current code's length: a wrong old code has that length
        old = current if right_old else str((int(current[0]) + 1) % 10) + current[1:]
        data = old + new
        self.check(f"00240001{len(data):02X}{_hex(data)}", self.model.change(old, new))

    @rule(new=pins, right=st.booleans())
    def unblock(self, new: str, right: bool) -> None:
        code = UNBLOCK_CODE if right else "00000000"
        data = code + new
        self.check(f"002C0001{len(data):02X}{_hex(data)}", self.model.unblock(code, new))

    @rule()
    def power_cycle(self) -> None:
        self.card.power_cycle()
        self.model.verified = False

    @rule()
    def remove_and_insert(self) -> None:
        self.card.remove()
        self.card.insert()
        self.model.verified = False

    def teardown(self) -> None:
        if hasattr(self, "card"):
            self.card.transport.close()

    @invariant()
    def counters_agree(self) -> None:
        if not hasattr(self, "card"):
            return
        pin, unblock = self.card.os.pin, self.card.os.unblock
        assert pin is not None
        assert unblock is not None
        assert (pin.tries_left, unblock.tries_left, unblock.uses_left) == (
            self.model.tries,
            self.model.unblock_tries,
            self.model.uses,
        )


def test_cps_against_model(cartesim: CardFactory) -> None:
    CpsMachine.factory = cartesim
    if os.environ.get("HYPOTHESIS_PROFILE") == "thorough":
        chosen = settings(max_examples=250, stateful_step_count=50, deadline=None)
    elif cartesim.mode == "pcsc":
        # each removal costs pcscd's ~400 ms poll: fewer, shorter runs through the real stack
        chosen = settings(max_examples=5, stateful_step_count=25, deadline=None)
    else:
        chosen = settings(max_examples=40, stateful_step_count=50, deadline=None)
    run_state_machine_as_test(CpsMachine, settings=chosen)
    assert STEPS["count"] > 0
