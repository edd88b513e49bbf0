"""The card OS, APDU by APDU: every status-word path, file selection, T=0 rules."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartesim.core import layout, tlv
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import build_card, cps
from cartesim.emulator.fs import DF, EF, make_mf
from cartesim.emulator.profile import load_profile
from tests.helpers import CARDS, apdu

PROFILES = {name: load_profile(CARDS / f"{name}.yaml") for name in ("cps-roulette", "vitale-famille")}

SELECT_IAS = "00A4040C0D E828BD080F8025000001FF0010"
SELECT_HOLDER = "00A4080C04 0001D107"
SELECT_SITUATION1 = "00A4080C04 0001D120"


VITALE_PROFILES = sorted(p.stem for p in CARDS.glob("vitale-*.yaml"))


def _value(items: list[tlv.Tlv], tag: int) -> bytes:
    found = tlv.find(items, tag)
    assert found is not None, f"tag {tag:02X} missing"
    return found.value


def test_cps3_select_answers_of_the_real_card(cps_os: CardOS) -> None:
    """OpenSC commits 1a3666364 and 20f359ea0, issue #2223: what a real CPx answers."""
    assert apdu(cps_os, SELECT_IAS) == "9000"
    assert apdu(cps_os, "00A404000D E828BD080F8025000001FF0010") == "6A86"  # P2=00: no FCI
    assert apdu(cps_os, "00A4020002 D003") == "6A86"  # EF by FID, FCI asked
    assert apdu(cps_os, "00A4040008 8025000001FF0100") == "9000"  # root AID: 90 00, no data
    assert apdu(cps_os, "00A4040C05 E828BD080F") == "9000"  # partial DF name
    assert apdu(cps_os, "00A4040C08 8025000001FF0002") == "6A82"  # no such AID on a CPS3


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
        ("00B0990000", "6A82"),  # no EF with SFI 25
        ("00C0000010", "6985"),  # GET RESPONSE with nothing pending
        ("00C0010010", "6B00"),
        ("0020000101 31", "6700"),  # a 1-digit PIN
        ("0020000109 313233343536373839", "6700"),  # a 9-digit PIN
        ("0020000501 31", "6A88"),  # no PIN 05
        ("0020010104 31323334", "6A86"),
        ("00CA010100", "6D00"),  # GET DATA 00 CA: no such instruction on a CPS3 (00 CB)
        ("00CB3FFF0A 4D087006BF810502A080", "6A88"),  # SDO GET DATA: no PIN 05
        ("00CB3FFF0A 4D087006BFFB0502A080", "6A88"),  # SE data: not readable on a CPx
        ("00CB3FFF0B 4D097007BF8101037F4180", "6A86"),  # no public CHV part but the DOCP
        ("00CB3FFE0A 4D087006BF810102A080", "6A86"),
        ("00CB3FFF03 4D0100", "6A80"),
        ("002C000104 31323334", "6700"),  # unblock data too short
        ("002C00010C 3132333435363738 31323341", "6A80"),  # new PIN not digits
        ("002C00050C 3132333435363738 31323334", "6A88"),
        ("0024000104 31323334", "6700"),  # change: no new PIN
        ("0024000108 31323334 3132333A", "6A80"),
    ],
)
def test_status_words(cps_os: CardOS, command: str, sw: str) -> None:
    assert apdu(cps_os, command)[-4:] == sw


def _fcp(card: CardOS, select: str) -> tlv.Tlv:
    r = apdu(card, select)
    assert r[:2] == "61", r
    raw = bytes.fromhex(apdu(card, f"00C00000{r[2:]}"))
    assert raw[-2:] == b"\x90\x00"
    (t,) = tlv.decode(raw[:-2])
    return t


