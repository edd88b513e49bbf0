"""The card side of vpcd alone, against a stand-in for vpcd: no pcscd needed, in-process suite."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from cartesim.core import layout
from cartesim.core.atr import CardKind, detect
from cartesim.emulator.cards import load_card
from cartesim.emulator.vpcd import VpcdCard
from tests.helpers import FakeVpcd

TIMEOUT = 5.0  # a generous bound on a loaded machine; nothing is timed
PIN = "1234"  # the code porteur of cps-roulette


@pytest.fixture
def fake_vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


def test_vpcd_framing_power_and_redaction(fake_vpcd: FakeVpcd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cartesim.emulator.vpcd")
    with VpcdCard(load_card("cps-roulette"), "127.0.0.1", fake_vpcd.port) as card:
        fake_vpcd.accept()
        assert card.wait_connected(TIMEOUT)
        fake_vpcd.send(b"\x01")  # power on: no answer
        assert fake_vpcd.ask(b"\x04") == layout.ATR_CPS3
        assert card.wait_present(TIMEOUT)
        assert fake_vpcd.ask(bytes.fromhex("0020000104") + PIN.encode()) == b"\x90\x00"
        assert fake_vpcd.ask(bytes.fromhex("00200001")) == b"\x90\x00"  # verified
        fake_vpcd.send(b"\x00")  # power off: security status goes
        assert fake_vpcd.ask(bytes.fromhex("00200001")) == b"\x63\xc3"
    assert "connected to vpcd 127.0.0.1:" in caplog.text
    assert "0020000104********" in caplog.text
    assert PIN.encode().hex() not in caplog.text.lower()


def test_vpcd_reconnects_and_keeps_the_card(fake_vpcd: FakeVpcd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cartesim.emulator.vpcd")
    with VpcdCard(load_card("cps-roulette"), "127.0.0.1", fake_vpcd.port) as card:
        fake_vpcd.accept()
        assert fake_vpcd.ask(bytes.fromhex("002000010430303030")) == b"\x63\xc2"
        fake_vpcd.drop()  # vpcd went away (pcscd stopped)
        fake_vpcd.accept()  # ... and the card came back by itself
        assert fake_vpcd.ask(bytes.fromhex("00200001")) == b"\x63\xc2"  # same card, counter kept
        assert "vpcd went away, reconnecting" in caplog.text

        card.remove()
        assert fake_vpcd.conn is not None
        assert fake_vpcd.conn.recv(1) == b""  # removal is the connection closing
        fake_vpcd.drop()
        fake_vpcd.server.settimeout(0.3)
        with pytest.raises(TimeoutError):
            fake_vpcd.accept()  # out of the reader, it stays out
        fake_vpcd.server.settimeout(TIMEOUT)
        card.insert()
        fake_vpcd.accept()
        assert fake_vpcd.ask(b"\x04") == layout.ATR_CPS3
        serving = card._thread
        started = time.monotonic()
    # stop() wakes the serving thread out of its recv: it has ended when stop() returns (the
    # join's own timeout would leave it alive). How long that took is printed, not asserted.
    assert serving is not None and not serving.is_alive()
    print(f"vpcd card stopped in {(time.monotonic() - started) * 1000:.1f} ms")


def test_vpcd_waits_for_vpcd_to_appear() -> None:
    probe = FakeVpcd()
    port = probe.port
    probe.close()  # nobody listens there now: the card retries with backoff
    card = VpcdCard(load_card("vitale-famille"), "127.0.0.1", port).start()
    try:
        assert not card.wait_connected(0.3)
        late = FakeVpcd(port)
        try:
            late.accept()  # backoff is capped at 1 s
            assert card.wait_connected(TIMEOUT)
            assert detect(late.ask(b"\x04")) is CardKind.VITALE
        finally:
            late.close()
    finally:
        card.stop()
