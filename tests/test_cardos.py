"""The card OS, APDU by APDU: every status-word path, file selection, T=0 rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartesim.core import layout, tlv
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import build_card
from cartesim.emulator.fs import EF
from cartesim.emulator.profile import load_profile
from tests.helpers import CARDS, apdu

PROFILES = {name: load_profile(CARDS / f"{name}.yaml") for name in ("cps-roulette", "vitale-famille")}

SELECT_IAS = "00A4040C0D E828BD080F8025000001FF0010"
SELECT_HOLDER = "00A4080C04 0001D001"
SELECT_SITUATION1 = "00A4080C04 0001D120"


VITALE_PROFILES = sorted(p.stem for p in CARDS.glob("vitale-*.yaml"))


def _value(items: list[tlv.Tlv], tag: int) -> bytes:
    found = tlv.find(items, tag)
    assert found is not None, f"tag {tag:02X} missing"
    return found.value


def test_cps3_aid_selectable_as_independent_tools_send_it(cps_os: CardOS) -> None:
    assert apdu(cps_os, SELECT_IAS) == "9000"
    assert apdu(cps_os, "00A4040C08 8025000001FF0002") == "9000"  # CPS2ter AID
    assert apdu(cps_os, "00A4040C05 E828BD080F") == "9000"  # partial DF name


@pytest.mark.parametrize(
    ("command", "sw"),
    [
        ("80A4000C023F00", "6E00"),  # class not supported
        ("00FF0000", "6D00"),  # instruction not supported
        ("0012000000", "6D00"),
        ("00A4030C023F00", "6A86"),  # SELECT P1 unknown
        ("00A40001023F00", "6A86"),  # SELECT P2 unknown
        ("00A4000C013F", "6700"),  # FID of one byte
        ("00A4080C03AABBCC", "6700"),  # odd path
        ("00A4000C033F00", "6700"),  # Lc says 3, 2 bytes follow
        ("00", "6700"),
        ("00A4", "6700"),
        ("00A4000C000001", "6700"),  # extended-length APDU: refused, not crashed
        ("00A4000C029999", "6A82"),  # no such file
        ("00A4080C040001D12F", "6A82"),  # no 16th situation on this card
        ("00A4040C05A000000003", "6A82"),  # unknown AID
        ("00B0000010", "6986"),  # READ BINARY with a DF selected
        ("00B0E10000", "6A86"),  # SFI P1 with bits 6-7 set
        ("00B09F0000", "6A86"),  # SFI 31 is reserved
        ("00B09E0000", "6A82"),  # no EF with SFI 30
        ("00C0000010", "6985"),  # GET RESPONSE with nothing pending
        ("00C0010010", "6B00"),
        ("0020000101 31", "6700"),  # a 1-digit PIN
        ("0020000109 313233343536373839", "6700"),  # a 9-digit PIN
        ("0020000501 31", "6A88"),  # no PIN 05
        ("0020010104 31323334", "6A86"),
        ("00CA010500", "6A88"),  # GET DATA unknown PIN
        ("00CA020100", "6A88"),
        ("00CA0101 0100", "6700"),  # GET DATA with data
        ("002C000104 31323334", "6700"),  # unblock data too short
        ("002C00010C 3132333435363738 31323341", "6A80"),  # new PIN not digits
        ("002C00050C 3132333435363738 31323334", "6A88"),
        ("0024000104 31323334", "6700"),  # change: no new PIN
        ("0024000108 31323334 3132333A", "6A80"),
    ],
)
def test_status_words(cps_os: CardOS, command: str, sw: str) -> None:
    assert apdu(cps_os, command)[-4:] == sw


def test_select_fci_and_fcp_over_t0(cps_os: CardOS) -> None:
    assert cps_os.t0
    r = apdu(cps_os, "00A4000002 3F00")  # P2=00: FCI, returned through GET RESPONSE
    assert r[:2] == "61"
    n = int(r[2:], 16)
    fci = bytes.fromhex(apdu(cps_os, f"00C00000{n:02X}"))
    assert fci[-2:] == b"\x90\x00"
    (t,) = tlv.decode(fci[:-2])
    assert t.tag == 0x6F
    assert _value(t.children(), 0x83) == b"\x3f\x00"
    r = apdu(cps_os, "00A4080404 0001D001")  # P2=04: FCP of the holder EF
    fcp = bytes.fromhex(apdu(cps_os, f"00C00000{r[2:]}"))[:-2]
    (t,) = tlv.decode(fcp)
    assert t.tag == 0x62
    assert _value(t.children(), 0x83) == b"\xd0\x01"
    assert apdu(cps_os, "00A4080C04 0001D001") == "9000"  # P2=0C: no data


def test_case4_answers_61xx_even_with_le(cps_os: CardOS) -> None:
    assert apdu(cps_os, "00A4000002 3F00 00").startswith("61")


def test_get_response_in_parts_and_wrong_le(cps_os: CardOS) -> None:
    n = int(apdu(cps_os, "00A4000002 3F00")[2:], 16)
    assert apdu(cps_os, f"00C00000{n + 1:02X}") == f"6C{n:02X}"  # too long: 6Cxx, kept
    first = apdu(cps_os, "00C0000004")
    assert first[-4:] == f"61{n - 4:02X}"
    rest = apdu(cps_os, f"00C00000{n - 4:02X}")
    assert rest.endswith("9000")
    assert apdu(cps_os, "00C0000001") == "6985"  # consumed


def test_other_command_drops_pending_response(cps_os: CardOS) -> None:
    apdu(cps_os, "00A4000002 3F00")
    apdu(cps_os, "00A4000C02 3F00")
    assert apdu(cps_os, "00C0000001") == "6985"


def test_read_binary_t0_wrong_le_then_exact(cps_os: CardOS) -> None:
    assert apdu(cps_os, SELECT_HOLDER) == "9000"
    r = apdu(cps_os, "00B0000000")
    assert r[:2] == "6C"
    n = int(r[2:], 16)
    data = bytes.fromhex(apdu(cps_os, f"00B00000{n:02X}"))
    assert data[-2:] == b"\x90\x00"
    assert data[0] == layout.TAG_HOLDER
    # Le shorter than the file: exactly Le bytes; then the rest by offset.
    head = bytes.fromhex(apdu(cps_os, "00B0000004"))[:-2]
    tail = bytes.fromhex(apdu(cps_os, f"00B00004{n - 4:02X}"))[:-2]
    assert head + tail == data[:-2]
    assert apdu(cps_os, f"00B000{n:02X}01") == "6B00"  # offset at the end
    assert apdu(cps_os, "00B07FFF01") == "6B00"


def test_read_binary_by_short_file_id(cps_os: CardOS) -> None:
    apdu(cps_os, "00A4080C02 0001")
    r = apdu(cps_os, "00B0810000")  # SFI 1 = holder file
    assert r.startswith("6C")
    assert apdu(cps_os, f"00B08100{r[2:]}").startswith("E1")


def test_sn_icc_public_layout(cps_os: CardOS) -> None:
    apdu(cps_os, "00A4080C02 D003")
    sn = bytes.fromhex(apdu(cps_os, "00B000000C"))
    assert len(sn) == 14
    assert sn[-2:] == b"\x90\x00"
    assert sn[2:7] == layout.SN_ICC_ISSUER


def test_actua_record(cps_os: CardOS) -> None:
    apdu(cps_os, "00A4080C02 D010")
    r = apdu(cps_os, "00B0000000")
    raw = bytes.fromhex(apdu(cps_os, f"00B00000{r[2:]}"))[:-2]
    (t,) = tlv.decode(raw)
    assert t.tag == 0xEC
    start = _value(t.children(), 0x81)
    assert start.hex() == "20250106093000"


def test_situation_needs_the_pin(cps_os: CardOS) -> None:
    assert apdu(cps_os, SELECT_SITUATION1) == "9000"
    assert apdu(cps_os, "00B0000000") == "6982"
    assert apdu(cps_os, "0020000104 31323334") == "9000"
    assert apdu(cps_os, "00B0000000").startswith("6C")
    cps_os.reset()  # power cycle: security status gone
    apdu(cps_os, SELECT_SITUATION1)
    assert apdu(cps_os, "00B0000000") == "6982"


def test_holder_readable_without_pin(cps_os: CardOS) -> None:
    apdu(cps_os, SELECT_HOLDER)
    assert apdu(cps_os, "00B0000000").startswith("6C")


def test_select_parent_and_sibling_by_fid(cps_os: CardOS) -> None:
    apdu(cps_os, "00A4080C04 0001D001")
    assert apdu(cps_os, "00A4020C02 D120") == "9000"  # EF under current DF
    assert apdu(cps_os, "00A4000C02 0001") == "9000"  # the parent DF
    assert apdu(cps_os, "00A4000C02 D003") == "9000"  # a sibling of the DF
    assert apdu(cps_os, "00A4000C") == "9000"  # no data: the MF
    assert apdu(cps_os, "00A4090C04 0001D001") == "9000"  # path from current DF (MF)
    assert apdu(cps_os, "00A4080C06 3F000001D001") == "9000"  # path may start with 3F00


def test_vitale_public_reads(vitale_os: CardOS) -> None:
    assert vitale_os.t0
    assert apdu(vitale_os, "00A4000C02 3F00") == "9000"
    r = apdu(vitale_os, "00B0820000")
    assert r.startswith("6C")
    ident = bytes.fromhex(apdu(vitale_os, f"00B08200{r[2:]}"))[:-2]
    persons = tlv.decode(ident)
    assert [t.tag for t in persons] == [0x65] * 4  # the insured and the three beneficiaries
    assert [_value(t.children(), 0x81) for t in persons] == [b"MARIE", b"PIERRE", b"LEA", b"HUGO"]
    assert _value(persons[0].children(), 0x80) == b"DUPONT"
    assert _value(persons[0].children(), 0x82) == b"19820512"
    assert apdu(vitale_os, "00A4040C0B D25000000256495441 4C45") == "9000"
    r = apdu(vitale_os, "00B0820000")
    nir = bytes.fromhex(apdu(vitale_os, f"00B08200{r[2:]}"))[:-2]
    assert [_value(t.children(), 0x93) for t in tlv.decode(nir)] == [b"282057512345642"] * 4
    assert apdu(vitale_os, "00A4040C0E D250000002 4D465F564954414C45") == "9000"
    assert vitale_os.current is vitale_os.mf  # VITALE_MF is the MF's name
    assert apdu(vitale_os, "00A4020C02 2F00") == "9000"
    assert apdu(vitale_os, "00A4020C02 2F02") == "9000"
    assert apdu(vitale_os, "00B0000007") == "5A051234567890" + "9000"  # PAN: the serial, BCD
    assert apdu(vitale_os, "0020000104 31323334") == "6A88"  # no PIN on this model


def _read_all(card: CardOS) -> bytes:
    """READ BINARY of the current file in 256-byte steps, as cardpeek does (Le 00, then 6C xx)."""
    out = b""
    while True:
        r = bytes.fromhex(apdu(card, f"00B0{len(out):04X}00"))
        if r[-2] == 0x6C:
            r = bytes.fromhex(apdu(card, f"00B0{len(out):04X}{r[-1]:02X}"))
        if r[-2:] != b"\x90\x00":
            return out
        out += r[:-2]
        if len(r) - 2 < 256:
            return out


@pytest.mark.parametrize("name", VITALE_PROFILES)
def test_vitale_map_names_every_application_and_file(name: str) -> None:
    """EF 2001 as cardpeek's create_card_map reads it: every application entry selects, every file
    entry selects under its application; every EF of the card is named, or known by its id."""
    card = build_card(load_profile(CARDS / f"{name}.yaml"))
    assert apdu(card, "00A4040C0B D250000002564954414C45") == "9000"
    assert apdu(card, "00A4020C02 2001") == "9000"
    (top,) = tlv.decode(_read_all(card))
    assert top.tag == 0xE0
    apps_tlv, *files = top.children()
    assert apps_tlv.tag == 0xA0 and files and all(f.tag == 0x80 for f in files)
    apps = {a.value[:2]: a.value[4:] for a in apps_tlv.children() if a.tag == 0x82}
    assert set(apps.values()) == {layout.AID_VITALE, layout.AID_VITALE_MF}
    seen = set()
    for f in files:
        name_bytes, entry, fid = f.value[:8], f.value[8:10], f.value[10:12]
        assert name_bytes.decode("ascii").isprintable()
        aid = apps[entry]
        assert apdu(card, f"00A4040C{len(aid):02X}{aid.hex()}") == "9000"
        assert apdu(card, f"00A4020C02{fid.hex()}") == "9000", name_bytes
        assert _read_all(card)[:1] not in (b"", b"\x00")  # cardpeek parses it as TLV
        seen.add(fid)
    known = {layout.FID_DIR, layout.FID_PAN, layout.FID_POINTERS}  # cardpeek adds these itself
    every = {n.fid for n in card.mf.walk() if isinstance(n, EF)}
    assert {int.from_bytes(f, "big") for f in seen} == every - known
    assert len(seen) == len(files)


# --- robustness --------------------------------------------------------------------------------
_HEADERS = st.sampled_from([0xA4, 0xB0, 0x20, 0x24, 0x2C, 0xC0, 0xCA]).flatmap(
    lambda ins: st.tuples(st.just(0), st.just(ins), st.integers(0, 255), st.integers(0, 255))
)


def _assert_sane(card: CardOS, raw: bytes) -> None:
    r = card.process(raw)
    assert len(r) >= 2
    assert r[-2:] != b"\x6f\x00", f"internal error on {raw.hex()}"
    if card.pin:
        assert 0 <= card.pin.tries_left <= card.pin.tries_max
    if card.unblock:
        assert 0 <= card.unblock.tries_left <= card.unblock.tries_max
        assert 0 <= card.unblock.uses_left <= card.unblock.uses_max


@pytest.mark.parametrize("profile", ["cps-roulette", "vitale-famille"])
@settings(max_examples=300)
@given(data=st.lists(st.binary(max_size=270), max_size=8))
def test_no_byte_string_crashes_the_card(profile: str, data: list[bytes]) -> None:
    card = build_card(PROFILES[profile])
    for raw in data:
        _assert_sane(card, raw)


@pytest.mark.parametrize("profile", ["cps-roulette", "vitale-famille"])
@settings(max_examples=300)
@given(
    cmds=st.lists(st.tuples(_HEADERS, st.binary(max_size=20), st.none() | st.integers(0, 255)), max_size=10)
)
def test_well_formed_wrong_apdus_never_crash(profile: str, cmds: list) -> None:
    card = build_card(PROFILES[profile])
    for header, data, le in cmds:
        raw = (
            bytes(header)
            + (bytes((len(data),)) + data if data else b"")
            + (bytes((le,)) if le is not None else b"")
        )
        _assert_sane(card, raw)
