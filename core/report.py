"""Reports: the "Lire CPS" diagnostic text (exactly as CPS-Gestion shows it), Vitale, status; JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from cartesim.core.cps import CpsData, CpsSituation, PinStatus
from cartesim.core.vitale import VitaleData

EMPTY = "#"  # how the diagnostic prints an empty value (e.g. no N° remplaçant)

HOLDER_LABELS = {
    "type_carte": "Type carte",
    "type_ident": "Type ident.",
    "nir": "NIR",
    "cle_nir": "Clé NIR",
    "civilite": "Code civilité",
    "nom": "Nom",
    "prenom": "Prénom",
}
SITUATION_LABELS = {
    "numero": "N° situation",
    "mode_exercice": "Mode exercice",
    "statut_exercice": "Statut exercice",
    "secteur_activite": "Secteur d'activité",
    "type_structure": "Type structure",
    "numero_structure": "N° structure",
    "cle_structure": "Clé structure",
    "raison_structure": "Raison structure",
    "numero_facturation": "N° facturation",
    "cle_facturation": "Clé facturation",
    "numero_remplacant": "N° remplaçant",
    "cle_remplacant": "Clé remplaçant",
    "code_convention": "Code convention",
    "code_specialite": "Code spécialité",
    "zone_tarifaire": "Zone tarifaire",
    "zone_ik": "Zone IK",
    "agrement1": "Agrément1",
    "agrement2": "Agrément2",
    "agrement3": "Agrément3",
    "signature_facture": "Signature facture",
    "signature_lot": "Signature lot",
}


def _v(value: str) -> str:
    return value if value else EMPTY


def _holder_line(label: str, value: str) -> str:
    return f"{label} = {_v(value)}"  # holder lines: "Label = value"


def _detail_line(label: str, value: str) -> str:
    return f"{label}= {_v(value)}"  # situation lines: "Label= value"


def _situation_number(s: CpsSituation, index: int) -> str:
    return s.numero or str(index + 1)


def lire_cps(data: CpsData) -> str:
    """The "Lire CPS" diagnostic; for cps-roulette.yaml it equals the reference golden text."""
    lines = ["Informations sur le professionnel", ""]
    lines += [_holder_line(label, getattr(data.holder, f)) for f, label in HOLDER_LABELS.items()]
    for i, s in enumerate(data.situations):
        lines += ["", f"Détail de la situation n° [{_situation_number(s, i)}]", ""]
        lines += [_detail_line(label, getattr(s, f)) for f, label in SITUATION_LABELS.items()]
    lines += ["", "Liste des situations", ""]
    lines += [f"Situation n° [{_situation_number(s, i)}]" for i, s in enumerate(data.situations)]
    return "\n".join(lines) + "\n"


def _date8(text: str) -> str:
    """YYYYMMDD as DD/MM/YYYY (lunar dates keep their 00)."""
    if len(text) != 8 or not text.isdigit():
        return _v(text)
    return f"{text[6:]}/{text[4:6]}/{text[:4]}"


def _fr(d: dt.date) -> str:
    return d.strftime("%d/%m/%Y")


def vitale(data: VitaleData, today: dt.date) -> str:
    a = data.assure
    lines = ["Informations sur l'assuré", ""]
    lines += [
        _holder_line("Nom", a.nom),
        _holder_line("Prénom", a.prenom),
        _holder_line("Date de naissance", _date8(a.date_naissance)),
        _holder_line("NIR", a.nir),
        _holder_line("Clé NIR", a.cle_nir),
        _holder_line("Type carte", a.type_carte),
        _holder_line("N° de série", a.serie),
        _holder_line("Fin de validité", _date8(a.fin_validite)),
        _holder_line("Régime", a.regime),
        _holder_line("Caisse", a.caisse),
        _holder_line("Centre", a.centre),
        _holder_line("Code gestion", a.code_gestion),
    ]
    for i, b in enumerate(data.beneficiaires, 1):
        lines += ["", f"Détail du bénéficiaire n° [{i}]", ""]
        lines += [
            _detail_line("Nom", b.nom),
            _detail_line("Prénom", b.prenom),
            _detail_line("Date de naissance", _date8(b.date_naissance)),
            _detail_line("Rang de naissance", b.rang),
            _detail_line("Qualité", b.qualite),
            _detail_line("NIR certifié", b.nir),
        ]
        for p in b.droits_amo:
            state = "ouverts" if p.active(today) else "fermés"
            lines.append(
                _detail_line("Droits AMO", f"du {_fr(p.debut)} au {_fr(p.fin)} (code {p.code}, {state})")
            )
        lines.append(_detail_line(f"Droits au {_fr(today)}", "ouverts" if b.rights_on(today) else "expirés"))
    lines += ["", "Liste des bénéficiaires", ""]
    lines += [f"Bénéficiaire n° [{i}] {b.nom} {b.prenom}" for i, b in enumerate(data.beneficiaires, 1)]
    return "\n".join(lines) + "\n"


def _left(n: int | None, of: int | None) -> str:
    if n is None:
        return "inconnu"
    return f"{n} tentative(s) restante(s)" + (f" sur {of}" if of is not None else "")


def status(s: PinStatus) -> str:
    if s.definitively_blocked:
        state = "Carte définitivement bloquée"
    elif s.blocked:
        state = "Carte bloquée"
    else:
        state = "Code porteur présenté" if s.pin_verified else "Carte utilisable"
    lines = [
        f"Code porteur : {_left(s.pin_tries_left, s.pin_tries_max)}",
        f"Code de déblocage : {_left(s.unblock_tries_left, s.unblock_tries_max)}",
    ]
    if s.unblock_uses_left is not None:
        lines.append(f"Déblocages restants : {s.unblock_uses_left} sur {s.unblock_uses_max}")
    lines.append(f"État : {state}")
    return "\n".join(lines) + "\n"


# --- JSON: each output names its format (docs/json.md; schemas in cartesim.harness.cli.schema) --
FORMAT_CPS = "cartesim-cps/1"
FORMAT_CPS_STATUS = "cartesim-cps-status/1"
FORMAT_VITALE = "cartesim-vitale/1"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dt.date):
        return obj.isoformat()
    raise TypeError(type(obj).__name__)


def _dump(fmt: str, payload: dict[str, Any]) -> str:
    return json.dumps({"format": fmt, **payload}, ensure_ascii=False, indent=2, default=_jsonable) + "\n"


def iso_date8(text: str) -> str | None:
    """A card's YYYYMMDD as ISO 8601: ``1982-05-12``; a lunar date keeps only what it knows,
    as ISO 8601's reduced precision does (``19800500`` is ``1980-05``, ``19800000`` is ``1980``);
    empty is None. Anything else is left as the card has it."""
    if not text:
        return None
    if len(text) != 8 or not text.isdigit():
        return text
    year, month, day = text[:4], text[4:6], text[6:]
    if month == "00":
        return year
    return f"{year}-{month}" if day == "00" else f"{year}-{month}-{day}"


def cps_json(data: CpsData) -> str:
    """``cps read --json`` (and ``cps unblock --json``): the "Lire CPS" fields."""
    return _dump(FORMAT_CPS, dataclasses.asdict(data))


def vitale_json(data: VitaleData, today: dt.date) -> str:
    """``vitale read --json``: every date in ISO 8601 (the text report keeps the French forms)."""
    payload = dataclasses.asdict(data)
    assure = payload["assure"]
    assure["date_naissance"] = iso_date8(data.assure.date_naissance)
    assure["fin_validite"] = iso_date8(data.assure.fin_validite)
    for b, raw in zip(data.beneficiaires, payload["beneficiaires"], strict=True):
        raw["date_naissance"] = iso_date8(b.date_naissance)
        raw["droits_ouverts"] = b.rights_on(today)
    payload["date_reference"] = today
    return _dump(FORMAT_VITALE, payload)


def status_json(s: PinStatus) -> str:
    """``cps status --json``."""
    payload = dataclasses.asdict(s) | {"blocked": s.blocked, "definitively_blocked": s.definitively_blocked}
    return _dump(FORMAT_CPS_STATUS, payload)
