"""The CPS's keys and certificates: derived from the card (same profile, same bytes), issued by
cartesim's plainly named test CA, or given by the profile as PEM (refused in one line if
unusable); keys are derived only when a reader needs them, so building a card stays fast."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from cartesim.core import commands, layout
from cartesim.core.apdu import CommandApdu
from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator import keys
from cartesim.emulator.cards import load_card
from cartesim.emulator.ias import SHA256_DIGEST_INFO
from tests.helpers import CARDS, run


def _certificate(card_profile: str | Path, fid: int) -> x509.Certificate:
    t = DirectTransport(load_card(card_profile))
    commands.check("SELECT", commands.select_path(t, layout.FID_CPS_DF, fid))
    return x509.load_der_x509_certificate(commands.read_binary(t))


def _sign_internal_authenticate(card_profile: str | Path, pin: bytes, data: bytes) -> bytes:
    t = DirectTransport(load_card(card_profile))
    assert commands.verify(t, layout.PIN_REF_PORTEUR, pin).sw == 0x9000
    assert t.send(CommandApdu(0x00, 0x22, 0x41, 0xA4, bytes.fromhex("840182800102"))).sw == 0x9000
    resp = t.send(CommandApdu(0x00, 0x88, 0x00, 0x00, data, le=256))
    assert resp.sw == 0x9000
    return resp.data


def test_certificates_are_issued_by_the_test_ca_to_the_holder() -> None:
    ca = keys.test_ca().certificate
    assert "TEST" in ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    for fid, usage in (
        (layout.FID_CERT_SIGNATURE, "content_commitment"),
        (layout.FID_CERT_AUTHENTICATION, "digital_signature"),
    ):
        cert = _certificate("cps-roulette", fid)
        assert cert.issuer == ca.subject
        public = ca.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
        subject = cert.subject.rfc4514_string()
        assert "ROULETTE RPPS" in subject and "PAUL" in subject and "899900021520" in subject
        assert getattr(cert.extensions.get_extension_for_class(x509.KeyUsage).value, usage)
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048


def test_same_card_same_keys_and_certificates_every_time() -> None:
    """Derived from the card's serial and holder: rebuilt from nothing, the bytes are the same;
    the same card in another state (cps-blocked) has the same keys; another card has others."""
    first = _certificate("cps-roulette", layout.FID_CERT_SIGNATURE).public_bytes(serialization.Encoding.DER)
    keys.card_credential.cache_clear()
    keys.derive_key.cache_clear()
    keys.test_ca.cache_clear()
    again = _certificate("cps-roulette", layout.FID_CERT_SIGNATURE).public_bytes(serialization.Encoding.DER)
    assert again == first
    blocked = _certificate("cps-blocked", layout.FID_CERT_SIGNATURE).public_bytes(serialization.Encoding.DER)
    assert blocked == first
    other = _certificate("cps-two-situations", layout.FID_CERT_SIGNATURE)
    assert other.public_bytes(serialization.Encoding.DER) != first
    auth = _certificate("cps-roulette", layout.FID_CERT_AUTHENTICATION)
    assert auth.public_key() != x509.load_der_x509_certificate(first).public_key()  # two keys


def test_building_a_card_derives_no_key() -> None:
    """A card is built hundreds of times by the suite: its keys come only when a reader asks."""
    before = keys.derive_key.cache_info()
    card = load_card(CARDS / "cpf-infirmier-remplacant.yaml")
    assert card is not None
    assert keys.derive_key.cache_info() == before


# --- a profile's own PEM --------------------------------------------------------------------------
Pem = tuple[str, str, rsa.RSAPrivateKey]  # key PEM, certificate PEM, the key


def _own_pem(common_name: str) -> Pem:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
        .not_valid_after(dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode(), key


def _profile_with(tmp_path: Path, authentication: dict[str, str]) -> Path:
    doc = yaml.safe_load((CARDS / "cps-roulette.yaml").read_text())
    doc["keys"] = {"authentication": authentication}
    path = tmp_path / "own-keys.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def test_a_profile_may_give_its_own_key_and_certificate(tmp_path: Path) -> None:
    key_pem, cert_pem, key = _own_pem("Dr Test, own certificate")
    path = _profile_with(tmp_path, {"key": key_pem, "certificate": cert_pem})
    cert = _certificate(path, layout.FID_CERT_AUTHENTICATION)
    assert cert.public_bytes(serialization.Encoding.PEM).decode() == cert_pem
    signature = _sign_internal_authenticate(path, b"1234", SHA256_DIGEST_INFO + hashlib.sha256(b"m").digest())
    key.public_key().verify(signature, b"m", padding.PKCS1v15(), hashes.SHA256())
    # the other key stays cartesim's own
    assert _certificate(path, layout.FID_CERT_SIGNATURE).issuer == keys.test_ca().certificate.subject


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (
            lambda own, other: {"key": "-----BEGIN PRIVATE KEY-----\nnot base64\n", "certificate": own[1]},
            "not an unencrypted PEM private key",
        ),
        (lambda own, other: {"key": own[0], "certificate": "hello"}, "not a PEM X.509 certificate"),
        (lambda own, other: {"key": own[0], "certificate": other[1]}, "does not match the key"),
    ],
    ids=["malformed key", "malformed certificate", "key of another certificate"],
)
def test_unusable_pem_is_refused_in_one_line_exit_2(
    tmp_path: Path, make: Callable[[Pem, Pem], dict[str, str]], problem: str
) -> None:
    own, other = _own_pem("own"), _own_pem("other")
    path = _profile_with(tmp_path, make(own, other))
    r = run("profile", "check", str(path))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: keys.authentication: "), lines[0]
    assert problem in lines[0]
    assert "PRIVATE KEY" not in lines[0] and own[0][40:80] not in lines[0]


def test_a_small_key_is_refused(tmp_path: Path) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused on purpose
    pem = small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _, cert_pem, _ = _own_pem("x")
    path = _profile_with(tmp_path, {"key": pem.decode(), "certificate": cert_pem})
    r = run("profile", "check", str(path))
    assert r.returncode == 2
    assert "not an RSA-2048 key" in r.stdout + r.stderr
