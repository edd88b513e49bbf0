"""APDU and BER-TLV codecs: round trips and refusals."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartesim.core import tlv
from cartesim.core.apdu import ApduFormatError, CommandApdu, ResponseApdu, redact_hex

commands = st.builds(
    CommandApdu,
    cla=st.integers(0, 255),
    ins=st.integers(0, 255),
    p1=st.integers(0, 255),
    p2=st.integers(0, 255),
    data=st.binary(max_size=255),
    le=st.none() | st.integers(1, 256),
)


@given(commands)
def test_command_round_trip(cmd: CommandApdu) -> None:
    assert CommandApdu.parse(cmd.to_bytes()) == cmd


@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_response_round_trip(data: bytes, sw: int) -> None:
    r = ResponseApdu(data, sw)
    assert ResponseApdu.parse(r.to_bytes()) == r


@pytest.mark.parametrize(
    ("raw", "case"),
    [("00A40000", 1), ("00B0000010", 2), ("00A4040C02AABB", 3), ("00A4040002AABB00", 4)],
)
def test_cases(raw: str, case: int) -> None:
    assert CommandApdu.parse(bytes.fromhex(raw)).case == case


@pytest.mark.parametrize(
    "raw", ["", "00", "00A400", "00A4000003AABB", "00A40000000001", "00A4000002AABBCCDD"]
)
def test_malformed_apdus_refused(raw: str) -> None:
    with pytest.raises(ApduFormatError):
        CommandApdu.parse(bytes.fromhex(raw))


def test_le_00_means_256() -> None:
    assert CommandApdu.parse(bytes.fromhex("00B0820000")).le == 256


def test_redaction_masks_pin_data_only() -> None:
    assert redact_hex(bytes.fromhex("0020000104 31323334".replace(" ", ""))) == "0020000104********"
    assert redact_hex(bytes.fromhex("00200001")) == "00200001"
    assert redact_hex(bytes.fromhex("00B0000010")) == "00B0000010"


# --- TLV ---------------------------------------------------------------------------------------
def _valid_tag() -> st.SearchStrategy[int]:
    one = st.integers(0x01, 0xFE).filter(lambda b: b & 0x1F != 0x1F)
    two = st.builds(
        lambda a, b: (a << 8) | b,
        st.integers(0, 255).map(lambda x: (x & 0xE0) | 0x1F).filter(lambda x: x != 0xFF),
        st.integers(0, 0x7F),
    )
    return one | two


tlvs = st.lists(st.builds(tlv.Tlv, _valid_tag(), st.binary(max_size=400)), max_size=5)


@given(tlvs)
def test_tlv_round_trip(items: list[tlv.Tlv]) -> None:
    assert tlv.decode(tlv.encode_all(items)) == items


@given(st.integers(0, 70_000))
def test_long_lengths_round_trip(n: int) -> None:
    value = bytes(n)
    assert tlv.decode(tlv.encode(0x80, value)) == [tlv.Tlv(0x80, value)]


@given(st.binary(max_size=64))
def test_decode_never_raises_anything_but_tlverror(raw: bytes) -> None:
    with contextlib.suppress(tlv.TlvError):
        tlv.decode(raw)


@pytest.mark.parametrize(
    "raw",
    ["80", "8005AABB", "1F", "9F81", "8080", "8185", "8F8101", "80840000000001"],
)
def test_malformed_tlv_refused(raw: str) -> None:
    with pytest.raises(tlv.TlvError):
        tlv.decode(bytes.fromhex(raw))


@pytest.mark.parametrize("tag", [0x00, 0xFF, 0x1F, 0x5F, 0x9F81, 0x8081])
def test_bad_tags_refused(tag: int) -> None:
    with pytest.raises(tlv.TlvError):
        tlv.encode_tag(tag)


def test_constructed_children() -> None:
    raw = tlv.encode(0xE1, tlv.encode(0x80, b"0") + tlv.encode(0x85, b"ROULETTE"))
    (outer,) = tlv.decode(raw)
    assert outer.constructed
    assert [c.value for c in outer.children()] == [b"0", b"ROULETTE"]
