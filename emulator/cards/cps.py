"""The CPS3 as middleware sees it: EF.ATR, EF.DIR, EF.SN.ICC, the IAS-ECC PKCS#15 application
in 3F00/0001 with its two keys, the situations, and the CPS2ter volet.

docs/card-layout.md says, file by file, what is public fact and what is cartesim's own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache

from cartesim.core import layout, tlv
from cartesim.core.layout import HolderTag, SituationTag
from cartesim.emulator import keys, pkcs15
from cartesim.emulator.cps2ter import Volet
from cartesim.emulator.fs import DF, EF, make_mf
from cartesim.emulator.ias import Algo, CardKey, Crt, IasCardOS
from cartesim.emulator.pin import Pin, UnblockCode
from cartesim.emulator.pkcs15 import (
    Algorithm,
    AlgorithmOperation,
    CertificateObject,
    DataObject,
    KeyAccess,
    KeyUsage,
    ObjectFlag,
    OdfTag,
    PinFlag,
    PinObject,
    RsaKeyObject,
    TokenFlag,
)
from cartesim.emulator.profile import CpsProfile, Holder, OwnKey, Situation

_HOLDER_FIELDS: dict[HolderTag, str] = {
    HolderTag.TYPE_CARTE: "type_carte",
    HolderTag.TYPE_IDENT: "type_ident",
    HolderTag.NIR: "nir",
    HolderTag.CLE_NIR: "cle_nir",
    HolderTag.CIVILITE: "civilite",
    HolderTag.NOM: "nom",
    HolderTag.PRENOM: "prenom",
}
# Every SituationTag but NUMERO is named like the profile field it holds.
_SITUATION_FIELDS = {tag: tag.name.lower() for tag in SituationTag if tag != SituationTag.NUMERO}

# IAS-ECC access rules (AM byte, then one SCB per operation the AM byte names; 00 always,
# FF never, 1x the code porteur). Public ones are those of a real CPx (OpenSC #2223, #2275).
ACL_READ_ONLY = bytes.fromhex("7BFFFFFFFFFF00")  # EF.SN.ICC: read always, nothing else
ACL_SYSTEM_FILE = bytes.fromhex("7B45FFFFFF4500")  # EF.ATR, EF.DIR: read always, update by SM
ACL_SYSTEM_FILE_CONTACTLESS = ACL_READ_ONLY
ACL_READ_WITH_PIN = bytes.fromhex("7BFFFFFFFFFF11")  # cartesim: read after the code porteur
ACL_DF = bytes.fromhex("7BFFFFFFFFFFFF")  # cartesim
ACL_PIN = bytes.fromhex("F3000013FF00")  # the code porteur's SDO on a real CPx (Cryptolib trace)
ACL_UNBLOCK = bytes.fromhex("F3FF00FFFF00")  # cartesim: verify only
# RSA key SDOs: PSO CDS, INTERNAL AUTHENTICATE, PSO DECIPHER, GENERATE, PUT DATA, GET DATA
ACL_KEY_SIGNATURE = bytes.fromhex("7B11FFFFFFFF00")
ACL_KEY_AUTHENTICATION = bytes.fromhex("7BFF1111FFFF00")

# TokenInfo supportedAlgorithms: what the emulated card does (SHA-256 only). The keys carry no
# algorithm references, as on a real CPx; OpenSC's IAS-ECC emulator adds them from this list.
CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS, CKM_SHA256 = 0x0001, 0x0040, 0x0250
ALGORITHMS = [
    Algorithm(1, CKM_SHA256, AlgorithmOperation.HASH, Algo.SHA256),
    Algorithm(2, CKM_SHA256_RSA_PKCS, AlgorithmOperation.COMPUTE_SIGNATURE, Algo.SHA256_RSA_PKCS),
    Algorithm(3, CKM_RSA_PKCS, AlgorithmOperation.COMPUTE_SIGNATURE, Algo.RSA_PKCS),
    Algorithm(4, CKM_RSA_PKCS, AlgorithmOperation.DECIPHER, Algo.RSA_PKCS_DECRYPT),
]
PKCS15_FIDS = (
    layout.FID_ODF,
    layout.FID_TOKEN_INFO,
    layout.FID_AODF,
    layout.FID_PRKDF,
    layout.FID_CDF,
    layout.FID_DODF,
)
MANUFACTURER = "cartesim (test card)"
APPLICATION_LABEL = "CPS3 IAS-ECC (cartesim)"


def bcd(digits: str) -> bytes:
    return bytes.fromhex(digits if len(digits) % 2 == 0 else digits + "F")


def _bcd_time(t: dt.datetime) -> bytes:
    return bcd(t.strftime("%Y%m%d%H%M%S"))


def luhn_digit(digits: str) -> str:
    """The ISO/IEC 7812 check digit of ``digits``."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str(-total % 10)