def test_select_fci_and_fcp_over_t0(vitale_os: CardOS, cps_os: CardOS) -> None:
    t = _fcp(vitale_os, "00A4000002 3F00")  # P2=00: FCI, returned through GET RESPONSE
    assert t.tag == 0x6F
    assert _value(t.children(), 0x83) == b"\x3f\x00"
    assert cps_os.t0
    t = _fcp(cps_os, "00A4080404 0001D107")  # P2=04: FCP of the holder EF
    assert t.tag == 0x62
    assert _value(t.children(), 0x83) == b"\xd1\x07"
    assert apdu(cps_os, "00A4080C04 0001D107") == "9000"  # P2=0C: no data


def test_every_cps_fcp_carries_ias_ecc_security_attributes(cps_os: CardOS) -> None:
    """OpenSC's IAS-ECC driver refuses an FCP without A1 { 8C, 9C } ("ACLs tag missing")."""
    for node in cps_os.mf.walk():
        (fcp,) = tlv.decode(node.fcp())
        acls = tlv.find(fcp.children(), 0xA1)
        assert acls is not None, f"{node.fid:04X}" if node.fid is not None else "ADF"
        assert {c.tag for c in acls.children()} == {0x8C, 0x9C}


def test_real_cpx_fcp_and_ef_atr(cps_os: CardOS) -> None:
    """The FCPs of EF.ATR and EF.SN.ICC byte for byte as a real CPx answers them (#2223, #2275)."""
    fcp = _fcp(cps_os, "00A4090404 3F002F01")
    assert fcp.to_bytes().hex().upper().startswith("62258002003982010183022F018801E8A1128C077B45FFFFFF4500")
    ef_atr = bytes.fromhex(apdu(cps_os, "00B0000039"))[:-2]
    assert ef_atr == layout.EF_ATR_CONTENT
    fcp = _fcp(cps_os, "00A4090404 3F00D003")
    assert fcp.to_bytes().hex().upper() == (
        "62258002000C8201018302D0038801E0A1128C077BFFFFFFFFFF009C077BFFFFFFFFFF008A0105"
    )


def test_case4_answers_61xx_even_with_le(cps_os: CardOS) -> None:
    assert apdu(cps_os, "00A4080402 D003 00").startswith("61")


def test_get_response_in_parts_and_wrong_le(cps_os: CardOS) -> None:
    n = int(apdu(cps_os, "00A4080402 D003")[2:], 16)
    assert apdu(cps_os, f"00C00000{n + 1:02X}") == f"6C{n:02X}"  # too long: 6Cxx, kept
    first = apdu(cps_os, "00C0000004")
    assert first[-4:] == f"61{n - 4:02X}"
    rest = apdu(cps_os, f"00C00000{n - 4:02X}")
    assert rest.endswith("9000")
    assert apdu(cps_os, "00C0000001") == "6985"  # consumed


def test_other_command_drops_pending_response(cps_os: CardOS) -> None:
    apdu(cps_os, "00A4080402 D003")
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


def test_a_whole_256_byte_answer_by_get_response_without_le(cps_os: CardOS) -> None:
    """READ BINARY without Le asks for 256 bytes; GET RESPONSE without Le takes all 256."""
    assert apdu(cps_os, "00A4080C04 0001C001") == "9000"  # the signature certificate (> 256 bytes)
    assert apdu(cps_os, "00B00000") == "6100"
    answer = bytes.fromhex(apdu(cps_os, "00C00000"))
    assert len(answer) == 256 + 2 and answer[-2:] == b"\x90\x00"


def test_change_reference_data_without_data(cps_os: CardOS) -> None:
    assert apdu(cps_os, "00240001") == "6700"
    assert cps_os.pin is not None and cps_os.pin.tries_left == 3


def _iso_card(*children: EF | DF) -> CardOS:
    """A card of cartesim's ISO card OS over a tree of its own (T=0, no codes)."""
    mf = make_mf()
    for child in children:
        mf.add(child)
    return CardOS(layout.ATR_VITALE2, mf)


def test_select_the_parent_df_by_its_fid_from_a_deeper_df() -> None:
    """ISO 7816-4: the parent DF is selectable by FID, not only the MF."""
    outer = DF(0x1000)
    inner = DF(0x2000)
    outer.add(inner)
    inner.add(EF(0x2001, b"x"))
    card = _iso_card(outer)
    assert apdu(card, "00A4080C04 10002000") == "9000"
    assert apdu(card, "00A4000C02 1000") == "9000"  # the parent, by its FID
    assert card.current is outer


