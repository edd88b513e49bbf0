"""PIN rules: tries-left query, verify, change, unblock, counters written before the comparison."""

from __future__ import annotations

import pytest

from cartesim.core.cps import CpsCard
from cartesim.core.errors import (
    BadCode,
    CardBlocked,
    CardDefinitivelyBlocked,
    CodeKind,
    LastTryNotConfirmed,
    WrongCode,
)
from cartesim.core.trace import ListTracer
from cartesim.core.transport import Transport
from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.harness.pytest_plugin.cards import CardFactory
from tests.helpers import CARDS, apdu

VERIFY_1234 = "0020000104 31323334"
VERIFY_0000 = "0020000104 30303030"
QUERY = "00200001"
UNBLOCK_OK = "002C00010C 3132333435363738 34333231"  # 12345678 + 4321
UNBLOCK_BAD = "002C00010C 3030303030303030 34333231"


def test_tries_left_query_never_consumes(cps_os: CardOS) -> None:
    for _ in range(5):
        assert apdu(cps_os, QUERY) == "63C3"
    assert cps_os.pin is not None
    assert cps_os.pin.tries_left == 3


def test_three_wrong_codes_then_blocked(cps_os: CardOS) -> None:
    assert apdu(cps_os, VERIFY_0000) == "63C2"
    assert apdu(cps_os, QUERY) == "63C2"
    assert apdu(cps_os, VERIFY_0000) == "63C1"
    assert apdu(cps_os, VERIFY_0000) == "6983"
    assert apdu(cps_os, QUERY) == "6983"
    assert apdu(cps_os, VERIFY_1234) == "6983"  # the right code is refused too
    assert apdu(cps_os, VERIFY_0000) == "6983"


def test_right_code_restores_counter_and_query_says_verified(cps_os: CardOS) -> None:
    apdu(cps_os, VERIFY_0000)
    assert apdu(cps_os, VERIFY_1234) == "9000"
    assert apdu(cps_os, QUERY) == "9000"
    assert cps_os.pin is not None
    assert cps_os.pin.tries_left == 3
    apdu(cps_os, VERIFY_0000)  # a wrong code drops the security status
    assert apdu(cps_os, QUERY) == "63C2"


def test_counter_written_before_comparison_and_restored_on_success(cps_os: CardOS) -> None:
    seen: list[int] = []
    assert cps_os.pin is not None
    pin = cps_os.pin
    cps_os.on_persist = lambda: seen.append(pin.tries_left)
    apdu(cps_os, VERIFY_1234)
    assert seen == [2, 3]  # decremented and written, then restored
    seen.clear()
    apdu(cps_os, VERIFY_0000)
    assert seen == [2]


def test_power_cycle_clears_verified_not_counters(cps_os: CardOS) -> None:
    apdu(cps_os, VERIFY_0000)
    apdu(cps_os, VERIFY_1234)
    apdu(cps_os, VERIFY_0000)
    cps_os.reset()
    assert apdu(cps_os, QUERY) == "63C2"


def test_unblock_resets_pin_and_counts_a_use(cps_os: CardOS) -> None:
    for _ in range(3):
        apdu(cps_os, VERIFY_0000)
    assert apdu(cps_os, "00200002") == "63CA"  # unblock code: 10 tries
    assert apdu(cps_os, UNBLOCK_BAD) == "63C9"
    assert apdu(cps_os, "00200002") == "63C9"
    assert apdu(cps_os, UNBLOCK_OK) == "9000"
    assert apdu(cps_os, "00200002") == "63CA"
    assert apdu(cps_os, QUERY) == "63C3"
    assert apdu(cps_os, VERIFY_1234) == "63C2"  # the old code is gone
    assert apdu(cps_os, "0020000104 34333231") == "9000"
    assert cps_os.unblock is not None
    assert cps_os.unblock.uses_left == 9
    # the unblock code's SDO: 9A tries max, 9B tries left, 9C uses max, 9D uses left (T=0: 61xx)
    assert apdu(cps_os, "00CB3FFF0A 4D087006BF810202A080") == "611E"
    assert apdu(cps_os, "00C000001E") == (
        "701CBF81021 8A0169A010A9B010A9C010A9D0109A1088C06F3FF00FFFF00".replace(" ", "") + "9000"
    )


def test_unblock_with_6_digit_new_pin(cps_os: CardOS) -> None:
    assert apdu(cps_os, "002C00010E 3132333435363738 393837363534") == "9000"
    assert apdu(cps_os, "0020000106 393837363534") == "9000"


def test_wrong_unblock_codes_until_definitively_blocked(cps_os: CardOS) -> None:
    for _ in range(3):
        apdu(cps_os, VERIFY_0000)
    for left in range(9, 0, -1):
        assert apdu(cps_os, UNBLOCK_BAD) == f"63C{left:X}"
    assert apdu(cps_os, UNBLOCK_BAD) == "6983"
    assert apdu(cps_os, UNBLOCK_OK) == "6983"  # even the right code, forever
    assert apdu(cps_os, "00200002") == "6983"


