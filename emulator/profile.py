"""The card profile schema: one set of models, validated on load and published as JSON Schema.

Card data fields carry their SESAM-Vitale French names; every value is stored on the card as
text, so codes are strings of a fixed number of digits (an integer in YAML is zero-padded).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from cartesim.core import codes, layout, pins
from cartesim.core.atr import CardKind
from cartesim.core.errors import InputError
from cartesim.emulator.keys import credential_from_pem
from cartesim.emulator.safe_yaml import as_text, load_yaml
from cartesim.emulator.validation import one_line, plain_message
from cartesim.emulator.vitale_records import identity_record


def _code(width: int, table: dict[str, str] | None = None) -> Any:
    """A code of exactly ``width`` digits; an int is zero-padded; optionally from a public table."""

    def coerce(v: Any) -> Any:
        return as_text(v, width)  # an unquoted 2 is "02" for a code of 2 digits

    def in_table(v: str) -> str:
        if table is not None and v not in table:
            allowed = ", ".join(f"{k} ({label})" for k, label in table.items())
            raise ValueError(f"unknown code {v!r}; allowed: {allowed}")
        return v

    pattern = f"^[0-9]{{{width}}}$"
    schema: dict[str, Any] = {
        "anyOf": [
            {"type": "string", "pattern": pattern},
            {"type": "integer", "minimum": 0, "maximum": 10**width - 1},
        ]
    }
    if table is not None:
        schema = {"enum": list(table) + [int(k) for k in table if len(k) == width]}
    return Annotated[
        str,
        BeforeValidator(coerce),
        StringConstraints(pattern=pattern),
        AfterValidator(in_table),
        WithJsonSchema(schema),
    ]


def _text(max_len: int, min_len: int = 1) -> Any:
    """Printable text as the card stores it (no control characters)."""
    constrained = Annotated[
        str, StringConstraints(min_length=min_len, max_length=max_len, pattern=r"^[^\x00-\x1f\x7f]*$")
    ]
    return Annotated[constrained, BeforeValidator(as_text)]


def _number(max_len: int, min_len: int = 1) -> Any:
    """An identifier of digits (or capitals) whose leading zeros matter: written quoted, or
    unquoted only if YAML reads it as written."""
    constrained = Annotated[
        str, StringConstraints(min_length=min_len, max_length=max_len, pattern=r"^[0-9A-Z]*$")
    ]
    return Annotated[constrained, BeforeValidator(as_text)]


def _secret(pattern: str) -> Any:
    return Annotated[str, StringConstraints(pattern=pattern), Field(strict=True)]


def _real_or_lunar(text: str) -> str:
    """A YYYYMMDD date as cards store birth dates: a real date, or a "lunar" one whose day (00),
    or month and day (0000), are unknown."""
    year, month, day = int(text[:4]), int(text[4:6]), int(text[6:])
    if month == 0 and day != 0:
        raise ValueError(f"{text!r}: an unknown month (00) goes with an unknown day (00)")
    try:
        dt.date(year, month or 1, day or 1)
    except ValueError as e:
        raise ValueError(f"{text!r} is not a date: {e}") from None
    return text


Date8 = Annotated[
    str,
    BeforeValidator(as_text),
    StringConstraints(pattern=r"^[0-9]{8}$"),
    AfterValidator(_real_or_lunar),
    WithJsonSchema(
        {"type": ["string", "integer"], "description": "YYYYMMDD; day 00, or month and day 0000, if unknown"}
    ),
]


def _not_a_number(v: Any) -> Any:
    # YAML reads 20250101 as a number, which pydantic would take for seconds since 1970.
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        raise ValueError("write the date as YYYY-MM-DD")
    return v


Date = Annotated[dt.date, BeforeValidator(_not_a_number)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fault(_Model):
    """A fault the card commits once, on the Nth APDU it receives (counted from its start, power
    cycles included). Exactly one action: status_word, delay_ms, mute, remove or drop_connection."""

    apdu: int = Field(ge=1, description="1 for the first APDU the card receives", strict=True)
    status_word: Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{4}$")] | None = Field(
        None, description="answer this status word instead (the command is not executed)"
    )
    delay_ms: int | None = Field(None, ge=1, le=60_000, description="answer after this delay", strict=True)
    mute: bool = Field(
        False, description="never answer this APDU (the card stays in the reader)", strict=True
    )
    remove: bool = Field(False, description="the card is pulled out as this APDU arrives", strict=True)
    reinsert_after_ms: int | None = Field(
        None, ge=0, le=600_000, description="with remove: the card comes back after this delay", strict=True
    )
    drop_connection: bool = Field(False, description="vpcd's connection drops (a power loss)", strict=True)

    @model_validator(mode="after")
    def _one_action(self) -> Fault:
        actions = [
            self.status_word is not None,
            self.delay_ms is not None,
            self.mute,
            self.remove,
            self.drop_connection,
        ]
        if sum(actions) != 1:
            raise ValueError("give exactly one of status_word, delay_ms, mute, remove, drop_connection")
        if self.reinsert_after_ms is not None and not self.remove:
            raise ValueError("reinsert_after_ms goes with remove")
        return self


# --- CPS --------------------------------------------------------------------------------------
class Holder(_Model):
    """Informations sur le professionnel."""

    type_carte: _code(1, codes.TYPE_CARTE)  # type: ignore[valid-type]
    type_ident: _code(1, codes.TYPE_IDENT)  # type: ignore[valid-type]
    nir: _number(30)  # type: ignore[valid-type]
    cle_nir: _code(1)  # type: ignore[valid-type]
    civilite: _code(2, codes.CIVILITE)  # type: ignore[valid-type]
    nom: _text(27)  # type: ignore[valid-type]
    prenom: _text(27)  # type: ignore[valid-type]


class Situation(_Model):
    """One exercise situation, in file 3F00/0001/D120 + (numero - 1)."""

    numero: int | None = Field(
        None,
        ge=1,
        le=16,
        description="N° situation, 1 to 16 (default: its position in the list); real cards may "
        "leave gaps in the numbering",
    )
    mode_exercice: _code(1, codes.MODE_EXERCICE)  # type: ignore[valid-type]
    statut_exercice: _code(1)  # type: ignore[valid-type]
    secteur_activite: _code(2)  # type: ignore[valid-type]
    type_structure: _code(1)  # type: ignore[valid-type]
    numero_structure: _number(14)  # type: ignore[valid-type]
    cle_structure: _code(1)  # type: ignore[valid-type]
    raison_structure: _text(40)  # type: ignore[valid-type]
    numero_facturation: _number(8, 0)  # type: ignore[valid-type]
    cle_facturation: _code(1)  # type: ignore[valid-type]
    numero_remplacant: _number(8, 0) = ""  # type: ignore[valid-type]
    cle_remplacant: _code(1) = "0"  # type: ignore[valid-type]
    code_convention: _code(1, codes.CODE_CONVENTION)  # type: ignore[valid-type]
    code_specialite: _code(2)  # type: ignore[valid-type]
    zone_tarifaire: _code(2)  # type: ignore[valid-type]
    zone_ik: _code(2)  # type: ignore[valid-type]
    agrement1: _code(1) = "0"  # type: ignore[valid-type]
    agrement2: _code(1) = "0"  # type: ignore[valid-type]
    agrement3: _code(1) = "0"  # type: ignore[valid-type]
    signature_facture: _code(1) = "1"  # type: ignore[valid-type]
    signature_lot: _code(1) = "1"  # type: ignore[valid-type]


class PinCounters(_Model):
    """The code porteur: 4 to 8 digits, written quoted ("1234")."""

    code: _secret(pins.PIN_PATTERN)  # type: ignore[valid-type]
    tries_max: int = Field(3, ge=1, le=15, strict=True)
    tries_left: int | None = Field(None, ge=0, le=15, description="default: tries_max", strict=True)

    @model_validator(mode="after")
    def _left_le_max(self) -> PinCounters:
        if self.tries_left is not None and self.tries_left > self.tries_max:
            raise ValueError("tries_left is greater than tries_max")
        return self


class UnblockCounters(_Model):
    """The code de déblocage: 8 digits, its own retry counter and a usage counter."""

    code: _secret(pins.UNBLOCK_PATTERN)  # type: ignore[valid-type]
    tries_max: int = Field(10, ge=1, le=15, strict=True)
    tries_left: int | None = Field(None, ge=0, le=15, description="default: tries_max", strict=True)
    uses_max: int = Field(10, ge=1, le=255, description="how many unblocks the card allows", strict=True)
    uses_left: int | None = Field(None, ge=0, le=255, description="default: uses_max", strict=True)

    @model_validator(mode="after")
    def _left_le_max(self) -> UnblockCounters:
        if self.tries_left is not None and self.tries_left > self.tries_max:
            raise ValueError("tries_left is greater than tries_max")
        if self.uses_left is not None and self.uses_left > self.uses_max:
            raise ValueError("uses_left is greater than uses_max")
        return self


class UpdateRecord(_Model):
    """EF_ACTUA (3F00/D010): the last card update, start and end."""

    debut: dt.datetime
    fin: dt.datetime

    @model_validator(mode="after")
    def _ordered(self) -> UpdateRecord:
        if self.fin < self.debut:
            raise ValueError("fin is before debut")
        return self


class OwnKey(_Model):
    """A key and its certificate given by the profile (PEM), instead of cartesim's test ones."""

    key: str = Field(description="unencrypted PEM private key, RSA-2048")
    certificate: str = Field(description="PEM X.509 certificate of that key")

    @model_validator(mode="after")
    def _usable(self) -> OwnKey:
        credential_from_pem(self.key, self.certificate)  # CredentialError: one line, no key shown
        return self


