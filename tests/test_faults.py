"""Fault injection from a profile: each fault is reported clearly (operation and APDU), never
half-applies an unblock or a PIN change, and the card recovers at the next insertion."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cartesim.core.cps import CpsCard
from cartesim.core.errors import CardError, CardMute, CardRemoved, InputError, LinkDropped
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.emulator.profile import load_profile
from cartesim.harness.stack.slots import InProcessSlot
from tests.helpers import faulty


def open_card(path: Path) -> tuple[CardOS, InProcessSlot, CpsCard]:
    """The card of ``path`` in an in-process reader slot, and the engine on it."""
    os_ = load_card(path)
    slot = InProcessSlot(0, os_)
    return os_, slot, CpsCard(slot.open())


def test_status_word_on_nth_apdu(tmp_path: Path) -> None:
    card_os, _, card = open_card(faulty(tmp_path, "cps-roulette", {"apdu": 2, "status_word": "6F00"}))
    with pytest.raises(CardError) as e:
        card.verify("1234")  # APDU 1: the guard's tries-left query; APDU 2: VERIFY
    assert (e.value.operation, e.value.sw) == ("VERIFY", 0x6F00)
    assert card_os.pin is not None and card_os.pin.tries_left == 3  # the command never ran
    card.verify("1234")  # the fault fired once


def test_delay(tmp_path: Path) -> None:
    _, _, card = open_card(faulty(tmp_path, "cps-roulette", {"apdu": 1, "delay_ms": 150}))
    started = time.monotonic()
    card.verify("1234")
    assert time.monotonic() - started >= 0.15


def test_mute_card_named_with_operation_and_apdu(tmp_path: Path) -> None:
    _, _, card = open_card(faulty(tmp_path, "cps-roulette", {"apdu": 2, "mute": True}))
    with pytest.raises(CardMute) as e:
        card.verify("1234")
    assert str(e.value) == "Carte muette (présentation du code porteur, APDU n°2 : 00 20 00 01)"
    card.verify("1234")


def test_removed_during_unblock_is_untouched_then_recovers(tmp_path: Path) -> None:
    card_os, slot, card = open_card(faulty(tmp_path, "cps-blocked", {"apdu": 2, "remove": True}))
    with pytest.raises(CardRemoved) as e:
        card.unblock("12345678", "4321", "4321")  # APDU 1: guard query, APDU 2: RESET RETRY COUNTER
    assert str(e.value) == "Carte retirée (déblocage, APDU n°2 : 00 2C 00 01)"
    assert card_os.pin is not None and card_os.unblock is not None
    assert (card_os.pin.code, card_os.pin.tries_left, card_os.unblock.uses_left) == ("1234", 0, 10)
    with pytest.raises(CardRemoved):
        card.status()  # still out
    slot.insert()  # the next insertion
    card.unblock("12345678", "4321", "4321")
    assert (card_os.pin.code, card_os.pin.tries_left, card_os.unblock.uses_left) == ("4321", 3, 9)


def test_removed_with_automatic_reinsertion(tmp_path: Path) -> None:
    _, _, card = open_card(
        faulty(tmp_path, "cps-roulette", {"apdu": 3, "remove": True, "reinsert_after_ms": 0})
    )
    with pytest.raises(CardRemoved, match="Lire CPS"):
        card.read("1234")
    assert card.read("1234").holder.nom == "ROULETTE RPPS"


def test_change_pin_interrupted_is_never_half_applied(tmp_path: Path) -> None:
    card_os, _t, card = open_card(faulty(tmp_path, "cps-roulette", {"apdu": 2, "drop_connection": True}))
    with pytest.raises(LinkDropped, match="changement du code porteur, APDU n°2"):
        card.change_pin("1234", "8642", "8642")
    assert card_os.pin is not None and (card_os.pin.code, card_os.pin.tries_left) == ("1234", 3)
    card.change_pin("1234", "8642", "8642")
    assert card_os.pin.code == "8642"


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ({"apdu": 1}, "exactly one of"),
        ({"apdu": 1, "mute": True, "remove": True}, "exactly one of"),
        ({"apdu": 0, "mute": True}, "greater than or equal to 1"),
        ({"apdu": 1, "status_word": "6F0"}, "should match pattern"),
        ({"apdu": 1, "delay_ms": 1, "reinsert_after_ms": 5}, "reinsert_after_ms goes with remove"),
        ({"apdu": 1, "explode": True}, "Extra inputs"),
    ],
)
def test_bad_faults(tmp_path: Path, fault: dict[str, Any], problem: str) -> None:
    path = faulty(tmp_path, "cps-roulette", fault)
    with pytest.raises(InputError, match=problem) as e:
        load_profile(path)
    assert ": faults[0]" in str(e.value)