def test_usage_counter_exhausted_blocks_unblock() -> None:
    card = load_card(CARDS / "cpf-infirmier-remplacant.yaml")  # 3 unblocks allowed
    for _ in range(3):
        assert apdu(card, "002C00010C 3133353732343638 31313131") == "9000"
    assert apdu(card, "002C00010C 3133353732343638 31313131") == "6983"
    assert card.unblock is not None
    assert card.unblock.tries_left == 10


def test_change_pin(cps_os: CardOS) -> None:
    assert apdu(cps_os, "0024000108 30303030 35353535") == "63C2"  # wrong old code
    assert apdu(cps_os, "002400010A 31323334 353535353535") == "9000"
    assert apdu(cps_os, QUERY) == "9000"  # changing verifies
    cps_os.reset()
    assert apdu(cps_os, VERIFY_1234) == "63C2"
    assert apdu(cps_os, "0020000106 353535353535") == "9000"


def test_change_pin_blocked(cps_os: CardOS) -> None:
    for _ in range(3):
        apdu(cps_os, VERIFY_0000)
    assert apdu(cps_os, "0024000108 31323334 35353535") == "6983"


def test_last_try_profile_and_blocked_profile() -> None:
    last = load_card(CARDS / "cps-last-try.yaml")
    assert apdu(last, QUERY) == "63C1"
    assert apdu(last, VERIFY_0000) == "6983"
    blocked = load_card(CARDS / "cps-blocked.yaml")
    assert apdu(blocked, QUERY) == "6983"
    assert apdu(blocked, UNBLOCK_OK) == "9000"
    definitive = load_card(CARDS / "cps-definitively-blocked.yaml")
    assert apdu(definitive, UNBLOCK_OK) == "6983"


# --- the engine over DirectTransport -----------------------------------------------------------
def test_engine_lockout_and_unblock(cps_transport: Transport, apdu_trace: ListTracer) -> None:
    card = CpsCard(cps_transport)
    with pytest.raises(WrongCode) as e:
        card.verify("0000")
    assert (e.value.kind, e.value.tries_left, str(e.value)) == (
        CodeKind.PORTEUR,
        2,
        "Code porteur erroné (reste 2 tentative(s))",
    )
    with pytest.raises(WrongCode):
        card.verify("0000")
    sent = len(apdu_trace)
    with pytest.raises(LastTryNotConfirmed, match="Dernière tentative du code porteur"):
        card.verify("0000")  # one try left: the guard sends no code without a yes
    assert [ex.command for ex in apdu_trace[sent:]] == ["00200001"]  # only the tries-left query
    asked: list[CodeKind] = []

    def yes(kind: CodeKind) -> bool:
        asked.append(kind)
        return True

    with pytest.raises(CardBlocked, match=r"^Carte bloquée$"):
        card.verify("0000", confirm_last_try=yes)
    assert asked == [CodeKind.PORTEUR]
    st = card.status()
    assert st.blocked
    assert not st.definitively_blocked
    assert st.unblock_tries_left == 10
    with pytest.raises(WrongCode, match=r"Code de déblocage erroné \(reste 9"):
        card.unblock("00000000", "4321", "4321")
    card.unblock("12345678", "4321", "4321")
    card.verify("4321")
    st = card.status()
    assert st.pin_verified
    assert st.pin_tries_left == 3
    assert st.unblock_uses_left == 9


def test_engine_definitively_blocked(cartesim: CardFactory) -> None:
    card = CpsCard(cartesim.insert("cps-definitively-blocked").transport)
    st = card.status()
    assert st.definitively_blocked
    assert st.unblock_tries_left == 0
    with pytest.raises(CardDefinitivelyBlocked, match=r"^Carte définitivement bloquée$"):
        card.unblock("12345678", "4321", "4321")


@pytest.mark.parametrize(
    ("code", "new", "confirm", "message"),
    [
        ("1234567", "4321", "4321", "8 chiffres"),
        ("1234567a", "4321", "4321", "8 chiffres"),
        ("12345678", "432", "432", "de 4 à 8 chiffres"),
        ("12345678", "123456789", "123456789", "de 4 à 8 chiffres"),
        ("12345678", "4321", "4322", "confirmation"),
    ],
)
def test_engine_refuses_bad_input_before_touching_the_card(
    cps_os: CardOS, code: str, new: str, confirm: str, message: str
) -> None:
    sent = ListTracer()
    t = DirectTransport(cps_os)
    t.tracers.append(sent)
    with pytest.raises(BadCode, match=message) as e:
        CpsCard(t).unblock(code, new, confirm)
    assert sent == [] and sent.events == []
    assert code not in str(e.value)
    assert new not in str(e.value)


def test_unblock_last_try_guard(cartesim: CardFactory) -> None:
    inserted = cartesim.insert("cps-blocked")
    assert inserted.os.unblock is not None
    inserted.os.unblock.tries_left = 1
    card = CpsCard(inserted.transport)
    with pytest.raises(LastTryNotConfirmed, match="Dernière tentative du code de déblocage"):
        card.unblock("00000000", "4321", "4321")
    assert inserted.os.unblock.tries_left == 1  # nothing was sent
    with pytest.raises(CardDefinitivelyBlocked):
        card.unblock("00000000", "4321", "4321", confirm_last_try=True)
