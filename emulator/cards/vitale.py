"""The Carte Vitale 2: public identity and NIR files; insured details and beneficiaries in TLV."""

from __future__ import annotations

from cartesim.core import layout, tlv
from cartesim.core.layout import AmoTag, BeneficiaryTag, InsuredTag
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.fs import DF, EF, make_mf
from cartesim.emulator.profile import Beneficiary, VitaleProfile


def _t(tag: int, text: str) -> bytes:
    return tlv.encode(tag, text.encode())


def _beneficiary(b: Beneficiary) -> bytes:
    body = _t(BeneficiaryTag.NOM, b.nom) + _t(BeneficiaryTag.PRENOM, b.prenom)
    body += _t(BeneficiaryTag.NAISSANCE, b.date_naissance)
    body += _t(BeneficiaryTag.RANG, str(b.rang_naissance)) + _t(BeneficiaryTag.QUALITE, b.qualite)
    body += _t(BeneficiaryTag.NIR, b.nir)
    for p in b.droits_amo:
        period = _t(AmoTag.DEBUT, p.debut.strftime("%Y%m%d")) + _t(AmoTag.FIN, p.fin.strftime("%Y%m%d"))
        body += tlv.encode(layout.TAG_AMO_PERIOD, period + _t(AmoTag.CODE, p.code))
    return tlv.encode(layout.TAG_BENEFICIARY, body)


def build_vitale(profile: VitaleProfile) -> CardOS:
    a = profile.assure
    mf = make_mf()
    identity = _t(layout.TAG_VITALE_NOM, a.nom) + _t(layout.TAG_VITALE_PRENOM, a.prenom)
    identity += _t(layout.TAG_VITALE_NAISSANCE, a.date_naissance)
    mf.add(
        EF(
            layout.FID_VITALE_IDENTITY,
            tlv.encode(layout.TAG_VITALE_RECORD, identity),
            sfi=layout.SFI_VITALE_IDENTITY,
        )
    )
    mf_vitale = mf.add(DF(None, aid=layout.AID_MF_VITALE))
    assert isinstance(mf_vitale, DF)
    dir_entry = tlv.encode(0x61, tlv.encode(0x4F, layout.AID_VITALE) + tlv.encode(0x50, b"VITALE"))
    mf_vitale.add(EF(layout.FID_DIR, dir_entry))
    app = mf.add(DF(None, aid=layout.AID_VITALE))
    assert isinstance(app, DF)
    nir = tlv.encode(layout.TAG_VITALE_RECORD, _t(layout.TAG_VITALE_NIR, a.nir + a.cle_nir))
    app.add(EF(layout.FID_VITALE_NIR, nir, sfi=layout.SFI_VITALE_NIR))
    insured = _t(InsuredTag.TYPE_CARTE, profile.type_carte) + _t(InsuredTag.SERIE, profile.serial)
    insured += _t(InsuredTag.FIN_VALIDITE, a.fin_validite.strftime("%Y%m%d") if a.fin_validite else "")
    insured += _t(InsuredTag.CLE_NIR, a.cle_nir) + _t(InsuredTag.REGIME, a.regime)
    insured += _t(InsuredTag.CAISSE, a.caisse) + _t(InsuredTag.CENTRE, a.centre)
    insured += _t(InsuredTag.CODE_GESTION, a.code_gestion)
    app.add(
        EF(
            layout.FID_VITALE_INSURED,
            tlv.encode(layout.TAG_INSURED, insured),
            sfi=layout.SFI_VITALE_INSURED,
        )
    )
    beneficiaries = b"".join(_beneficiary(b) for b in profile.beneficiaires)
    app.add(EF(layout.FID_VITALE_BENEFICIARIES, beneficiaries, sfi=layout.SFI_VITALE_BENEFICIARIES))
    return CardOS(layout.ATR_VITALE2, mf)