def pan(serial: str) -> bytes:
    """EF.SN.ICC's PAN: issuer 80250 00001, the card number, its Luhn digit, F padding (BCD)."""
    digits = layout.SN_ICC_ISSUER.hex() + serial
    return bcd(digits + luhn_digit(digits))


def holder_file(holder: Holder) -> bytes:
    body = b"".join(tlv.encode(tag, getattr(holder, name).encode()) for tag, name in _HOLDER_FIELDS.items())
    return tlv.encode(layout.TAG_HOLDER, body)


def situation_file(number: int, situation: Situation) -> bytes:
    body = tlv.encode(SituationTag.NUMERO, str(number).encode())
    body += b"".join(
        tlv.encode(tag, getattr(situation, name).encode()) for tag, name in _SITUATION_FIELDS.items()
    )
    return tlv.encode(layout.TAG_SITUATION, body)


def _credential(profile: CpsProfile, role: keys.KeyRole, own: OwnKey | None) -> Callable[[], keys.Credential]:
    """How to get the key of ``role``: the profile's PEM, or the one derived for this card."""
    if own is not None:
        return lambda: keys.credential_from_pem(own.key, own.certificate)
    h = profile.holder
    holder = keys.Holder(profile.serial, h.type_ident + h.nir, h.nom, h.prenom)
    return lambda: keys.card_credential(holder, role)


def _path(*fids: int) -> bytes:
    return b"".join(f.to_bytes(2, "big") for f in fids)


def _app(*fids: int) -> bytes:
    """An absolute path into the application DF 3F00/0001."""
    return _path(layout.FID_MF, layout.FID_CPS_DF, *fids)