class CpsKeys(_Model):
    """The card's two keys: by default derived from the card (see docs/card-layout.md)."""

    signature: Annotated[OwnKey | None, Field(description="CPS_PRIV_SIG (0x81) and its certificate")] = None
    authentication: Annotated[OwnKey | None, Field(description="CPS_PRIV_AUT (0x82) and its certificate")] = (
        None
    )


class Pkcs15Settings(_Model):
    """Choices the public facts leave open about the PKCS#15 application."""

    unblock_code_object: Annotated[
        bool, Field(description="the AODF also lists the code de déblocage (OpenSC's tools can then unblock)")
    ] = True


class CpsProfile(_Model):
    kind: ClassVar[CardKind] = CardKind.CPS
    type: Literal["cps"]
    description: str = ""
    serial: _code(layout.SERIAL_DIGITS) = Field(  # type: ignore[valid-type]
        "00000001", description="the card number in EF.SN.ICC's PAN (8 digits)"
    )
    holder: Holder
    situations: list[Situation] = Field(min_length=1, max_length=16)
    pin: PinCounters
    unblock: UnblockCounters
    mise_a_jour: UpdateRecord | None = Field(
        None, description="the last update (EF_ACTUA); a card never updated has no EF_ACTUA"
    )
    keys: CpsKeys = CpsKeys()
    pkcs15: Pkcs15Settings = Pkcs15Settings()
    cps2ter: bool = Field(True, description="the CPS2ter volet (CLA A0) is present")
    faults: list[Fault] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _situation_numbers(self) -> CpsProfile:
        numbers = self.situation_numbers()
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"situations: two situations have the same numero ({numbers})")
        return self

    def situation_numbers(self) -> list[int]:
        """Each situation's number: its ``numero``, or its position in the list."""
        return [s.numero if s.numero is not None else i + 1 for i, s in enumerate(self.situations)]


