"""The emulated cards through the real stack: VpcdSlot → vpcd → pcscd → pyscard → PcscTransport."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from pathlib import Path

import pytest

from cartesim.core import layout, report
from cartesim.core.atr import CardKind, detect
from cartesim.core.cps import CpsCard
from cartesim.core.errors import CardBlocked, CardRemoved, NoCard, NoReader, NoService, WrongCode
from cartesim.core.sw import SW
from cartesim.core.transport.direct import DirectTransport
from cartesim.core.vitale import VitaleCard
from cartesim.emulator.cards import load_card
from cartesim.harness.stack.pcscd import VPCD_READERS, vpcd_reader
from cartesim.harness.stack.slots import CARD_TIMEOUT, VpcdSlot
from cartesim.harness.stack.stacks import Stack

if os.environ.get("CI") == "true":
    from cartesim.core.transport import pcsc  # under CI a missing pyscard must fail, not skip
else:
    pcsc = pytest.importorskip("cartesim.core.transport.pcsc", reason="pyscard is not installed")

pytestmark = pytest.mark.e2e

GOLDEN = Path(__file__).parents[1] / "data" / "lire-cps-roulette.golden.txt"
SELECT_CPS3 = bytes.fromhex("00A4040C0DE828BD080F8025000001FF0010")
PIN, UNBLOCK = "1234", "12345678"
CPS_SLOT, VITALE_SLOT = 0, 1  # as the cps_vpcd / vitale_vpcd fixtures insert them


def test_readers_and_atrs(cps_vpcd: VpcdSlot, vitale_vpcd: VpcdSlot) -> None:
    assert set(VPCD_READERS) <= set(pcsc.reader_names())
    vitale = pcsc.wait_reader(vpcd_reader(VITALE_SLOT), present=True, timeout=CARD_TIMEOUT)
    assert vitale is not None
    cps = pcsc.wait_reader(vpcd_reader(CPS_SLOT), present=True, timeout=CARD_TIMEOUT)
    assert cps is not None
    assert cps.atr == layout.ATR_CPS3
    assert detect(vitale.atr or b"") is CardKind.VITALE
    found = pcsc.first_reader_with(lambda atr: detect(atr) is CardKind.VITALE)
    assert found is not None
    assert found.name == vpcd_reader(VITALE_SLOT)
    infos = {r.name: r for r in pcsc.list_readers()}
    assert infos[vpcd_reader(CPS_SLOT)].atr == layout.ATR_CPS3


def test_atr_and_select_cps3(cps_pcsc: pcsc.PcscTransport) -> None:
    assert cps_pcsc.atr == layout.ATR_CPS3
    assert cps_pcsc.transmit(SELECT_CPS3) == b"\x90\x00"


def test_reader_by_regex(cps_vpcd: VpcdSlot) -> None:
    with pcsc.PcscTransport(re.compile(r"^Virtual PCD 00 0\d$"), timeout=CARD_TIMEOUT) as t:
        assert t.reader == vpcd_reader(CPS_SLOT)  # the only one holding a card
        assert t.atr == layout.ATR_CPS3


def test_lire_cps_matches_golden(cps_pcsc: pcsc.PcscTransport) -> None:
    data = CpsCard(cps_pcsc).read(PIN)
    assert report.lire_cps(data) == GOLDEN.read_text(encoding="utf-8")


def test_lockout_then_unblock(cps_pcsc: pcsc.PcscTransport) -> None:
    cps = CpsCard(cps_pcsc)
    for expected_sw, left in ((0x63C2, 2), (0x63C1, 1)):
        with pytest.raises(WrongCode) as wrong:
            cps.verify("0000")
        assert (wrong.value.sw, wrong.value.tries_left) == (expected_sw, left)
    with pytest.raises(CardBlocked) as blocked:
        cps.verify("0000", confirm_last_try=True)
    assert blocked.value.sw == SW.AUTH_BLOCKED == 0x6983
    with pytest.raises(CardBlocked):
        cps.verify(PIN)  # the right code no longer helps
    assert cps.status().blocked

    cps.unblock(UNBLOCK, "4321", "4321")
    status = cps.status()
    assert status.pin_tries_left == 3
    assert status.unblock_uses_left == 9
    assert report.lire_cps(cps.read("4321")) == GOLDEN.read_text(encoding="utf-8")


def test_power_cycle_clears_security_status(cps_pcsc: pcsc.PcscTransport) -> None:
    cps = CpsCard(cps_pcsc)
    cps.verify(PIN)
    assert cps.status().pin_verified
    cps_pcsc.power_cycle()
    assert not cps.status().pin_verified


def test_remove_and_insert_keeps_counters(cps_vpcd: VpcdSlot, cps_pcsc: pcsc.PcscTransport) -> None:
    cps = CpsCard(cps_pcsc)
    with pytest.raises(WrongCode):
        cps.verify("0000")
    cps.verify(PIN)  # back to 3 tries, and verified
    with pytest.raises(WrongCode):
        cps.verify("9999")  # 2 tries left, security status lost

    cps_vpcd.remove()
    assert pcsc.wait_reader(vpcd_reader(CPS_SLOT), present=False, timeout=CARD_TIMEOUT)
    with pytest.raises(CardRemoved, match="Carte retirée"):
        cps_pcsc.transmit(SELECT_CPS3)
    with pytest.raises(NoCard, match="Pas de carte dans le lecteur « Virtual PCD 00 00 »"):
        pcsc.PcscTransport(vpcd_reader(CPS_SLOT))

    cps_vpcd.insert()
    cps_pcsc.reconnect(timeout=CARD_TIMEOUT)
    status = cps.status()
    assert status.pin_tries_left == 2  # the counter survived the removal
    assert not status.pin_verified
    assert report.lire_cps(cps.read(PIN)) == GOLDEN.read_text(encoding="utf-8")


def test_reset_by_another_application_is_absorbed(cps_pcsc: pcsc.PcscTransport) -> None:
    cps = CpsCard(cps_pcsc)
    cps.verify(PIN)
    with pcsc.PcscTransport(vpcd_reader(CPS_SLOT)) as other:
        other.power_cycle()
    # Our handle gets SCARD_W_RESET_CARD once: acknowledged, the command resent.
    assert cps_pcsc.transmit(SELECT_CPS3) == b"\x90\x00"
    assert not cps.status().pin_verified


def test_vitale_read_matches_direct(vitale_pcsc: pcsc.PcscTransport) -> None:
    through_pcsc = VitaleCard(vitale_pcsc).read()
    direct = VitaleCard(DirectTransport(load_card("vitale-famille"))).read()
    assert through_pcsc == direct
    assert dataclasses.asdict(through_pcsc)["assure"]["nom"] == "DUPONT"
    assert len(through_pcsc.beneficiaires) >= 3


def test_nested_transactions_are_exclusive(cps_vpcd: VpcdSlot, cps_pcsc: pcsc.PcscTransport) -> None:
    other = pcsc.PcscTransport(vpcd_reader(CPS_SLOT), timeout=CARD_TIMEOUT)
    entered = threading.Event()
    released_at: list[float] = []

    def contender() -> None:
        with other.transaction():
            entered.set()
            released_at.append(time.monotonic())

    try:
        with cps_pcsc.transaction():
            with cps_pcsc.transaction():  # nested: no second SCardBeginTransaction
                assert cps_pcsc.transmit(SELECT_CPS3) == b"\x90\x00"
                worker = threading.Thread(target=contender)
                worker.start()
                assert not entered.wait(0.3), "another handle got in during our transaction"
            assert cps_pcsc.transmit(SELECT_CPS3) == b"\x90\x00"  # still ours after the inner exit
            assert not entered.is_set()
            ended = time.monotonic()
        worker.join(CARD_TIMEOUT)
        assert entered.is_set()
        assert released_at[0] >= ended
    finally:
        other.close()


def test_reader_errors(pcscd: Stack, cps_vpcd: VpcdSlot) -> None:
    with pytest.raises(NoReader, match="Lecteur « Pas un lecteur » introuvable"):
        pcsc.PcscTransport("Pas un lecteur")
    with pytest.raises(NoReader):
        pcsc.PcscTransport(re.compile("^Rien de tel$"))
    started = time.monotonic()
    with pytest.raises(NoCard, match="Pas de carte dans le lecteur « Virtual PCD 00 01 »"):
        pcsc.PcscTransport(vpcd_reader(VITALE_SLOT), timeout=0.3)
    assert time.monotonic() - started < 2


def test_card_survives_pcscd_restart(pcscd: Stack, cps_vpcd: VpcdSlot) -> None:
    if not pcscd.owned:
        pytest.skip("pcscd was already running: not ours to restart")
    with pcsc.PcscTransport(vpcd_reader(CPS_SLOT), timeout=CARD_TIMEOUT) as t, pytest.raises(WrongCode):
        CpsCard(t).verify("0000")
    pcscd.pause_pcscd()
    try:
        with pytest.raises(NoService, match="Service PC/SC indisponible"):
            pcsc.list_readers()
    finally:
        pcscd.resume_pcscd()
    assert cps_vpcd.served.wait_present(CARD_TIMEOUT)  # the card reconnected by itself
    with pcsc.PcscTransport(vpcd_reader(CPS_SLOT), timeout=CARD_TIMEOUT) as t:
        assert CpsCard(t).status().pin_tries_left == 2  # same card object, counters kept