def _pkcs15_directory(profile: CpsProfile) -> dict[int, bytes]:
    """ODF, TokenInfo, AODF, PrKDF, CDF and DODF, by file ID."""
    h = profile.holder
    porteur_unblocked_by = layout.AUTH_ID_DEBLOCAGE if profile.pkcs15.unblock_code_object else None
    auth_objects = [
        PinObject(
            layout.LABEL_PIN,
            layout.AUTH_ID_PIN,
            layout.PIN_REF_PORTEUR,
            PinFlag.CASE_SENSITIVE | PinFlag.INITIALIZED,
            min_length=4,
            max_length=8,
            stored_length=8,
            unblocked_by=porteur_unblocked_by,
        )
    ]
    if profile.pkcs15.unblock_code_object:
        auth_objects.append(
            PinObject(
                layout.LABEL_DEBLOCAGE,
                layout.AUTH_ID_DEBLOCAGE,
                layout.PIN_REF_DEBLOCAGE,
                PinFlag.CASE_SENSITIVE
                | PinFlag.INITIALIZED
                | PinFlag.UNBLOCKING_PIN
                | PinFlag.UNBLOCK_DISABLED,
                min_length=8,
                max_length=8,
                stored_length=8,
                flags=ObjectFlag.PRIVATE,
            )
        )
    access = KeyAccess.SENSITIVE | KeyAccess.ALWAYS_SENSITIVE | KeyAccess.NEVER_EXTRACTABLE
    key_objects = [
        RsaKeyObject(
            layout.LABEL_KEY_SIGNATURE,
            layout.KEY_ID_SIGNATURE,
            KeyUsage.NON_REPUDIATION,
            access,
            layout.KEY_REF_SIGNATURE,
            layout.AUTH_ID_PIN,
            layout.KEY_SIZE_BYTES * 8,
            _app(),
        ),
        RsaKeyObject(
            layout.LABEL_KEY_AUTHENTICATION,
            layout.KEY_ID_AUTHENTICATION,
            KeyUsage.SIGN | KeyUsage.DECRYPT,
            access,
            layout.KEY_REF_AUTHENTICATION,
            layout.AUTH_ID_PIN,
            layout.KEY_SIZE_BYTES * 8,
            _app(),
            flags=ObjectFlag.PRIVATE | ObjectFlag.MODIFIABLE,
        ),
    ]
    cert_objects = [
        CertificateObject(
            layout.LABEL_CERT_SIGNATURE, layout.KEY_ID_SIGNATURE, _app(layout.FID_CERT_SIGNATURE)
        ),
        CertificateObject(
            layout.LABEL_CERT_AUTHENTICATION,
            layout.KEY_ID_AUTHENTICATION,
            _app(layout.FID_CERT_AUTHENTICATION),
        ),
    ]
    data_objects = [
        DataObject("CPS_ID_CARD", "CPS", _path(layout.FID_MF, layout.FID_SN_ICC)),
        DataObject("CPS_NAME_PS", "CPS", _app(layout.FID_HOLDER)),
    ] + [
        DataObject(
            f"CPS_ACTIVITY_{n:02d}_PS", "CPS", _app(layout.FID_SITUATION_FIRST + n - 1), layout.AUTH_ID_PIN
        )
        for n in profile.situation_numbers()
    ]
    odf = pkcs15.odf(
        [
            (OdfTag.PRIVATE_KEYS, _app(layout.FID_PRKDF)),
            (OdfTag.CERTIFICATES, _app(layout.FID_CDF)),
            (OdfTag.DATA_OBJECTS, _app(layout.FID_DODF)),
            (OdfTag.AUTH_OBJECTS, _app(layout.FID_AODF)),
        ]
    )
    token = pkcs15.token_info(
        pan(profile.serial),
        MANUFACTURER,
        f"{h.prenom} {h.nom}",
        TokenFlag.READ_ONLY | TokenFlag.LOGIN_REQUIRED,
        ALGORITHMS,
    )
    return {
        layout.FID_ODF: odf,
        layout.FID_TOKEN_INFO: token,
        layout.FID_AODF: b"".join(o.encode() for o in auth_objects),
        layout.FID_PRKDF: b"".join(o.encode() for o in key_objects),
        layout.FID_CDF: b"".join(o.encode() for o in cert_objects),
        layout.FID_DODF: b"".join(o.encode() for o in data_objects),
    }


def _pkcs15_files(profile: CpsProfile, card_keys: dict[int, CardKey]) -> list[EF]:
    """The PKCS#15 directory files and the two certificate files, all made when first read:
    the suite builds cards by the hundred and most are never asked for them."""
    directory = cache(lambda: _pkcs15_directory(profile))

    def entry(fid: int) -> Callable[[], bytes]:
        return lambda: directory()[fid]

    def certificate(key: CardKey) -> Callable[[], bytes]:
        return lambda: key.get().certificate_der

    files = [EF(fid, entry(fid), acl=ACL_READ_ONLY) for fid in PKCS15_FIDS]
    files.append(
        EF(layout.FID_CERT_SIGNATURE, certificate(card_keys[layout.KEY_REF_SIGNATURE]), acl=ACL_READ_ONLY)
    )
    files.append(
        EF(
            layout.FID_CERT_AUTHENTICATION,
            certificate(card_keys[layout.KEY_REF_AUTHENTICATION]),
            acl=ACL_READ_ONLY,
        )
    )
    return files


