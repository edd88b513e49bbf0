"""The engine's API as an application meets it: the wrong kind of card, codes of the wrong type."""

from __future__ import annotations

from typing import Any

import pytest

from cartesim.core.cps import CpsCard
from cartesim.core.errors import BadCode, CardRemoved, WrongCard
from cartesim.core.trace import ListTracer
from cartesim.core.transport.direct import DirectTransport
from cartesim.core.vitale import VitaleCard
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.harness.stack.slots import InProcessSlot


def test_a_vitale_is_not_a_cps() -> None:
    with pytest.raises(WrongCard) as e:
        CpsCard(DirectTransport(load_card("vitale-famille")))
    assert str(e.value) == "Cette carte est une Carte Vitale, pas une CPS"


def test_a_cps_is_not_a_vitale() -> None:
    with pytest.raises(WrongCard) as e:
        VitaleCard(DirectTransport(load_card("cps-roulette")))
    assert str(e.value) == "Cette carte est une CPS, pas une Carte Vitale"


class _UnknownAtr:
    """A CPS behind an ATR the table does not know (a generation it lacks)."""

    def __init__(self, card: CardOS) -> None:
        self.card = card
        self.atr = bytes.fromhex("3B00")

    def process(self, raw: bytes) -> bytes:
        return self.card.process(raw)

    def reset(self) -> None:
        self.card.reset()


def test_an_unknown_atr_is_given_its_chance() -> None:
    card = CpsCard(DirectTransport(_UnknownAtr(load_card("cps-roulette"))))
    assert card.status().pin_tries_left == 3


def test_an_empty_reader_is_named_by_the_first_command() -> None:
    slot = InProcessSlot(0, load_card("cps-roulette"))
    t = slot.open()
    slot.remove()
    card = CpsCard(t)  # nothing to check yet: the card is out
    with pytest.raises(CardRemoved, match=r"APDU n°1"):
        card.status()


BAD_CODES: list[Any] = [1234, 12345678, b"1234", None, 12.34, "12a4", "123", "١٢٣٤", " 1234"]


@pytest.mark.parametrize("code", BAD_CODES, ids=repr)
def test_a_code_that_is_not_a_string_of_digits_is_bad_code(code: Any) -> None:
    t = DirectTransport(load_card("cps-roulette"))
    trace = ListTracer()
    t.tracers.append(trace)
    card = CpsCard(t)
    calls = [
        lambda: card.verify(code),
        lambda: card.read(code),
        lambda: card.change_pin(code, "4321", "4321"),
        lambda: card.change_pin("1234", code, code),
        lambda: card.unblock(code, "4321", "4321"),
        lambda: card.unblock("12345678", code, code),
    ]
    for call in calls:
        with pytest.raises(BadCode):
            call()
    assert list(trace) == []  # refused before anything reached the card
