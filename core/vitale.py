"""The Carte Vitale: identity and NIR (public layout), insured details, beneficiaries, AMO rights."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cartesim.core import commands, layout, tlv
from cartesim.core.errors import CardDataError
from cartesim.core.layout import AmoTag, BeneficiaryTag, InsuredTag
from cartesim.core.transport import Transport


@dataclass(frozen=True)
class AmoRights:
    debut: dt.date
    fin: dt.date
    code: str

    def active(self, on: dt.date) -> bool:
        return self.debut <= on <= self.fin


@dataclass(frozen=True)
class Beneficiary:
    nom: str
    prenom: str
    date_naissance: str  # YYYYMMDD; lunar dates (day or month 00) exist
    rang: str
    qualite: str
    nir: str
    droits_amo: tuple[AmoRights, ...]

    def rights_on(self, on: dt.date) -> bool:
        return any(p.active(on) for p in self.droits_amo)


@dataclass(frozen=True)
class Insured:
    nom: str
    prenom: str
    date_naissance: str
    nir: str  # 13 characters
    cle_nir: str
    type_carte: str
    serie: str
    fin_validite: str  # YYYYMMDD or empty
    regime: str
    caisse: str
    centre: str
    code_gestion: str


@dataclass(frozen=True)
class VitaleData:
    assure: Insured
    beneficiaires: tuple[Beneficiary, ...]


def _text(items: list[tlv.Tlv], tag: int, what: str) -> str:
    item = tlv.find(items, tag)
    if item is None:
        raise CardDataError(f"{what}: tag {tag:02X} missing")
    try:
        return item.value.decode("utf-8")
    except UnicodeDecodeError:
        raise CardDataError(f"{what}: tag {tag:02X} is not text") from None


def _template(raw: bytes, tag: int, what: str) -> list[tlv.Tlv]:
    try:
        outer = tlv.find(tlv.decode(raw), tag)
        if outer is None:
            raise CardDataError(f"{what}: template {tag:02X} missing")
        return outer.children()
    except tlv.TlvError as e:
        raise CardDataError(f"{what}: {e}") from None


def _date(text: str, what: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise CardDataError(f"{what}: bad date {text!r}") from None


def _beneficiary(item: tlv.Tlv, n: int) -> Beneficiary:
    what = f"beneficiary {n}"
    try:
        children = item.children()
    except tlv.TlvError as e:
        raise CardDataError(f"{what}: {e}") from None
    periods = []
    for p in tlv.find_all(children, layout.TAG_AMO_PERIOD):
        fields = p.children()
        periods.append(
            AmoRights(
                _date(_text(fields, AmoTag.DEBUT, what), what),
                _date(_text(fields, AmoTag.FIN, what), what),
                _text(fields, AmoTag.CODE, what),
            )
        )
    return Beneficiary(
        nom=_text(children, BeneficiaryTag.NOM, what),
        prenom=_text(children, BeneficiaryTag.PRENOM, what),
        date_naissance=_text(children, BeneficiaryTag.NAISSANCE, what),
        rang=_text(children, BeneficiaryTag.RANG, what),
        qualite=_text(children, BeneficiaryTag.QUALITE, what),
        nir=_text(children, BeneficiaryTag.NIR, what),
        droits_amo=tuple(periods),
    )


class VitaleCard:
    """A Carte Vitale 2 behind any transport. Nothing here needs a PIN."""

    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def read(self) -> VitaleData:
        with self.t.operation("Lire Carte Vitale"), self.t.transaction():
            commands.select_mf(self.t)
            ident = _template(
                commands.read_binary(self.t, sfi=layout.SFI_VITALE_IDENTITY),
                layout.TAG_VITALE_RECORD,
                "identity",
            )
            commands.select_aid(self.t, layout.AID_VITALE)
            nir_items = _template(
                commands.read_binary(self.t, sfi=layout.SFI_VITALE_NIR), layout.TAG_VITALE_RECORD, "NIR"
            )
            insured = _template(
                commands.read_binary(self.t, sfi=layout.SFI_VITALE_INSURED), layout.TAG_INSURED, "insured"
            )
            raw_benef = commands.read_binary(self.t, sfi=layout.SFI_VITALE_BENEFICIARIES)
        nir = _text(nir_items, layout.TAG_VITALE_NIR, "NIR")
        if len(nir) != 15:
            raise CardDataError(f"NIR: {len(nir)} characters, 15 expected")
        try:
            items = tlv.find_all(tlv.decode(raw_benef), layout.TAG_BENEFICIARY)
        except tlv.TlvError as e:
            raise CardDataError(f"beneficiaries: {e}") from None
        assure = Insured(
            nom=_text(ident, layout.TAG_VITALE_NOM, "identity"),
            prenom=_text(ident, layout.TAG_VITALE_PRENOM, "identity"),
            date_naissance=_text(ident, layout.TAG_VITALE_NAISSANCE, "identity"),
            nir=nir[:13],
            cle_nir=nir[13:],
            **{
                tag.name.lower(): _text(insured, tag, "insured")
                for tag in InsuredTag
                if tag != InsuredTag.CLE_NIR
            },
        )
        return VitaleData(assure, tuple(_beneficiary(b, i + 1) for i, b in enumerate(items)))
