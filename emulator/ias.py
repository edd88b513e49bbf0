"""The CPS3's card OS: the ISO command set of ``CardOS`` plus what the IAS-ECC card gives
middleware (OpenSC's IAS-ECC driver, ANS's Cryptolib CPS): its SELECT answers, security data
objects read with GET DATA (00 CB), MSE SET, PSO HASH / COMPUTE DIGITAL SIGNATURE / DECIPHER,
INTERNAL AUTHENTICATE, command chaining, and the CPS2ter volet under CLA A0.

Every cryptographic operation needs the code porteur's security status: 69 82 without it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from cryptography.hazmat.primitives.asymmetric import padding

from cartesim.core import layout, tlv
from cartesim.core.apdu import CommandApdu
from cartesim.core.sw import SW, SW1_MORE_DATA_CPS2TER
from cartesim.emulator import sha256
from cartesim.emulator.cardos import CardOS, Handler, Reply
from cartesim.emulator.cps2ter import Volet
from cartesim.emulator.keys import Credential

INS_MSE = 0x22
INS_PSO = 0x2A
INS_INTERNAL_AUTHENTICATE = 0x88
INS_GET_CHALLENGE = 0x84
CLA_CHAINING = 0x10

# DER prefix of DigestInfo { sha256, NULL } (PKCS#1 v2.2 §9.2 note 1)
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


class Crt(IntEnum):
    """Control reference templates of MSE SET (P2)."""

    AT = 0xA4  # authentication: INTERNAL AUTHENTICATE
    HT = 0xAA  # hash: PSO HASH
    DST = 0xB6  # digital signature: PSO COMPUTE DIGITAL SIGNATURE
    CT = 0xB8  # confidentiality: PSO DECIPHER


class Algo(IntEnum):
    """IAS-ECC algorithm references (OpenSC iasecc-sdo.h), as listed in TokenInfo."""

    RSA_PKCS = 0x02  # PKCS#1 v1.5 over data the host formatted (a DigestInfo)
    RSA_PKCS_DECRYPT = 0x1A
    SHA256 = 0x40
    SHA256_RSA_PKCS = 0x42


_ALGORITHMS: dict[Crt, set[int]] = {
    Crt.AT: {Algo.RSA_PKCS},
    Crt.HT: {Algo.SHA256},
    Crt.DST: {Algo.SHA256_RSA_PKCS, Algo.RSA_PKCS},
    Crt.CT: {Algo.RSA_PKCS_DECRYPT, 0x0A},
}


@dataclass(eq=False)
class CardKey:
    """An RSA key SDO: its reference, what it may do (its IAS-ECC ACL) and its key, made on
    first use."""

    reference: int
    operations: frozenset[Crt]
    acl: bytes  # A1 8C value of its data object control parameters
    credential: Callable[[], Credential]
    _made: Credential | None = field(default=None, init=False)

    def get(self) -> Credential:
        if self._made is None:
            self._made = self.credential()
        return self._made


def _rsa_pkcs1_sign(cred: Credential, data: bytes) -> bytes | None:
    """RSA PKCS#1 v1.5 type 1 over ``data`` as given (a DigestInfo): None if too long."""
    k = cred.modulus_bytes
    if len(data) > k - 11:
        return None
    block = b"\x00\x01" + b"\xff" * (k - 3 - len(data)) + b"\x00" + data
    numbers = cred.key.private_numbers()
    m = int.from_bytes(block, "big")
    # CRT: two half-size exponentiations
    s1, s2 = pow(m, numbers.dmp1, numbers.p), pow(m, numbers.dmq1, numbers.q)
    s = s2 + numbers.q * ((numbers.iqmp * (s1 - s2)) % numbers.p)
    return s.to_bytes(k, "big")


def _sdo_request(data: bytes) -> tlv.Tlv | None:
    """The BF <class> <ref> object of a GET DATA request (its value: the tags asked for)."""
    try:
        outer = tlv.decode(data)
        if len(outer) != 1 or outer[0].tag != layout.TAG_SDO_EXTENDED_HEADER:
            return None
        template = outer[0].children()
        if len(template) != 1 or template[0].tag != layout.TAG_SDO_TEMPLATE:
            return None
        header = template[0].children()
    except tlv.TlvError:
        return None
    if (
        len(header) != 1
        or not 0xFFFF < header[0].tag <= 0xFFFFFF
        or header[0].tag >> 16 != layout.TAG_SDO_HEADER
    ):
        return None
    return header[0]