def _volet(profile: CpsProfile) -> Volet:
    """The CPS2ter volet: situations at 3F00/4010.., the first one also as billing situation."""
    mf = make_mf()
    for number, situation in zip(profile.situation_numbers(), profile.situations, strict=True):
        data = situation_file(number, situation)
        mf.add(EF(layout.FID_CPS2TER_SITUATION_FIRST + number - 1, data, read_pin=layout.PIN_REF_PORTEUR))
    billing = mf.add(DF(layout.FID_CPS2TER_BILLING_DF))
    assert isinstance(billing, DF)
    first = profile.situations[0]
    billing.add(
        EF(
            layout.FID_CPS2TER_BILLING,
            situation_file(profile.situation_numbers()[0], first),
            read_pin=layout.PIN_REF_PORTEUR,
        )
    )
    return Volet(mf)


def build_cps(profile: CpsProfile) -> IasCardOS:
    mf = make_mf()
    mf.aid, mf.acl = layout.AID_ROOT, ACL_DF
    dir_record = tlv.encode(
        0x61, tlv.encode(0x4F, layout.AID_CPS3_IAS) + tlv.encode(0x50, APPLICATION_LABEL.encode())
    )
    for fid, content, sfi in (
        (layout.FID_EF_DIR, dir_record, layout.SFI_EF_DIR),
        (layout.FID_EF_ATR, layout.EF_ATR_CONTENT, layout.SFI_EF_ATR),
    ):
        mf.add(EF(fid, content, sfi=sfi, acl=ACL_SYSTEM_FILE, acl_contactless=ACL_SYSTEM_FILE_CONTACTLESS))
    sn = tlv.encode(layout.TAG_PAN, pan(profile.serial))
    mf.add(EF(layout.FID_SN_ICC, sn, sfi=layout.SFI_SN_ICC, acl=ACL_READ_ONLY))
    if profile.mise_a_jour is not None:
        actua = tlv.encode(
            layout.TAG_ACTUA,
            tlv.encode(layout.TAG_ACTUA_START, _bcd_time(profile.mise_a_jour.debut))
            + tlv.encode(layout.TAG_ACTUA_END, _bcd_time(profile.mise_a_jour.fin)),
        )
        mf.add(EF(layout.FID_ACTUA, actua, acl=ACL_READ_ONLY))

    card_keys = {
        layout.KEY_REF_SIGNATURE: CardKey(
            layout.KEY_REF_SIGNATURE,
            frozenset({Crt.DST}),
            ACL_KEY_SIGNATURE,
            _credential(profile, keys.KeyRole.SIGNATURE, profile.keys.signature),
        ),
        layout.KEY_REF_AUTHENTICATION: CardKey(
            layout.KEY_REF_AUTHENTICATION,
            frozenset({Crt.AT, Crt.CT}),
            ACL_KEY_AUTHENTICATION,
            _credential(profile, keys.KeyRole.AUTHENTICATION, profile.keys.authentication),
        ),
    }
    app = mf.add(DF(layout.FID_CPS_DF, aid=layout.AID_CPS3_IAS, acl=ACL_DF))
    assert isinstance(app, DF)
    for ef in _pkcs15_files(profile, card_keys):
        app.add(ef)
    app.add(EF(layout.FID_HOLDER, holder_file(profile.holder), acl=ACL_READ_ONLY))
    for number, situation in zip(profile.situation_numbers(), profile.situations, strict=True):
        data = situation_file(number, situation)
        fid = layout.FID_SITUATION_FIRST + number - 1
        app.add(EF(fid, data, read_pin=layout.PIN_REF_PORTEUR, acl=ACL_READ_WITH_PIN))

    p, u = profile.pin, profile.unblock
    pin = Pin(p.code, p.tries_max, p.tries_max if p.tries_left is None else p.tries_left)
    unblock = UnblockCode(
        u.code,
        u.tries_max,
        u.tries_max if u.tries_left is None else u.tries_left,
        u.uses_max,
        u.uses_max if u.uses_left is None else u.uses_left,
    )
    return IasCardOS(
        layout.ATR_CPS3,
        mf,
        pin=pin,
        unblock=unblock,
        keys=card_keys,
        volet=_volet(profile) if profile.cps2ter else None,
        pin_acl=ACL_PIN,
        unblock_acl=ACL_UNBLOCK,
    )