# --- Vitale -----------------------------------------------------------------------------------
class AmoPeriod(_Model):
    """A period of AMO (compulsory health insurance) rights."""

    debut: Date
    fin: Date
    code: _code(2) = "01"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _ordered(self) -> AmoPeriod:
        if self.fin < self.debut:
            raise ValueError("fin is before debut")
        return self


class Beneficiary(_Model):
    """A person on the card: the insured first (qualité 0), then each beneficiary."""

    nom: _text(27)  # type: ignore[valid-type]
    prenom: _text(27)  # type: ignore[valid-type]
    date_naissance: Date8
    rang_naissance: int = Field(1, ge=1, le=9, strict=True)
    qualite: _code(1, codes.QUALITE)  # type: ignore[valid-type]
    nir: _number(15, 0) = ""  # type: ignore[valid-type]
    droits_amo: list[AmoPeriod] = Field(min_length=1, max_length=4)


class Insured(_Model):
    """The insured person (l'assuré), holder of the card."""

    nom: _text(27)  # type: ignore[valid-type]
    prenom: _text(27)  # type: ignore[valid-type]
    date_naissance: Date8
    nir: Annotated[str, StringConstraints(pattern=r"^[0-9][0-9AB][0-9]{11}$")]
    cle_nir: _code(2)  # type: ignore[valid-type]
    regime: _code(2)  # type: ignore[valid-type]
    caisse: _code(3)  # type: ignore[valid-type]
    centre: _code(4)  # type: ignore[valid-type]
    code_gestion: _code(2)  # type: ignore[valid-type]
    fin_validite: Date | None = None
    debut_validite: Date | None = Field(
        None,
        description="the card's date de début de validité (66/80); default: the start of the earliest "
        "AMO rights period on the card, or fin_validite if that comes first",
    )

    @model_validator(mode="after")
    def _validity_ordered(self) -> Insured:
        if self.debut_validite and self.fin_validite and self.fin_validite < self.debut_validite:
            raise ValueError("fin_validite is before debut_validite")
        return self


