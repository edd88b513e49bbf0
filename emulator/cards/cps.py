"""The CPS3-like card: public ATR, AIDs and file ids; holder and situations in cartesim's TLV."""

from __future__ import annotations

import datetime as dt

from cartesim.core import layout, tlv
from cartesim.core.layout import HolderTag, SituationTag
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.fs import DF, EF, make_mf
from cartesim.emulator.pin import Pin, UnblockCode
from cartesim.emulator.profile import CpsProfile, Holder, Situation

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


def bcd(digits: str) -> bytes:
    return bytes.fromhex(digits if len(digits) % 2 == 0 else digits + "F")


def _bcd_time(t: dt.datetime) -> bytes:
    return bcd(t.strftime("%Y%m%d%H%M%S"))


def holder_file(holder: Holder) -> bytes:
    body = b"".join(tlv.encode(tag, getattr(holder, name).encode()) for tag, name in _HOLDER_FIELDS.items())
    return tlv.encode(layout.TAG_HOLDER, body)


def situation_file(number: int, situation: Situation) -> bytes:
    body = tlv.encode(SituationTag.NUMERO, str(number).encode())
    body += b"".join(
        tlv.encode(tag, getattr(situation, name).encode()) for tag, name in _SITUATION_FIELDS.items()
    )
    return tlv.encode(layout.TAG_SITUATION, body)


def build_cps(profile: CpsProfile) -> CardOS:
    mf = make_mf()
    sn = b"\x00\x00" + layout.SN_ICC_ISSUER + bcd(profile.serial)
    mf.add(EF(layout.FID_SN_ICC, sn))
    actua = tlv.encode(
        layout.TAG_ACTUA,
        tlv.encode(layout.TAG_ACTUA_START, _bcd_time(profile.mise_a_jour.debut))
        + tlv.encode(layout.TAG_ACTUA_END, _bcd_time(profile.mise_a_jour.fin)),
    )
    mf.add(EF(layout.FID_ACTUA, actua))
    df = mf.add(DF(layout.FID_CPS_DF, aid=layout.AID_CPS2TER))
    assert isinstance(df, DF)
    df.add(EF(layout.FID_HOLDER, holder_file(profile.holder), sfi=layout.SFI_HOLDER))
    for i, situation in enumerate(profile.situations):
        data = situation_file(i + 1, situation)
        df.add(EF(layout.FID_SITUATION_FIRST + i, data, read_pin=layout.PIN_REF_PORTEUR))
    mf.add(DF(None, aid=layout.AID_CPS3_IAS))
    p, u = profile.pin, profile.unblock
    pin = Pin(p.code, p.tries_max, p.tries_max if p.tries_left is None else p.tries_left)
    unblock = UnblockCode(
        u.code,
        u.tries_max,
        u.tries_max if u.tries_left is None else u.tries_left,
        u.uses_max,
        u.uses_max if u.uses_left is None else u.uses_left,
    )
    return CardOS(layout.ATR_CPS3, mf, pin=pin, unblock=unblock)