def test_empty_file_reads_empty_at_offset_zero() -> None:
    card = _iso_card(EF(0x0101, b""))
    assert apdu(card, "00A4020C02 0101") == "9000"
    assert apdu(card, "00B00000") == "9000"  # nothing to read, nothing wrong
    assert apdu(card, "00B0000101") == "6B00"


def test_an_internal_error_answers_6f00_logs_and_drops_the_pending_answer(
    cps_os: CardOS, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert apdu(cps_os, "00A4080402 D003").startswith("61")  # an answer waits for GET RESPONSE

    def broken(cmd: object) -> tuple[bytes, int]:
        raise RuntimeError("a bug")

    monkeypatch.setitem(cps_os._table, layout.INS_GET_DATA_SDO, broken)
    with caplog.at_level(logging.ERROR, logger="cartesim.emulator.cardos"):
        assert apdu(cps_os, "00CB3FFF00") == "6F00"
    assert [r.getMessage() for r in caplog.records] == ["card OS internal error"]
    assert apdu(cps_os, "00C0000001") == "6985"


def test_read_binary_by_short_file_id(cps_os: CardOS) -> None:
    r = apdu(cps_os, "00B09C00C0")  # SFI 1C = EF.SN.ICC, read as OpenSC reads it
    assert r == "6C0C"
    assert apdu(cps_os, "00B09C000C") == "5A0A8025000001000215209F9000"


def test_sn_icc_is_a_pan_with_its_luhn_digit(cps_os: CardOS) -> None:
    """5A 0A, issuer 80 25 00 00 01 at offset 2 (Cryptolib), card number, Luhn digit, F."""
    apdu(cps_os, "00A4080C02 D003")
    sn = bytes.fromhex(apdu(cps_os, "00B000000C"))
    assert sn[-2:] == b"\x90\x00"
    assert sn[:2] == b"\x5a\x0a"
    assert sn[2:7] == layout.SN_ICC_ISSUER
    digits = sn[2:12].hex().upper().rstrip("F")
    assert digits == "8025000001" + "00021520" + "9"
    assert cps.luhn_digit("802500000199213845") == "0"  # the real card of OpenSC #2275


def test_actua_only_on_an_updated_card(cps_os: CardOS) -> None:
    assert apdu(cps_os, "00A4080C02 D010") == "6A82"  # never updated: no EF_ACTUA (#2275)
    updated = build_card(load_profile(CARDS / "cps-two-situations.yaml"))
    apdu(updated, "00A4080C02 D010")
    r = apdu(updated, "00B0000000")
    raw = bytes.fromhex(apdu(updated, f"00B00000{r[2:]}"))[:-2]
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
    apdu(cps_os, "00A4080C04 0001D107")
    assert apdu(cps_os, "00A4020C02 D120") == "9000"  # EF under current DF
    assert apdu(cps_os, "00A4000C02 0001") == "9000"  # the parent DF
    assert apdu(cps_os, "00A4000C02 D003") == "9000"  # a sibling of the DF
    assert apdu(cps_os, "00A4000C") == "9000"  # no data: the MF
    assert apdu(cps_os, "00A4090C04 0001D107") == "9000"  # path from current DF (MF)
    assert apdu(cps_os, "00A4090C06 3F000001D107") == "9000"  # as OpenSC sends it: 3F00 first
    assert apdu(cps_os, "00A4020C02 3F00") == "9000"  # the MF as a file ID (OpenSC)


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
_HEADERS = st.sampled_from([0xA4, 0xB0, 0x20, 0x24, 0x2C, 0xC0, 0xCA, 0xCB, 0x22, 0x2A, 0x88, 0x84]).flatmap(
    lambda ins: st.tuples(
        st.sampled_from([0x00, 0x10, 0xA0]), st.just(ins), st.integers(0, 255), st.integers(0, 255)
    )
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