class VitaleProfile(_Model):
    kind: ClassVar[CardKind] = CardKind.VITALE
    type: Literal["vitale"]
    description: str = ""
    serial: _code(10) = "0000000001"  # type: ignore[valid-type]
    type_carte: _code(1) = "0"  # type: ignore[valid-type]
    assure: Insured
    beneficiaires: list[Beneficiary] = Field(
        min_length=1,
        max_length=layout.VITALE_MAX_PERSONS,
        description="every person on the card, the insured first; their identity records must fit "
        f"in {layout.VITALE_ONE_READ} bytes (docs/card-layout.md)",
    )
    faults: list[Fault] = Field(default_factory=list, max_length=64)

    @field_validator("beneficiaires")
    @classmethod
    def _persons(cls, persons: list[Beneficiary], info: ValidationInfo) -> list[Beneficiary]:
        a = info.data.get("assure")
        first = persons[0]
        if a is not None and (first.nom, first.prenom, first.date_naissance, first.qualite) != (
            a.nom,
            a.prenom,
            a.date_naissance,
            "0",
        ):
            raise ValueError(
                "the first person on the card is the insured: the nom, prenom and date_naissance "
                "of assure, qualite 0"
            )
        for i, b in enumerate(persons[1:], 1):
            if b.qualite == "0":
                raise ValueError(f"[{i}] has qualite 0 (assuré): only the first person, the insured, has it")
        size = sum(len(identity_record(b.nom, b.prenom, b.date_naissance)) for b in persons)
        if size > layout.VITALE_ONE_READ:
            raise ValueError(
                f"the identity records of these {len(persons)} persons take {size} bytes, more than "
                f"the {layout.VITALE_ONE_READ} of one READ BINARY: shorten names or remove persons"
            )
        return persons

    @property
    def debut_validite(self) -> dt.date:
        """66/80 as the card shows it: the profile's, or the documented default."""
        if self.assure.debut_validite is not None:
            return self.assure.debut_validite
        first = min(p.debut for b in self.beneficiaires for p in b.droits_amo)
        fin = self.assure.fin_validite
        return min(first, fin) if fin is not None else first


Profile = Annotated[CpsProfile | VitaleProfile, Field(discriminator="type")]
_ADAPTER: TypeAdapter[CpsProfile | VitaleProfile] = TypeAdapter(Profile)


def json_schema() -> dict[str, Any]:
    schema = _ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cartesim card profile"
    return schema


def _explain(err: Any) -> str | None:
    if err["type"] == "string_type" and err.get("input") is not None and "code" in err["loc"]:
        return plain_message(err) + " (write the code quoted, as a string of digits)"
    return None


def validate(data: dict[str, Any], source: str) -> CpsProfile | VitaleProfile:
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        errors = e.errors()
        first = errors[0]
        if first["type"] in ("union_tag_not_found", "union_tag_invalid"):
            got = "missing" if first["type"] == "union_tag_not_found" else f"{data.get('type')!r}"
            raise InputError(source, "type", f"{got}; expected 'cps' or 'vitale'") from None
        kinds = [k.value for k in CardKind if k is not CardKind.UNKNOWN]
        raise one_line(e, source, skip=kinds, explain=_explain) from None


def load_profile(path: Path | str) -> CpsProfile | VitaleProfile:
    """Load and validate a profile; InputError (one line) on any problem."""
    return validate(load_yaml(path), str(path))
