"""The CPS's two RSA-2048 keys and their certificates, issued by cartesim's own test CA.

Test material only: every key is derived from public data (the card's serial and holder), so the
same profile always yields the same keys and certificates, on any machine, with nothing to
store. Nothing here is secret and nothing here is a real IGC-Santé key or certificate. A profile
may give its own PEM instead (``credential_from_pem``).

Deriving an RSA-2048 key costs a few tenths of a second: keys are derived on first use (the card
builds its certificate files lazily) and kept for the life of the process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from functools import cache

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

KEY_BITS = 2048
PUBLIC_EXPONENT = 65537
CA_NAME = "cartesim TEST CA - NOT a real IGC-Sante authority"
# Fixed validity: the certificates of a profile never change with the day they are made.
VALID_FROM = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
VALID_UNTIL = dt.datetime(2035, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
_DERIVATION = b"cartesim test key v1"


class KeyRole(str, Enum):
    SIGNATURE = "signature"  # CPS_PRIV_SIG, reference 0x81, non-repudiation
    AUTHENTICATION = "authentication"  # CPS_PRIV_AUT, reference 0x82


@dataclass(frozen=True)
class Credential:
    """A private key and its certificate."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def modulus_bytes(self) -> int:
        return (self.key.key_size + 7) // 8


@dataclass(frozen=True)
class Holder:
    """What a certificate's subject says of the card holder."""

    serial: str
    identifier: str  # type d'identification + NIR (RPPS, ADELI...): the holder's identifier
    nom: str
    prenom: str


class CredentialError(ValueError):
    """PEM material that cannot be used; the message names the problem in one line."""


# --- deterministic RSA keys ----------------------------------------------------------------------
_SMALL_PRIMES = [p for p in range(3, 4096, 2) if all(p % q for q in range(3, int(p**0.5) + 1, 2))]


def _stream(seed: bytes) -> Iterator[bytes]:
    counter = 0
    while True:
        yield hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1


def _probably_prime(n: int, bases: list[int]) -> bool:
    """Miller-Rabin with the given bases."""
    d, s = n - 1, 0
    while not d & 1:
        d, s = d >> 1, s + 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(seed: bytes, bits: int) -> int:
    """The first prime p of the ``seed``'s sequence with p-1 coprime to the public exponent."""
    stream = _stream(seed)
    nbytes = bits // 8
    while True:
        raw = b"".join(next(stream) for _ in range((nbytes + 31) // 32))[:nbytes]
        start = int.from_bytes(raw, "big") | (3 << (bits - 2)) | 1  # top two bits: n has 2*bits
        window = 4096
        alive = bytearray([1]) * window  # alive[i]: start + 2i has no small factor
        for p in _SMALL_PRIMES:
            first = (-start * pow(2, -1, p)) % p
            alive[first::p] = bytes(len(range(first, window, p)))
        bases = [int.from_bytes(next(stream), "big") % (1 << 64) + 2 for _ in range(24)]
        for i in range(window):
            n = start + 2 * i
            # one cheap round first: almost every composite fails it
            if (
                alive[i]
                and (n - 1) % PUBLIC_EXPONENT
                and _probably_prime(n, [2])
                and _probably_prime(n, bases)
            ):
                return n


@cache
def derive_key(seed: bytes) -> rsa.RSAPrivateKey:
    """An RSA-2048 private key that depends only on ``seed``."""
    p = _prime(seed + b"|p", KEY_BITS // 2)
    q = _prime(seed + b"|q", KEY_BITS // 2)
    p, q = max(p, q), min(p, q)
    e = PUBLIC_EXPONENT
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=d % (p - 1),
        dmq1=d % (q - 1),
        iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )
    return numbers.private_key()


# --- certificates --------------------------------------------------------------------------------
def _serial_number(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:15], "big") | 1


@cache
def test_ca() -> Credential:
    """cartesim's test CA: self-signed, plainly named as a test authority."""
    key = derive_key(_DERIVATION + b"|ca")
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cartesim (test only)"),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial_number("ca"))
        .not_valid_before(VALID_FROM)
        .not_valid_after(VALID_UNTIL)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return Credential(key, cert)


def _usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _seed(holder: Holder, role: KeyRole) -> bytes:
    return b"|".join((_DERIVATION, role.value.encode(), holder.serial.encode(), holder.identifier.encode()))


@cache
def card_credential(holder: Holder, role: KeyRole) -> Credential:
    """The key of ``role`` for this holder's card and its certificate from the test CA."""
    ca = test_ca()
    key = derive_key(_seed(holder, role))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cartesim (test only)"),
            x509.NameAttribute(NameOID.SURNAME, holder.nom),
            x509.NameAttribute(NameOID.GIVEN_NAME, holder.prenom),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, holder.identifier),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{holder.prenom} {holder.nom} {holder.identifier}"),
        ]
    )
    usage = (
        _usage(content_commitment=True)
        if role is KeyRole.SIGNATURE
        else _usage(digital_signature=True, key_encipherment=True)
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(_serial_number(role.value, holder.serial, holder.identifier))
        .not_valid_before(VALID_FROM)
        .not_valid_after(VALID_UNTIL)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Credential(key, cert)


# --- a profile's own PEM -------------------------------------------------------------------------
def credential_from_pem(key_pem: str, certificate_pem: str) -> Credential:
    """A profile's own key and certificate; CredentialError (one line) if they cannot serve."""
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CredentialError("key: not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != KEY_BITS:
        raise CredentialError(f"key: not an RSA-{KEY_BITS} key")
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError:
        raise CredentialError("certificate: not a PEM X.509 certificate") from None
    public = cert.public_key()
    if (
        not isinstance(public, rsa.RSAPublicKey)
        or public.public_numbers() != key.public_key().public_numbers()
    ):
        raise CredentialError("certificate: does not match the key")
    return Credential(key, cert)
