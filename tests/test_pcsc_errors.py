"""PcscTransport's mapping of PC/SC results to the engine's errors, with pyscard's ``scard``
replaced by a scripted stand-in (as python-fido2 tests its PC/SC device): every failure a reader
or pcscd can report, without pcscd or a reader."""

from __future__ import annotations

from typing import Any

import pytest

from cartesim.core import layout
from cartesim.core.errors import CardMute, CardRemoved, NoCard, NoReader, NoService, TransportError
from cartesim.core.transport import pcsc

real = pcsc.scard
READER = "Test Reader 00 00"
ATR = list(layout.ATR_CPS3)


class FakeScard:
    """pyscard's ``scard`` with its constants, and functions answering as the test says."""

    def __init__(self) -> None:
        for name in dir(real):
            if name.startswith("SCARD_"):
                setattr(self, name, getattr(real, name))
        self.error = real.error
        self.readers: list[str] = [READER]
        self.present = True
        self.results: dict[str, int] = {}  # function name -> result code to answer with
        self.responses: list[list[int]] = []
        self.calls: list[str] = []

    def _hr(self, name: str) -> int:
        self.calls.append(name)
        return self.results.get(name, real.SCARD_S_SUCCESS)

    def SCardGetErrorMessage(self, hr: int) -> str:
        return real.SCardGetErrorMessage(hr)

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        return self._hr("SCardEstablishContext"), 1

    def SCardReleaseContext(self, ctx: int) -> int:
        return self._hr("SCardReleaseContext")

    def SCardListReaders(self, ctx: int, groups: list[str]) -> tuple[int, list[str]]:
        return self._hr("SCardListReaders"), self.readers

    def SCardGetStatusChange(self, ctx: int, timeout: int, states: list[Any]) -> tuple[int, list[Any]]:
        hr = self._hr("SCardGetStatusChange")
        state = real.SCARD_STATE_PRESENT if self.present else real.SCARD_STATE_EMPTY
        out = [(name, state | real.SCARD_STATE_CHANGED, ATR if self.present else []) for name, _ in states]
        return hr, out

    def SCardConnect(self, ctx: int, reader: str, share: int, protocols: int) -> tuple[int, int, int]:
        return self._hr("SCardConnect"), 7, real.SCARD_PROTOCOL_T0

    def SCardReconnect(self, hcard: int, share: int, protocols: int, init: int) -> tuple[int, int]:
        return self._hr("SCardReconnect"), real.SCARD_PROTOCOL_T0

    def SCardDisconnect(self, hcard: int, disposition: int) -> int:
        return self._hr("SCardDisconnect")

    def SCardStatus(self, hcard: int) -> tuple[int, str, int, int, list[int]]:
        return self._hr("SCardStatus"), READER, 0, real.SCARD_PROTOCOL_T0, ATR

    def SCardTransmit(self, hcard: int, protocol: int, command: list[int]) -> tuple[int, list[int]]:
        hr = self._hr("SCardTransmit")
        return hr, self.responses.pop(0) if self.responses else [0x90, 0x00]

    def SCardBeginTransaction(self, hcard: int) -> int:
        return self._hr("SCardBeginTransaction")

    def SCardEndTransaction(self, hcard: int, disposition: int) -> int:
        return self._hr("SCardEndTransaction")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeScard:
    stand_in = FakeScard()
    monkeypatch.setattr(pcsc, "scard", stand_in)
    return stand_in


def _open() -> pcsc.PcscTransport:
    return pcsc.PcscTransport(READER)


def test_a_working_reader(fake: FakeScard) -> None:
    with _open() as t:
        assert t.reader == READER
        assert t.atr == layout.ATR_CPS3
        assert t.transmit(b"\x00\xa4\x00\x0c") == b"\x90\x00"
    assert fake.calls[-2:] == ["SCardDisconnect", "SCardReleaseContext"]


@pytest.mark.parametrize(
    "code", ["SCARD_E_NO_SERVICE", "SCARD_E_SERVICE_STOPPED", "SCARD_E_NO_READERS_AVAILABLE"]
)
def test_no_pcscd_at_all(fake: FakeScard, code: str) -> None:
    fake.results["SCardEstablishContext"] = getattr(real, code)
    with pytest.raises(NoService, match="pcscd ne répond pas"):
        _open()


def test_no_reader_of_that_name(fake: FakeScard) -> None:
    with pytest.raises(NoReader, match="Lecteur « Other » introuvable"):
        pcsc.PcscTransport("Other")
    fake.readers = []
    fake.results["SCardListReaders"] = real.SCARD_E_NO_READERS_AVAILABLE
    with pytest.raises(NoReader, match=r"^Aucun lecteur$"):
        _open()


def test_no_card_in_the_reader(fake: FakeScard) -> None:
    fake.present = False
    with pytest.raises(NoCard, match=f"Pas de carte dans le lecteur « {READER} »"):
        _open()


def test_connect_refused_because_another_application_holds_the_card(fake: FakeScard) -> None:
    fake.results["SCardConnect"] = real.SCARD_E_SHARING_VIOLATION
    with pytest.raises(TransportError, match="occupé par une autre application"):
        _open()
    assert "SCardReleaseContext" in fake.calls  # nothing leaks when opening fails


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [
        ("SCARD_W_REMOVED_CARD", CardRemoved, "Carte retirée"),
        ("SCARD_E_NO_SMARTCARD", CardRemoved, "Carte retirée"),
        ("SCARD_E_READER_UNAVAILABLE", CardRemoved, "Carte retirée"),
        ("SCARD_E_NO_SERVICE", NoService, "pcscd ne répond pas"),
        ("SCARD_E_UNKNOWN_READER", NoReader, "introuvable"),
        ("SCARD_W_UNRESPONSIVE_CARD", NoCard, "Carte muette"),
        ("SCARD_E_PROTO_MISMATCH", TransportError, r"Erreur PC/SC \(échange\) .*\[0x8010000F\]"),
    ],
)
def test_transmit_failures(fake: FakeScard, code: str, error: type[TransportError], message: str) -> None:
    with _open() as t:
        fake.results["SCardTransmit"] = getattr(real, code)
        with t.operation("Lire CPS"), pytest.raises(error, match=message) as e:
            t.transmit(b"\x00\x20\x00\x01")
    assert "(Lire CPS, APDU n°1 : 00 20 00 01)" in str(e.value)  # which operation, which APDU


def test_reset_by_another_application_is_taken_as_is(fake: FakeScard) -> None:
    answers = [real.SCARD_W_RESET_CARD, real.SCARD_S_SUCCESS]

    def reset_once(hcard: int, protocol: int, command: list[int]) -> tuple[int, list[int]]:
        return answers.pop(0), [0x90, 0x00]

    with _open() as t:
        fake.SCardTransmit = reset_once  # type: ignore[method-assign]
        assert t.transmit(b"\x00\xa4\x00\x0c") == b"\x90\x00"  # sent again after the reconnection
    assert "SCardReconnect" in fake.calls and answers == []


def test_an_answer_without_status_word_from_a_card_still_there_is_a_mute_card(
    fake: FakeScard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pcsc, "REMOVAL_POLL", 0.0)
    with _open() as t:
        fake.responses = [[]]
        with pytest.raises(CardMute, match="n'a pas répondu"):
            t.transmit(b"\x00\xa4\x00\x0c")


def test_transaction_failure_names_the_reader(fake: FakeScard) -> None:
    with _open() as t:
        fake.results["SCardBeginTransaction"] = real.SCARD_E_SHARING_VIOLATION
        with pytest.raises(TransportError, match=f"Lecteur « {READER} » occupé"), t.transaction():
            pass