@dataclass(eq=False)
class IasCardOS(CardOS):
    """The emulated CPS3 (see module doc)."""

    keys: dict[int, CardKey] = field(default_factory=dict)
    volet: Volet | None = None
    root_aid: bytes = layout.AID_ROOT
    pin_acl: bytes = b""
    unblock_acl: bytes = b""
    _env: dict[Crt, tuple[int | None, int | None]] = field(init=False, default_factory=dict)
    _hash: bytes | None = field(init=False, default=None)
    _chain: tuple[tuple[int, int, int], bytes] | None = field(init=False, default=None)

    def reset(self) -> None:
        super().reset()
        self._env, self._hash, self._chain = {}, None, None
        if self.volet is not None:
            self.volet.reset()

    def _handlers(self) -> dict[int, Handler]:
        return super()._handlers() | {
            layout.INS_GET_DATA_SDO: self._get_data_sdo,
            INS_MSE: self._mse,
            INS_PSO: self._pso,
            INS_INTERNAL_AUTHENTICATE: self._internal_authenticate,
            INS_GET_CHALLENGE: self._get_challenge,
        }

    # --- classes: ISO, chaining, the CPS2ter volet -----------------------------------------
    def _route(self, cmd: CommandApdu) -> Reply:
        if cmd.cla == layout.CLA_CPS2TER and self.volet is not None:
            self._chain = None
            return self._run(cmd, self.volet.handlers(self._pin_verified), SW1_MORE_DATA_CPS2TER)
        if cmd.cla == CLA_CHAINING:
            return self._chain_part(cmd)
        if self._chain is not None and self._chain[0] != (cmd.ins, cmd.p1, cmd.p2):
            self._chain = None
        reply = super()._route(cmd)
        self._chain = None
        return reply

    def _chain_part(self, cmd: CommandApdu) -> Reply:
        """A part of a chained command (CLA 10): kept until the last part (CLA 00) comes."""
        self._pending = b""
        if cmd.ins != INS_PSO:
            self._chain = None
            return b"", SW.CHAINING_NOT_SUPPORTED
        header = (cmd.ins, cmd.p1, cmd.p2)
        before = self._chain[1] if self._chain is not None and self._chain[0] == header else b""
        self._chain = (header, before + cmd.data)
        return b"", SW.OK

    def _data(self, cmd: CommandApdu) -> bytes:
        """The command's whole data field, the earlier chained parts included."""
        return (self._chain[1] if self._chain is not None else b"") + cmd.data

    def _pin_verified(self) -> bool:
        return self.pin is not None and self.pin.verified

    # --- SELECT as the real card answers it ----------------------------------------------------
    def _select(self, cmd: CommandApdu) -> Reply:
        if cmd.p1 == 0x04 and cmd.data == self.root_aid:
            # The root application named in EF.ATR: the MF. With P2=00 the real card answers
            # 90 00 and no FCI.
            if cmd.p2 not in (0x00, 0x04, 0x0C):
                return b"", SW.INCORRECT_P1P2
            self.current = self.mf
            return (self.mf.fcp() if cmd.p2 == 0x04 else b""), SW.OK
        if cmd.p2 == 0x00:
            return b"", SW.INCORRECT_P1P2  # no FCI (6F) on this card: FCP (04) or nothing (0C)
        if cmd.p1 == 0x02 and cmd.data == layout.FID_MF.to_bytes(2, "big"):
            self.current = self.mf  # OpenSC's IAS-ECC driver selects the MF as a file ID
            return (self.mf.fcp() if cmd.p2 == 0x04 else b""), SW.OK
        return super()._select(cmd)

    # --- GET DATA of a security data object ----------------------------------------------------
    def _get_data_sdo(self, cmd: CommandApdu) -> Reply:
        """00 CB 3F FF { 4D { 70 { BF <class> <ref> <tag list> } } }: a data object's public part."""
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF):
            return b"", SW.INCORRECT_P1P2
        header = _sdo_request(cmd.data)
        if header is None:
            return b"", SW.WRONG_DATA
        sdo_class, ref = header.tag >> 8 & 0xFF, header.tag & 0xFF
        wanted = header.value[:1]
        if sdo_class == layout.SDO_CLASS_CHV:
            docp = self._chv_docp(ref)
        elif sdo_class == layout.SDO_CLASS_RSA_PRIVATE:
            key = self.keys.get(ref | 0x80)
            docp = None if key is None else self._key_docp(key)
        else:
            docp = None  # the CPx keeps no security environment readable (OpenSC #2275: 6A 88)
        if docp is None:
            return b"", SW.DATA_NOT_FOUND
        if wanted != bytes((layout.TAG_SDO_DOCP,)):
            return b"", SW.INCORRECT_P1P2  # no other public part: OpenSC falls back to A0
        body = tlv.encode(header.tag, tlv.encode(layout.TAG_SDO_DOCP, docp))
        return tlv.encode(layout.TAG_SDO_TEMPLATE, body), SW.OK

    def _chv_docp(self, ref: int) -> bytes | None:
        acls = tlv.encode(layout.TAG_ACLS, tlv.encode(layout.TAG_ACL_CONTACT, self.pin_acl))
        if ref == layout.PIN_REF_PORTEUR and self.pin is not None:
            p = self.pin
            counters = tlv.encode(layout.TAG_TRIES_MAX, bytes((p.tries_max,)))
            return counters + tlv.encode(layout.TAG_TRIES_LEFT, bytes((p.tries_left,))) + acls
        if ref == layout.PIN_REF_DEBLOCAGE and self.unblock is not None:
            u = self.unblock
            acls = tlv.encode(layout.TAG_ACLS, tlv.encode(layout.TAG_ACL_CONTACT, self.unblock_acl))
            return (
                tlv.encode(layout.TAG_TRIES_MAX, bytes((u.tries_max,)))
                + tlv.encode(layout.TAG_TRIES_LEFT, bytes((u.tries_left,)))
                + tlv.encode(layout.TAG_USES_MAX, bytes((u.uses_max,)))
                + tlv.encode(layout.TAG_USES_LEFT, bytes((u.uses_left,)))
                + acls
            )
        return None

    @staticmethod
    def _key_docp(key: CardKey) -> bytes:
        size = layout.KEY_SIZE_BYTES.to_bytes(2, "big")
        acls = tlv.encode(layout.TAG_ACLS, tlv.encode(layout.TAG_ACL_CONTACT, key.acl))
        return tlv.encode(layout.TAG_DOCP_SIZE, size) + acls

    # --- MSE SET -------------------------------------------------------------------------------
    def _mse(self, cmd: CommandApdu) -> Reply:
        if cmd.p1 != 0x41:
            return b"", SW.INCORRECT_P1P2
        try:
            crt = Crt(cmd.p2)
            items = {t.tag: t.value for t in tlv.decode(cmd.data)}
        except (ValueError, tlv.TlvError):
            return b"", SW.INCORRECT_P1P2 if cmd.p2 not in list(Crt) else SW.WRONG_DATA
        algo = items.get(0x80)
        key_ref = items.get(0x84, items.get(0x83))
        if algo is not None and (len(algo) != 1 or algo[0] not in _ALGORITHMS[crt]):
            return b"", SW.WRONG_DATA
        needs_key = crt is not Crt.HT
        if needs_key and (key_ref is None or len(key_ref) != 1 or key_ref[0] not in self.keys):
            return b"", SW.DATA_NOT_FOUND
        self._env[crt] = (key_ref[0] if key_ref else None, algo[0] if algo else None)
        if crt in (Crt.HT, Crt.DST):
            self._hash = None
        return b"", SW.OK

    def _key_for(self, crt: Crt) -> tuple[CardKey | None, int | None, int]:
        """The key and algorithm MSE set for ``crt``, or the status word that refuses."""
        if crt not in self._env:
            return None, None, SW.CONDITIONS_NOT_SATISFIED
        ref, algo = self._env[crt]
        key = self.keys.get(ref) if ref is not None else None
        if key is None:
            return None, None, SW.CONDITIONS_NOT_SATISFIED
        if not self._pin_verified():
            return None, None, SW.SECURITY_NOT_SATISFIED
        if crt not in key.operations:
            return None, None, SW.COMMAND_NOT_ALLOWED
        return key, algo, SW.OK

    # --- PSO -----------------------------------------------------------------------------------
    def _pso(self, cmd: CommandApdu) -> Reply:
        operation = (cmd.p1, cmd.p2)
        if operation == (0x90, 0xA0):
            return self._pso_hash(cmd)
        if operation == (0x9E, 0x9A):
            return self._pso_sign(cmd)
        if operation == (0x80, 0x86):
            return self._pso_decipher(cmd)
        return b"", SW.INCORRECT_P1P2

    def _pso_hash(self, cmd: CommandApdu) -> Reply:
        """90 { state (32) ‖ bits hashed (8) } or 90 00, then 80 { last block }: the card ends
        the SHA-256 the host began."""
        ht = self._env.get(Crt.HT)
        if ht is None and self._env.get(Crt.DST, (None, None))[1] != Algo.SHA256_RSA_PKCS:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        try:
            items = tlv.decode(cmd.data)
        except tlv.TlvError:
            return b"", SW.WRONG_DATA
        partial, last = tlv.find(items, 0x90), tlv.find(items, 0x80)
        if partial is None or last is None or len(last.value) > sha256.BLOCK:
            return b"", SW.WRONG_DATA
        if not partial.value:
            state, hashed = sha256.INITIAL_STATE, 0
        elif len(partial.value) == sha256.STATE_SIZE + 8:
            state = sha256.state_from_bytes(partial.value[: sha256.STATE_SIZE])
            hashed = int.from_bytes(partial.value[sha256.STATE_SIZE :], "big")
            if hashed % (sha256.BLOCK * 8):
                return b"", SW.WRONG_DATA
        else:
            return b"", SW.WRONG_DATA
        self._hash = sha256.finish(state, hashed, last.value)
        return b"", SW.OK

    def _pso_sign(self, cmd: CommandApdu) -> Reply:
        key, algo, sw = self._key_for(Crt.DST)
        if key is None:
            return b"", sw
        given = cmd.data or self._hash
        self._hash = None
        if given is None:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        if algo in (None, Algo.SHA256_RSA_PKCS):
            if len(given) != 32:
                return b"", SW.WRONG_LENGTH
            given = SHA256_DIGEST_INFO + given
        signature = _rsa_pkcs1_sign(key.get(), given)
        return (signature, SW.OK) if signature is not None else (b"", SW.WRONG_LENGTH)

    def _pso_decipher(self, cmd: CommandApdu) -> Reply:
        key, _, sw = self._key_for(Crt.CT)
        if key is None:
            return b"", sw
        data = self._data(cmd)
        cred = key.get()
        if data[:1] != b"\x81" or len(data) != 1 + cred.modulus_bytes:
            return b"", SW.WRONG_DATA if data[:1] != b"\x81" else SW.WRONG_LENGTH
        try:
            return cred.key.decrypt(data[1:], padding.PKCS1v15()), SW.OK
        except ValueError:
            return b"", SW.WRONG_DATA

    # --- GET CHALLENGE (OpenSC's IAS-ECC driver declares a random number generator) -----------
    @staticmethod
    def _get_challenge(cmd: CommandApdu) -> Reply:
        if (cmd.p1, cmd.p2) != (0x00, 0x00):
            return b"", SW.INCORRECT_P1P2
        if cmd.data or cmd.le is None:
            return b"", SW.WRONG_LENGTH
        return secrets.token_bytes(cmd.le), SW.OK

    # --- INTERNAL AUTHENTICATE -------------------------------------------------------------------
    def _internal_authenticate(self, cmd: CommandApdu) -> Reply:
        if (cmd.p1, cmd.p2) != (0x00, 0x00):
            return b"", SW.INCORRECT_P1P2
        key, _, sw = self._key_for(Crt.AT)
        if key is None:
            return b"", sw
        if not cmd.data:
            return b"", SW.WRONG_LENGTH
        signature = _rsa_pkcs1_sign(key.get(), cmd.data)
        return (signature, SW.OK) if signature is not None else (b"", SW.WRONG_LENGTH)
