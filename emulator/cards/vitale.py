"""The Carte Vitale 2 as public readers see it (docs/card-layout.md).

The MF is the VITALE_MF application: the identity file (one 65 per person), DIR and PAN. The
VITALE application holds the map (EF 2001 POINTERS), the NIR file (one 65 per person, by
position) and cartesim's own card and rights files, which the map names.
"""

from __future__ import annotations

from cartesim.core import layout, tlv
from cartesim.core.layout import AmoTag, CardTag, RightsTag
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.fs import DF, EF
from cartesim.emulator.profile import Beneficiary, VitaleProfile
from cartesim.emulator.vitale_records import identity_record, nir_record


def _t(tag: int, text: str) -> bytes:
    return tlv.encode(tag, text.encode())


def _card_file(profile: VitaleProfile) -> bytes:
    a = profile.assure
    body = _t(CardTag.DEBUT_VALIDITE, profile.debut_validite.strftime("%Y%m%d"))
    body += _t(CardTag.FIN_VALIDITE, a.fin_validite.strftime("%Y%m%d") if a.fin_validite else "")
    body += _t(CardTag.TYPE_CARTE, profile.type_carte) + _t(CardTag.REGIME, a.regime)
    body += _t(CardTag.CAISSE, a.caisse) + _t(CardTag.CENTRE, a.centre)
    body += _t(CardTag.CODE_GESTION, a.code_gestion)
    return tlv.encode(layout.TAG_VITALE_CARD, body)


def _rights(b: Beneficiary) -> bytes:
    body = _t(RightsTag.RANG, str(b.rang_naissance)) + _t(RightsTag.QUALITE, b.qualite)
    body += _t(RightsTag.NIR, b.nir)
    for p in b.droits_amo:
        period = _t(AmoTag.DEBUT, p.debut.strftime("%Y%m%d")) + _t(AmoTag.FIN, p.fin.strftime("%Y%m%d"))
        body += tlv.encode(layout.TAG_AMO_PERIOD, period + _t(AmoTag.CODE, p.code))
    return tlv.encode(layout.TAG_RIGHTS, body)


def _map(applications: list[tuple[int, bytes]], files: list[tuple[int, str, int]]) -> bytes:
    """EF 2001: E0 { A0 { 82 per application }, 80 per file }."""
    apps = b"".join(
        tlv.encode(layout.TAG_MAP_APPLICATION, entry.to_bytes(2, "big") + b"\x00\x00" + aid)
        for entry, aid in applications
    )
    named = b"".join(
        tlv.encode(
            layout.TAG_MAP_FILE,
            name.encode("ascii").ljust(layout.MAP_FILE_NAME_LEN)
            + entry.to_bytes(2, "big")
            + fid.to_bytes(2, "big"),
        )
        for entry, name, fid in files
    )
    return tlv.encode(layout.TAG_MAP, tlv.encode(layout.TAG_MAP_APPLICATIONS, apps) + named)


def build_vitale(profile: VitaleProfile) -> CardOS:
    persons = profile.beneficiaires
    insured_nir = profile.assure.nir + profile.assure.cle_nir
    mf = DF(layout.FID_MF, aid=layout.AID_VITALE_MF)
    app = DF(None, aid=layout.AID_VITALE)
    # (application entry, DF, name in the map, file): every file the map lists.
    mapped = [
        (
            layout.MAP_ENTRY_VITALE_MF,
            mf,
            layout.MAP_NAME_IDENTITY,
            EF(
                layout.FID_VITALE_IDENTITY,
                b"".join(identity_record(b.nom, b.prenom, b.date_naissance) for b in persons),
                sfi=layout.SFI_VITALE_IDENTITY,
            ),
        ),
        (
            layout.MAP_ENTRY_VITALE,
            app,
            layout.MAP_NAME_NIR,
            # Every person is covered under the insured's NIR: the same record at each position.
            EF(layout.FID_VITALE_NIR, nir_record(insured_nir) * len(persons), sfi=layout.SFI_VITALE_NIR),
        ),
        (
            layout.MAP_ENTRY_VITALE,
            app,
            layout.MAP_NAME_CARD,
            EF(layout.FID_VITALE_CARD, _card_file(profile), sfi=layout.SFI_VITALE_CARD),
        ),
        (
            layout.MAP_ENTRY_VITALE,
            app,
            layout.MAP_NAME_RIGHTS,
            EF(layout.FID_VITALE_RIGHTS, b"".join(_rights(b) for b in persons), sfi=layout.SFI_VITALE_RIGHTS),
        ),
    ]
    for _, df, _, ef in mapped:
        df.add(ef)
    directory = tlv.encode(
        layout.TAG_DIR_APPLICATION,
        tlv.encode(layout.TAG_DIR_AID, layout.AID_VITALE) + _t(layout.TAG_DIR_LABEL, "VITALE"),
    )
    mf.add(EF(layout.FID_DIR, directory))
    mf.add(EF(layout.FID_PAN, tlv.encode(layout.TAG_PAN, bytes.fromhex(profile.serial))))
    mf.add(app)
    app.add(
        EF(
            layout.FID_POINTERS,
            _map(
                [
                    (layout.MAP_ENTRY_VITALE_MF, layout.AID_VITALE_MF),
                    (layout.MAP_ENTRY_VITALE, layout.AID_VITALE),
                ],
                [(entry, name, ef.fid) for entry, _, name, ef in mapped],
            ),
        )
    )
    return CardOS(layout.ATR_VITALE2, mf)
