"""The emulated CPS as a downstream developer uses it: OpenSC's PKCS#11 module, from Python.

PyKCS11 (the ``test`` extra) drives ``opensc-pkcs11.so``: log in with the code porteur, sign
with the authentication key (CPS_PRIV_AUT). With Debian's OpenSC 0.23 the IAS-ECC driver signs
CKM_RSA_PKCS through INTERNAL AUTHENTICATE; its CKM_SHA256_RSA_PKCS path needs OpenSSL < 3
(docs/card-layout.md), so the hash is made here and sent as a DigestInfo: the signature is the
same PKCS#1 v1.5 SHA-256 signature.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

from cartesim.core import layout

# Where Debian (and most distributions) install OpenSC's PKCS#11 module.
MODULE_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib64/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
)
ENV_MODULE = "CARTESIM_PKCS11_MODULE"
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def opensc_module() -> Path | None:
    """OpenSC's PKCS#11 module: $CARTESIM_PKCS11_MODULE, else the usual places; None if absent."""
    named = os.environ.get(ENV_MODULE)
    candidates = (named,) if named else MODULE_CANDIDATES
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def digest_info_sha256(data: bytes) -> bytes:
    """What CKM_RSA_PKCS signs to give a SHA-256 PKCS#1 v1.5 signature of ``data``."""
    return SHA256_DIGEST_INFO + hashlib.sha256(data).digest()


class Token:
    """One PKCS#11 session on the token of ``reader`` (its slot description)."""

    def __init__(self, module: Path, reader: str) -> None:
        import PyKCS11  # the test extra: imported only by those who use it

        self.p11 = PyKCS11
        self.lib = PyKCS11.PyKCS11Lib()
        self.lib.load(str(module))
        slots = [s for s in self.lib.getSlotList(tokenPresent=True) if self._description(s) == reader]
        if not slots:
            raise LookupError(f"no token in reader {reader!r}")
        self.session = self.lib.openSession(slots[0], PyKCS11.CKF_SERIAL_SESSION)

    def _description(self, slot: int) -> str:
        return str(self.lib.getSlotInfo(slot).slotDescription).strip()

    def login(self, code: str) -> None:
        self.session.login(code)

    def key(self, label: str = layout.LABEL_KEY_AUTHENTICATION) -> Any:
        p = self.p11
        found = self.session.findObjects([(p.CKA_CLASS, p.CKO_PRIVATE_KEY), (p.CKA_LABEL, label)])
        if not found:
            raise LookupError(f"no private key {label!r}")
        return found[0]

    def certificate(self, key_id: bytes = layout.KEY_ID_AUTHENTICATION) -> bytes:
        p = self.p11
        (cert,) = self.session.findObjects([(p.CKA_CLASS, p.CKO_CERTIFICATE), (p.CKA_ID, list(key_id))])
        return bytes(self.session.getAttributeValue(cert, [p.CKA_VALUE], True)[0])

    def sign_sha256(self, data: bytes, label: str = layout.LABEL_KEY_AUTHENTICATION) -> bytes:
        """A SHA-256 PKCS#1 v1.5 signature of ``data`` by the card."""
        mechanism = self.p11.Mechanism(self.p11.CKM_RSA_PKCS, None)
        return bytes(self.session.sign(self.key(label), digest_info_sha256(data), mechanism))

    def close(self) -> None:
        with contextlib.suppress(self.p11.PyKCS11Error):  # not logged in
            self.session.logout()
        self.session.closeSession()
