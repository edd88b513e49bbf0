"""The CPS3's IAS-ECC commands in-process: security data objects, MSE SET, PSO HASH / COMPUTE
DIGITAL SIGNATURE / DECIPHER, INTERNAL AUTHENTICATE, chaining, and the CPS2ter volet (CLA A0).
Signatures are checked with the certificates read from the card."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cartesim.core import commands, layout, tlv
from cartesim.core.apdu import CommandApdu, ResponseApdu
from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator import sha256
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.ias import SHA256_DIGEST_INFO
from tests.helpers import apdu

MSE_DST_SIG = CommandApdu(0x00, 0x22, 0x41, 0xB6, bytes.fromhex("840181 800142"))
MSE_HT = CommandApdu(0x00, 0x22, 0x41, 0xAA, bytes.fromhex("800140"))
MSE_AT_AUT = CommandApdu(0x00, 0x22, 0x41, 0xA4, bytes.fromhex("840182 800102"))
MSE_CT_AUT = CommandApdu(0x00, 0x22, 0x41, 0xB8, bytes.fromhex("840182 80011A"))
PSO_CDS = CommandApdu(0x00, 0x2A, 0x9E, 0x9A, le=256)


@pytest.fixture
def t(cps_os: CardOS) -> DirectTransport:
    return DirectTransport(cps_os)


def _ok(t: DirectTransport, cmd: CommandApdu) -> bytes:
    resp = t.send(cmd)
    assert resp.sw == 0x9000, f"{cmd.to_bytes().hex().upper()}: {resp.sw:04X}"
    return resp.data


def _login(t: DirectTransport) -> None:
    assert commands.verify(t, layout.PIN_REF_PORTEUR, b"1234").sw == 0x9000


def _certificate(t: DirectTransport, fid: int) -> x509.Certificate:
    commands.check("SELECT", commands.select_path(t, layout.FID_CPS_DF, fid))
    return x509.load_der_x509_certificate(commands.read_binary(t))


def _public(t: DirectTransport, fid: int) -> rsa.RSAPublicKey:
    key = _certificate(t, fid).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def _pso_hash(message: bytes) -> CommandApdu:
    """PSO HASH as OpenSC and Cryptolib build it: the host's intermediate state and bit count
    for the whole blocks, then the last (partial) block."""
    cut = len(message) - len(message) % sha256.BLOCK
    if cut:
        state = sha256.update(sha256.INITIAL_STATE, message[:cut])
        partial = sha256.state_to_bytes(state) + (cut * 8).to_bytes(8, "big")
    else:
        partial = b""
    data = tlv.encode(0x90, partial) + tlv.encode(0x80, message[cut:])
    return CommandApdu(0x00, 0x2A, 0x90, 0xA0, data)


@pytest.mark.parametrize("size", [0, 5, 63, 64, 65, 200, 1000])
def test_pso_hash_then_signature_with_the_non_repudiation_key(t: DirectTransport, size: int) -> None:
    message = bytes(range(256)) * 4
    message = message[:size]
    sig_key = _public(t, layout.FID_CERT_SIGNATURE)
    _login(t)
    _ok(t, MSE_HT)
    _ok(t, MSE_DST_SIG)
    _ok(t, _pso_hash(message))
    signature = _ok(t, PSO_CDS)
    assert len(signature) == 256
    sig_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())  # raises if wrong


def test_pso_cds_with_a_hash_given_by_the_host(t: DirectTransport) -> None:
    _login(t)
    _ok(t, MSE_DST_SIG)
    digest = hashlib.sha256(b"ordonnance").digest()
    signature = _ok(t, CommandApdu(0x00, 0x2A, 0x9E, 0x9A, digest, le=256))
    _public(t, layout.FID_CERT_SIGNATURE).verify(
        signature, b"ordonnance", padding.PKCS1v15(), hashes.SHA256()
    )


def test_internal_authenticate_with_the_authentication_key(t: DirectTransport) -> None:
    challenge = SHA256_DIGEST_INFO + hashlib.sha256(b"Pro Sante Connect").digest()
    _login(t)
    _ok(t, MSE_AT_AUT)
    signature = _ok(t, CommandApdu(0x00, 0x88, 0x00, 0x00, challenge, le=256))
    key = _public(t, layout.FID_CERT_AUTHENTICATION)
    key.verify(signature, b"Pro Sante Connect", padding.PKCS1v15(), hashes.SHA256())


def test_decipher_with_command_chaining(t: DirectTransport) -> None:
    """81 ‖ 256-byte cryptogram does not fit a short APDU: OpenSC and Cryptolib chain (CLA 10)."""
    key = _public(t, layout.FID_CERT_AUTHENTICATION)
    secret = b"cle de session 0123456789abcdef"
    cryptogram = b"\x81" + key.encrypt(secret, padding.PKCS1v15())
    _login(t)
    _ok(t, MSE_CT_AUT)
    assert _ok(t, CommandApdu(0x10, 0x2A, 0x80, 0x86, cryptogram[:200])) == b""
    assert _ok(t, CommandApdu(0x00, 0x2A, 0x80, 0x86, cryptogram[200:], le=256)) == secret


def test_every_key_operation_needs_the_code_porteur(t: DirectTransport) -> None:
    for mse, operation in (
        (MSE_DST_SIG, CommandApdu(0x00, 0x2A, 0x9E, 0x9A, bytes(32), le=256)),
        (MSE_AT_AUT, CommandApdu(0x00, 0x88, 0x00, 0x00, b"challenge", le=256)),
        (MSE_CT_AUT, CommandApdu(0x00, 0x2A, 0x80, 0x86, b"\x81" + bytes(200))),
    ):
        _ok(t, mse)
        assert t.send(operation).sw == 0x6982
    _ok(t, MSE_HT)
    _ok(t, MSE_DST_SIG)
    _ok(t, _pso_hash(b"x"))
    assert t.send(PSO_CDS).sw == 0x6982


def test_security_status_goes_with_a_wrong_code_and_a_reset(t: DirectTransport, cps_os: CardOS) -> None:
    _login(t)
    _ok(t, MSE_AT_AUT)
    assert t.send(CommandApdu(0x00, 0x88, 0x00, 0x00, b"x", le=256)).sw == 0x9000
    assert commands.verify(t, layout.PIN_REF_PORTEUR, b"0000").sw == 0x63C2
    assert t.send(CommandApdu(0x00, 0x88, 0x00, 0x00, b"x", le=256)).sw == 0x6982
    _login(t)
    cps_os.reset()
    assert t.send(CommandApdu(0x00, 0x88, 0x00, 0x00, b"x", le=256)).sw == 0x6985  # env gone too


@pytest.mark.parametrize(
    ("mse", "operation", "sw"),
    [
        (None, CommandApdu(0x00, 0x88, 0x00, 0x00, b"x", le=256), 0x6985),  # no MSE SET
        (MSE_AT_AUT, CommandApdu(0x00, 0x2A, 0x9E, 0x9A, le=256), 0x6985),  # no DST set
        # the signature key cannot authenticate, the authentication key cannot sign (its ACLs)
        (
            CommandApdu(0x00, 0x22, 0x41, 0xA4, bytes.fromhex("840181")),
            CommandApdu(0x00, 0x88, 0x00, 0x00, b"x", le=256),
            0x6986,
        ),
        (
            CommandApdu(0x00, 0x22, 0x41, 0xB6, bytes.fromhex("840182 800142")),
            CommandApdu(0x00, 0x2A, 0x9E, 0x9A, bytes(32), le=256),
            0x6986,
        ),
        (MSE_DST_SIG, CommandApdu(0x00, 0x2A, 0x9E, 0x9A, le=256), 0x6985),  # nothing hashed
        (MSE_DST_SIG, CommandApdu(0x00, 0x2A, 0x9E, 0x9A, bytes(20), le=256), 0x6700),  # not SHA-256
        (MSE_CT_AUT, CommandApdu(0x00, 0x2A, 0x80, 0x86, b"\x00" + bytes(256)[:200]), 0x6A80),
        (MSE_AT_AUT, CommandApdu(0x00, 0x88, 0x00, 0x00, bytes(250), le=256), 0x6700),  # > k - 11
    ],
)
def test_crypto_refusals(
    t: DirectTransport, mse: CommandApdu | None, operation: CommandApdu, sw: int
) -> None:
    _login(t)
    if mse is not None:
        _ok(t, mse)
    assert t.send(operation).sw == sw


@pytest.mark.parametrize(
    ("command", "sw"),
    [
        ("0022410B03 840181", "6A86"),  # no such template
        ("0022F1B603 840181", "6A86"),
        ("002241B603 840183", "6A88"),  # no key 83
        ("002241B606 840181 800199", "6A80"),  # unknown algorithm
        ("002241AA03 800110", "6A80"),  # SHA-1: this card hashes SHA-256 only
        ("002A90A003 800100", "6985"),  # PSO HASH with no HT nor DST set
        ("002A9000", "6A86"),
        ("0088010000", "6A86"),
        ("102A0000", "9000"),  # a first chained part, kept
        ("10B0000000", "6884"),  # chaining is for PSO only
        ("0084000008", "9000"),
        ("0084000108", "6A86"),
    ],
)
def test_ias_status_words(cps_os: CardOS, command: str, sw: str) -> None:
    assert apdu(cps_os, command)[-4:] == sw


def test_pso_hash_bad_inputs(t: DirectTransport) -> None:
    _ok(t, MSE_HT)
    bad = [
        tlv.encode(0x80, b"abc"),  # no 90
        tlv.encode(0x90, b"") + tlv.encode(0x80, bytes(65)),  # last block longer than 64
        tlv.encode(0x90, bytes(39)) + tlv.encode(0x80, b""),  # state without its counter
        tlv.encode(0x90, bytes(32) + (100).to_bytes(8, "big")) + tlv.encode(0x80, b""),  # not whole blocks
        b"\x90\x05",
    ]
    for data in bad:
        assert t.send(CommandApdu(0x00, 0x2A, 0x90, 0xA0, data)).sw == 0x6A80


def test_get_challenge(t: DirectTransport) -> None:
    first, second = (
        _ok(t, CommandApdu(0x00, 0x84, 0x00, 0x00, le=8)),
        _ok(t, CommandApdu(0x00, 0x84, 0x00, 0x00, le=8)),
    )
    assert len(first) == len(second) == 8
    assert first != second


# --- security data objects ------------------------------------------------------------------------
def _sdo(t: DirectTransport, sdo_class: int, ref: int) -> ResponseApdu:
    return commands.get_data_sdo(t, sdo_class, ref)


def test_pin_counters_as_the_real_cpx_answers_them(t: DirectTransport) -> None:
    """Byte for byte the answer of a real CPx (OpenSC #2275, Cryptolib's trace)."""
    resp = _sdo(t, layout.SDO_CLASS_CHV, layout.PIN_REF_PORTEUR)
    assert resp.data.hex().upper() == "7016BF810112A0109A01039B0103A1088C06F3000013FF00"
    assert commands.verify(t, layout.PIN_REF_PORTEUR, b"0000").sw == 0x63C2
    assert _sdo(t, layout.SDO_CLASS_CHV, layout.PIN_REF_PORTEUR).data[11:14] == b"\x9b\x01\x02"


def test_key_sdo_gives_its_size_and_rules(t: DirectTransport) -> None:
    resp = _sdo(t, layout.SDO_CLASS_RSA_PRIVATE, layout.KEY_REF_SIGNATURE & 0x7F)
    (template,) = tlv.decode(resp.data)
    (sdo,) = template.children()
    assert sdo.tag == 0xBF9001
    docp = sdo.children()[0]
    assert tlv.find(docp.children(), 0x80) == tlv.Tlv(0x80, b"\x01\x00")  # 256 bytes
    assert _sdo(t, layout.SDO_CLASS_RSA_PRIVATE, 0x05).sw == 0x6A88


# --- the CPS2ter volet ------------------------------------------------------------------------------
def test_volet_select_and_read_of_its_situations(cps_os: CardOS) -> None:
    assert apdu(cps_os, "A0A4000002 3F00") == "9F07"
    assert apdu(cps_os, "A0C0000007") == "8505" + "00003F0001" + "9000"  # MF
    r = apdu(cps_os, "A0A4000002 4010")
    assert r == "9F07"
    fci = bytes.fromhex(apdu(cps_os, "A0C0000007"))[:-2]
    size = int.from_bytes(fci[2:4], "big")
    assert fci[:2] == b"\x85\x05"
    assert fci[4:7] == b"\x40\x10\x04"  # FID 4010, an EF
    assert apdu(cps_os, f"A0B00000{size:02X}") == "9804"  # code porteur not presented
    assert apdu(cps_os, "0020000104 31323334") == "9000"  # the same security status
    data = bytes.fromhex(apdu(cps_os, f"A0B00000{size:02X}"))
    assert data[-2:] == b"\x90\x00"
    assert data[0] == layout.TAG_SITUATION
    ias = DirectTransport(cps_os)
    commands.check("SELECT", commands.select_path(ias, layout.FID_CPS_DF, layout.FID_SITUATION_FIRST))
    assert commands.read_binary(ias) == data[:-2]  # the same situation in both volets


def test_volet_billing_situation_and_errors(cps_os: CardOS) -> None:
    assert apdu(cps_os, "A0A4000002 7F01") == "9F07"
    assert apdu(cps_os, "A0A4000002 4000") == "9F07"
    assert apdu(cps_os, "A0A4000002 4011") == "9404"  # no second situation on this card
    assert apdu(cps_os, "A0A4000002 7F01")[:2] == "9F"  # the current DF, again
    assert apdu(cps_os, "A0A4040002 4010") == "6B00"
    assert apdu(cps_os, "A0A4000002 4010") == "9F07"
    assert apdu(cps_os, "00C0000007") == "6985"  # its answer waits for GET RESPONSE with CLA A0
    assert apdu(cps_os, "0020000104 31323334") == "9000"
    assert apdu(cps_os, "A0B07F0001") == "9402"
    assert apdu(cps_os, "A0200000 08 3132333400000000") == "6D00"
