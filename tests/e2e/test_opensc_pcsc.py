"""The emulated CPS3 as middleware sees it: Debian's OpenSC tools through a real pcscd + vpcd.

opensc-tool names and serials the card, pkcs15-tool dumps its PKCS#15 application, pkcs11-tool
and PyKCS11 list, log in and sign through opensc-pkcs11.so, a wrong code costs one try, OpenSC
unblocks. Codes reach the tools through environment variables (``--pin env:NAME``), never on a
command line, and every output these tests keep is checked to hold none of them (OpenSC's
debug log shows VERIFY data in clear: it is masked before anything is kept).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cartesim.core import commands, layout, tlv
from cartesim.core.apdu import CommandApdu
from cartesim.core.cps import CpsCard
from cartesim.emulator import sha256
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.harness.pytest_plugin.fixtures import unavailable
from cartesim.harness.stack.pcscd import vpcd_reader
from cartesim.harness.stack.slots import VpcdSlot
from cartesim.harness.stack.stacks import Stack as Pcscd
from cartesim.harness.tools.pkcs11 import Token, digest_info_sha256, opensc_module
from tests.helpers import CARDS, emulating, readme_pkcs11_examples

pytestmark = pytest.mark.e2e

READER = vpcd_reader(0)
PIN, UNBLOCK, NEW_PIN, WRONG = "1234", "12345678", "4321", "9876"
SIG_ID, AUT_ID = layout.KEY_ID_SIGNATURE.hex(), layout.KEY_ID_AUTHENTICATION.hex()
CPS_PROFILES = sorted([*CARDS.glob("cps-*.yaml"), *CARDS.glob("cpf-*.yaml")])
TOOLS = ("opensc-tool", "pkcs15-tool", "pkcs11-tool", "opensc-explorer", "openssl")


def _forms(codes: tuple[str, ...]) -> list[str]:
    """Each code as it could show: plain, hex, and hex as OpenSC's debug log spaces it."""
    out = []
    for c in codes:
        h = c.encode().hex().upper()
        out += [c, h, h.lower(), " ".join(h[i : i + 2] for i in range(0, len(h), 2))]
    return out


@dataclass
class Recorder:
    """The emulated card behind the reader, with the commands it received (headers only)."""

    card: CardOS
    headers: list[str] = field(default_factory=list)

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def process(self, raw: bytes) -> bytes:
        self.headers.append(raw[:4].hex().upper())
        return self.card.process(raw)

    def reset(self) -> None:
        self.card.reset()


