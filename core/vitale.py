"""The Carte Vitale 2: every person on the card (identity and NIR files, public layout), the card's
serial (PAN), and cartesim's own card and rights files (docs/card-layout.md)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cartesim.core import commands, layout, tlv
from cartesim.core.atr import CardKind
from cartesim.core.errors import CardDataError
from cartesim.core.layout import AmoTag, CardTag, RightsTag
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


def _records(raw: bytes, tag: int, what: str) -> list[list[tlv.Tlv]]:
    """The children of every ``tag`` template of a file, in order (00 or FF padding between them is skipped)."""
    try:
        return [item.children() for item in tlv.find_all(tlv.decode(raw), tag)]
    except tlv.TlvError as e:
        raise CardDataError(f"{what}: {e}") from None


def _date(text: str, what: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise CardDataError(f"{what}: bad date {text!r}") from None


def _beneficiary(identity: list[tlv.Tlv], rights: list[tlv.Tlv], n: int) -> Beneficiary:
    what = f"person {n}"
    periods = []
    try:
        for p in tlv.find_all(rights, layout.TAG_AMO_PERIOD):
            fields = p.children()
            periods.append(
                AmoRights(
                    _date(_text(fields, AmoTag.DEBUT, what), what),
                    _date(_text(fields, AmoTag.FIN, what), what),
                    _text(fields, AmoTag.CODE, what),
                )
            )
    except tlv.TlvError as e:
        raise CardDataError(f"{what}: {e}") from None
    return Beneficiary(
        nom=_text(identity, layout.TAG_VITALE_NOM, what),
        prenom=_text(identity, layout.TAG_VITALE_PRENOM, what),
        date_naissance=_text(identity, layout.TAG_VITALE_NAISSANCE, what),
        rang=_text(rights, RightsTag.RANG, what),
        qualite=_text(rights, RightsTag.QUALITE, what),
        nir=_text(rights, RightsTag.NIR, what),
        droits_amo=tuple(periods),
    )


def _pan(raw: bytes) -> str:
    """The card's serial number: the BCD digits of 5A in EF PAN."""
    try:
        item = tlv.find(tlv.decode(raw), layout.TAG_PAN)
    except tlv.TlvError as e:
        raise CardDataError(f"PAN: {e}") from None
    if item is None:
        raise CardDataError(f"PAN: tag {layout.TAG_PAN:02X} missing")
    digits = item.value.hex()
    if not digits.isdigit():
        raise CardDataError("PAN: not BCD digits")
    return digits


class VitaleCard:
    """A Carte Vitale 2 behind any transport. Nothing here needs a PIN. A card known to be
    another (a CPS) is refused at once: WrongCard names it."""

    def __init__(self, transport: Transport) -> None:
        self.t = transport
        transport.expect_kind(CardKind.VITALE)

    def read(self) -> VitaleData:
        with self.t.operation("Lire Carte Vitale"), self.t.transaction():
            commands.select_mf(self.t)
            raw_identity = commands.read_binary(self.t, sfi=layout.SFI_VITALE_IDENTITY)
            commands.check(f"SELECT {layout.FID_PAN:04X}", commands.select_path(self.t, layout.FID_PAN))
            raw_pan = commands.read_binary(self.t)
            commands.select_aid(self.t, layout.AID_VITALE)
            raw_nir = commands.read_binary(self.t, sfi=layout.SFI_VITALE_NIR)
            raw_card = commands.read_binary(self.t, sfi=layout.SFI_VITALE_CARD)
            raw_rights = commands.read_binary(self.t, sfi=layout.SFI_VITALE_RIGHTS)
        identity = _records(raw_identity, layout.TAG_VITALE_PERSON, "identity")
        nirs = _records(raw_nir, layout.TAG_VITALE_PERSON, "NIR")
        rights = _records(raw_rights, layout.TAG_RIGHTS, "rights")
        if not identity:
            raise CardDataError("identity: no person on the card")
        for what, records in (("NIR", nirs), ("rights", rights)):
            if len(records) != len(identity):
                raise CardDataError(f"{what}: {len(records)} records for {len(identity)} persons")
        nir = _text(nirs[0], layout.TAG_VITALE_NIR, "NIR")
        if len(nir) != 15:
            raise CardDataError(f"NIR: {len(nir)} characters, 15 expected")
        cards = _records(raw_card, layout.TAG_VITALE_CARD, "card")
        if not cards:
            raise CardDataError(f"card: template {layout.TAG_VITALE_CARD:02X} missing")
        card = cards[0]
        persons = tuple(
            _beneficiary(i, r, n) for n, (i, r) in enumerate(zip(identity, rights, strict=True), 1)
        )
        insured = persons[0]  # the first person on the card is the insured
        assure = Insured(
            nom=insured.nom,
            prenom=insured.prenom,
            date_naissance=insured.date_naissance,
            nir=nir[:13],
            cle_nir=nir[13:],
            type_carte=_text(card, CardTag.TYPE_CARTE, "card"),
            serie=_pan(raw_pan),
            fin_validite=_text(card, CardTag.FIN_VALIDITE, "card"),
            regime=_text(card, CardTag.REGIME, "card"),
            caisse=_text(card, CardTag.CAISSE, "card"),
            centre=_text(card, CardTag.CENTRE, "card"),
            code_gestion=_text(card, CardTag.CODE_GESTION, "card"),
        )
        return VitaleData(assure, persons)