@dataclass
class OpenSC:
    """Debian's OpenSC tools against the card in slot 0; codes only through the environment."""

    recorder: Recorder
    tmp: Path
    codes: tuple[str, ...] = (PIN, UNBLOCK, NEW_PIN, WRONG)
    kept: list[str] = field(default_factory=list)

    @property
    def card(self) -> CardOS:
        return self.recorder.card

    def run(self, *argv: str, debug: bool = False, **codes: str) -> subprocess.CompletedProcess[str]:
        """Run a tool with ``codes`` as environment variables; with ``debug``, OpenSC's debug log
        (level 9, on stderr, VERIFY data in clear) is masked before it is kept."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSC_", "CARTESIM_"))}
        env.update(codes)
        if debug:
            env |= {"OPENSC_DEBUG": "9"}
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
        out = subprocess.CompletedProcess(argv, r.returncode, self.mask(r.stdout), self.mask(r.stderr))
        self.kept += [out.stdout, out.stderr]
        return out

    def mask(self, text: str) -> str:
        for form in sorted(_forms(self.codes), key=len, reverse=True):
            text = text.replace(form, "*" * len(form))
        return text

    def p11(self, *args: str, debug: bool = False, **codes: str) -> subprocess.CompletedProcess[str]:
        module = opensc_module()
        assert module is not None
        argv = ("pkcs11-tool", "--module", str(module), "--slot-description", READER, *args)
        return self.run(*argv, debug=debug, **codes)

    def tries_left(self, chv: int) -> int:
        """What OpenSC's own PIN query (opensc-explorer pin_info) says of CHV ``chv``."""
        r = subprocess.run(
            ["opensc-explorer", "-r", READER],
            input=f"pin_info CHV{chv}\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        m = re.search(r"(\d+) tries left", r.stdout)
        assert m, r.stdout + r.stderr
        return int(m.group(1))


@pytest.fixture
def served(pcscd: Pcscd, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[OpenSC]:
    """A sample CPS in slot 0: cps-roulette, or the one the test names (indirect parameter)."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing or opensc_module() is None:
        unavailable(f"OpenSC tools missing: {missing or 'opensc-pkcs11.so'} (apt install opensc openssl)")
    recorder = Recorder(load_card(getattr(request, "param", "cps-roulette")))
    slot = VpcdSlot(0, recorder).start()
    tools = OpenSC(recorder, tmp_path)
    try:
        yield tools
    finally:
        slot.close()
    for text in tools.kept:  # nothing these tests keep may hold a code
        for form in _forms(tools.codes):
            assert form not in text, f"a code leaked into a tool's output: {form!r}"


def _public_key_pem(tools: OpenSC, key_id: str) -> Path:
    """The public key of the certificate read from the card by pkcs11-tool, as PEM."""
    der = tools.tmp / f"{key_id}.der"
    r = tools.p11("--read-object", "--type", "cert", "--id", key_id, "-o", str(der))
    assert r.returncode == 0, r.stderr
    cert = x509.load_der_x509_certificate(der.read_bytes())
    pem = tools.tmp / f"{key_id}.pub.pem"
    pem.write_bytes(
        cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pem


def _openssl_verify(pub: Path, signature: Path, data: Path) -> str:
    r = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature", str(signature), str(data)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return (r.stdout + r.stderr).strip()


# --- recognising the card --------------------------------------------------------------------------
def test_opensc_names_the_cpx_card(served: OpenSC) -> None:
    r = served.run("opensc-tool", "-r", READER, "-n", debug=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "IAS-ECC"  # the driver's name, as opensc-tool -n prints it
    assert "'IAS/ECC CPx' card matched" in r.stderr  # the ATR table entry of the CPx
    assert "Select ECC ROOT with the AID from EF.ATR: rv 0" in r.stderr


def test_opensc_tool_serial_is_the_pan_of_ef_sn_icc(served: OpenSC) -> None:
    r = served.run("opensc-tool", "-r", READER, "--serial")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("00 00 01 00 02 15 20 9F")  # 8025000001 | 00021520 | Luhn 9 | F


# --- PKCS#15 ------------------------------------------------------------------------------------------
def test_pkcs15_dump_shows_code_porteur_two_certificates_two_keys(served: OpenSC) -> None:
    r = served.run("pkcs15-tool", "-r", READER, "--dump")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "PKCS#15 Card [PAUL ROULETTE RPPS]" in out
    pin = out[out.index("PIN [Code porteur de la carte CPX]") :].split("\n\n")[0]
    assert re.search(r"ID\s+: 01\n", pin) and re.search(r"Reference\s+: 1 \(0x01\)", pin)
    assert out.count("Private RSA Key [") == 2 and out.count("X.509 Certificate [") == 2
    assert "Private RSA Key [CPS_PRIV_SIG]" in out and "Private RSA Key [CPS_PRIV_AUT]" in out
    assert re.search(r"Usage\s+: \[0x200\], nonRepudiation", out)
    assert re.search(r"Key ref\s+: 129 \(0x81\)", out) and re.search(r"Key ref\s+: 130 \(0x82\)", out)
    assert "Data object 'CPS_ID_CARD'" in out
    # Debian's pkcs15-tool 0.23 prints a PIN's tries left only after a query (PR #2757 added one
    # to --list-pins in 0.24); OpenSC's own query of this driver says it:
    assert served.tries_left(layout.PIN_REF_PORTEUR) == 3
    assert served.tries_left(layout.PIN_REF_DEBLOCAGE) == 10


@pytest.mark.parametrize("served", ["cps-last-try"], indirect=True)
def test_tries_left_seen_by_opensc_on_a_card_with_one_try(served: OpenSC) -> None:
    assert served.tries_left(layout.PIN_REF_PORTEUR) == 1
    r = served.p11("-L")
    assert "final user PIN try" in r.stdout


# --- PKCS#11 ------------------------------------------------------------------------------------------
def test_pkcs11_lists_the_token_and_its_objects(served: OpenSC) -> None:
    r = served.p11("-L")
    assert r.returncode == 0, r.stderr
    assert "token label        : Code porteur de la carte CPX" in r.stdout
    assert "token manufacturer : cartesim (test card)" in r.stdout
    assert "login required" in r.stdout
    r = served.p11("-O")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Certificate Object; type = X.509 cert") == 2
    assert "label:      CPS_CERT_SIG" in r.stdout and "label:      CPS_CERT_AUT" in r.stdout
    assert "Private Key Object" not in r.stdout  # private objects only after login
    r = served.p11("--login", "--pin", "env:CODE", "-O", CODE=PIN)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Private Key Object; RSA") == 2
    assert "label:      CPS_PRIV_SIG" in r.stdout and "label:      CPS_PRIV_AUT" in r.stdout
    assert served.mask(f"ID:         {SIG_ID}") in r.stdout  # (masking: "1234"-like hex too)


def test_pkcs11_signature_verified_by_openssl_with_the_card_certificate(served: OpenSC) -> None:
    """CKM_RSA_PKCS with the authentication key over a SHA-256 DigestInfo: the card signs with
    INTERNAL AUTHENTICATE; openssl checks it as a SHA256 signature with the card's certificate."""
    data = served.tmp / "ordonnance.txt"
    data.write_bytes(b"Ordonnance du 2 janvier : amoxicilline 1 g\n")
    digest_info = served.tmp / "digest-info.bin"
    digest_info.write_bytes(digest_info_sha256(data.read_bytes()))
    signature = served.tmp / "signature.bin"
    r = served.p11(
        "--login", "--pin", "env:CODE", "--sign", "-m", "RSA-PKCS", "--id", AUT_ID,
        "-i", str(digest_info), "-o", str(signature), CODE=PIN,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "00880000" in served.recorder.headers  # INTERNAL AUTHENTICATE
    assert _openssl_verify(_public_key_pem(served, AUT_ID), signature, data) == "Verified OK"


def test_pkcs11_sha256_rsa_pkcs_on_debian_opensc_0_23(served: OpenSC) -> None:
    """`-m SHA256-RSA-PKCS` asks OpenSC's IAS-ECC driver to let the card finish the hash (PSO
    HASH, then PSO CDS). Built against OpenSSL 3, the driver cannot read the intermediate SHA-256
    state from OpenSSL and gives up before sending anything (iasecc_qsign_data_sha256); the
    authentication key does not list the mechanism at all. What the card does with that PSO
    HASH is checked below, as Cryptolib sends it."""
    data = served.tmp / "data.txt"
    data.write_bytes(b"hello\n")
    r = served.p11(
        "--login", "--pin", "env:CODE", "--sign", "-m", "SHA256-RSA-PKCS", "--id", SIG_ID,
        "-i", str(data), "-o", str(served.tmp / "s.bin"), CODE=PIN,
    )  # fmt: skip
    assert r.returncode != 0
    assert "CKR_FUNCTION_NOT_SUPPORTED" in r.stderr
    debug = served.p11(
        "--login", "--pin", "env:CODE", "--sign", "-m", "SHA256-RSA-PKCS", "--id", SIG_ID,
        "-i", str(data), "-o", str(served.tmp / "s.bin"), debug=True, CODE=PIN,
    )  # fmt: skip
    assert "iasecc_qsign_data_sha256: returning with: -1408 (Not supported)" in debug.stderr
    assert "002A90A0" not in served.recorder.headers  # no PSO HASH ever reached the card
    r = served.p11(
        "--login", "--pin", "env:CODE", "--sign", "-m", "SHA256-RSA-PKCS", "--id", AUT_ID,
        "-i", str(data), "-o", str(served.tmp / "s.bin"), CODE=PIN,
    )  # fmt: skip
    assert "CKR_MECHANISM_INVALID" in r.stderr


def test_card_finishes_the_sha256_and_signs_with_the_non_repudiation_key(
    served: OpenSC, pcscd: Pcscd
) -> None:
    """PSO HASH with the host's intermediate state, then PSO COMPUTE DIGITAL SIGNATURE with
    CPS_PRIV_SIG, as Cryptolib sends them, through pcscd; openssl verifies the signature with the
    certificate pkcs11-tool read from the card."""
    from cartesim.core.transport.pcsc import PcscTransport

    message = b"Feuille de soins electronique, lot 0042\n" * 5  # 205 bytes: 3 blocks + 13
    data = served.tmp / "fse.txt"
    data.write_bytes(message)
    cut = len(message) - len(message) % sha256.BLOCK
    state = sha256.state_to_bytes(sha256.update(sha256.INITIAL_STATE, message[:cut]))
    pso_hash = tlv.encode(0x90, state + (cut * 8).to_bytes(8, "big")) + tlv.encode(0x80, message[cut:])
    with PcscTransport(READER) as t:
        assert commands.verify(t, layout.PIN_REF_PORTEUR, PIN.encode()).sw == 0x9000
        commands.check("SELECT", commands.select_path(t, layout.FID_CPS_DF))
        for cmd in (
            CommandApdu(0x00, 0x22, 0x41, 0xAA, bytes.fromhex("800140")),
            CommandApdu(0x00, 0x22, 0x41, 0xB6, bytes.fromhex("840181800142")),
            CommandApdu(0x00, 0x2A, 0x90, 0xA0, pso_hash),
        ):
            commands.check("MSE/PSO", t.send(cmd))
        sig = commands.check("PSO CDS", t.send(CommandApdu(0x00, 0x2A, 0x9E, 0x9A, le=256)))
    signature = served.tmp / "fse.sig"
    signature.write_bytes(sig)
    assert _openssl_verify(_public_key_pem(served, SIG_ID), signature, data) == "Verified OK"


def test_wrong_code_over_pkcs11_costs_exactly_one_try(served: OpenSC) -> None:
    pin = served.card.pin
    assert pin is not None
    assert pin.tries_left == 3
    r = served.p11("--login", "--pin", "env:CODE", "-O", CODE=WRONG)
    assert r.returncode != 0
    assert "CKR_PIN_INCORRECT" in r.stderr
    assert pin.tries_left == 2
    assert served.tries_left(layout.PIN_REF_PORTEUR) == 2
    r = served.p11("--login", "--pin", "env:CODE", "-O", CODE=PIN)  # the right code restores it
    assert r.returncode == 0, r.stderr
    assert pin.tries_left == 3


@pytest.mark.parametrize("served", ["cps-blocked"], indirect=True)
def test_opensc_unblocks_the_code_porteur(served: OpenSC) -> None:
    """pkcs15-tool --unblock-pin: VERIFY of the code de déblocage, then RESET RETRY COUNTER with
    the new code only (00 2C 02 01), the form of OpenSC's IAS-ECC driver."""
    pin, unblock = served.card.pin, served.card.unblock
    assert pin is not None and unblock is not None
    r = served.p11("--login", "--pin", "env:CODE", "-O", CODE=PIN)
    assert "CKR_PIN_LOCKED" in r.stderr
    uses = unblock.uses_left
    r = served.run(
        "pkcs15-tool", "-r", READER, "--unblock-pin", "--auth-id", "01",
        "--puk", "env:PUK", "--new-pin", "env:NEW", PUK=UNBLOCK, NEW=NEW_PIN,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "00200002" in served.recorder.headers and "002C0201" in served.recorder.headers
    assert (pin.tries_left, unblock.uses_left) == (pin.tries_max, uses - 1)
    r = served.p11("--login", "--pin", "env:CODE", "-O", CODE=NEW_PIN)
    assert r.returncode == 0 and r.stdout.count("Private Key Object") == 2


def test_unblock_without_the_code_de_deblocage_in_the_aodf(served: OpenSC, tmp_path: Path) -> None:
    """With no unblocking PIN in the AODF (a profile setting: the real AODF is not public),
    OpenSC asks the card's security environment for the reset rule and the CPx answers 6A 88
    (OpenSC #2275): the unblock stops before any code is sent."""
    doc = yaml.safe_load((CARDS / "cps-blocked.yaml").read_text())
    doc["pkcs15"] = {"unblock_code_object": False}
    path = tmp_path / "no-puk-object.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    served.recorder.card = load_card(path)  # swapped behind the reader: the same ATR
    served.recorder.reset()
    unblock = served.card.unblock
    assert unblock is not None
    before = (unblock.tries_left, unblock.uses_left)
    r = served.run(
        "pkcs15-tool", "-r", READER, "--unblock-pin", "--auth-id", "01",
        "--puk", "env:PUK", "--new-pin", "env:NEW", debug=True, PUK=UNBLOCK, NEW=NEW_PIN,
    )  # fmt: skip
    assert r.returncode != 0
    assert "get SE data  error: -1216 (Data object not found)" in r.stderr  # GET DATA BF FB 03: 6A 88
    assert not any(h.startswith("002C") for h in served.recorder.headers)
    assert (unblock.tries_left, unblock.uses_left) == before


# --- PKCS#11 from Python, as a downstream developer ---------------------------------------------
def test_pykcs11_login_and_sign(pcscd: Pcscd) -> None:
    """PyKCS11 and opensc-pkcs11.so in this process, the card served by `cartesim emulate` (the
    module holds the interpreter while it waits for the card: the card cannot be a thread here)."""
    if opensc_module() is None:
        unavailable("opensc-pkcs11.so missing (apt install opensc)")
    with emulating("cps-roulette", expect={READER: "cps"}):
        token = Token(opensc_module() or Path(), READER)
        try:
            token.login(PIN)
            signature = token.sign_sha256(b"Dossier medical partage")
            cert = x509.load_der_x509_certificate(token.certificate())
        finally:
            token.close()
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, b"Dossier medical partage", padding.PKCS1v15(), hashes.SHA256())
    assert "PAUL ROULETTE RPPS" in cert.subject.rfc4514_string()


def test_the_readme_pkcs11_example_as_written(pcscd: Pcscd) -> None:
    """The README's PyKCS11 block, run as it is written, given the two names it leaves to the
    reader (the code porteur, the data); its signature verifies with the card's certificate."""
    if opensc_module() is None:
        unavailable("opensc-pkcs11.so missing (apt install opensc)")
    (example,) = readme_pkcs11_examples()
    names: dict[str, object] = {"code_porteur": PIN, "data": b"Ordonnance electronique"}
    with emulating("cps-roulette", expect={READER: "cps"}):
        exec(compile(example, "README.md (PyKCS11)", "exec"), names)  # noqa: S102 - our own README
        token = Token(opensc_module() or Path(), READER)
        try:
            cert = x509.load_der_x509_certificate(token.certificate())  # the authentication key's
        finally:
            token.close()
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    signature = names["signature"]
    assert isinstance(signature, bytes)
    key.verify(signature, b"Ordonnance electronique", padding.PKCS1v15(), hashes.SHA256())


# --- every shipped CPS profile ----------------------------------------------------------------------
@pytest.mark.parametrize("path", CPS_PROFILES, ids=lambda p: p.stem)
def test_every_cps_profile_through_opensc(pcscd: Pcscd, tmp_path: Path, path: Path) -> None:
    card = load_card(path)
    pin, unblock = card.pin, card.unblock
    assert pin is not None and unblock is not None
    tools = OpenSC(Recorder(card), tmp_path, codes=(pin.code, unblock.code))
    slot = VpcdSlot(0, tools.recorder).start()
    try:
        with slot.open() as t:
            expected = CpsCard(t).read_serial()
        r = tools.run("opensc-tool", "-r", READER, "--serial")
        assert r.stdout.replace(" ", "").startswith(f"000001{expected}")
        r = tools.run("pkcs15-tool", "-r", READER, "--dump")
        assert r.returncode == 0 and r.stdout.count("Private RSA Key [") == 2, r.stderr
        assert tools.tries_left(layout.PIN_REF_PORTEUR) == pin.tries_left
        r = tools.p11("--login", "--pin", "env:CODE", "-O", CODE=pin.code)
        if pin.blocked:
            assert "CKR_PIN_LOCKED" in r.stderr
        else:
            assert r.returncode == 0 and r.stdout.count("Private Key Object") == 2, r.stderr
            data, digest_info, signature = (tmp_path / n for n in ("data", "digest-info", "signature"))
            data.write_bytes(path.name.encode())
            digest_info.write_bytes(digest_info_sha256(data.read_bytes()))
            r = tools.p11(
                "--login", "--pin", "env:CODE", "--sign", "-m", "RSA-PKCS", "--id", AUT_ID,
                "-i", str(digest_info), "-o", str(signature), CODE=pin.code,
            )  # fmt: skip
            assert r.returncode == 0, r.stderr
            assert _openssl_verify(_public_key_pem(tools, AUT_ID), signature, data) == "Verified OK"
    finally:
        slot.close()
    for text in tools.kept:
        for form in _forms(tools.codes):
            assert form not in text
