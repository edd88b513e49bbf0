"""The CPS: read the holder and situations, query and manage the code porteur."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cartesim.core import commands, layout, pins, tlv
from cartesim.core import sw as swmod
from cartesim.core.atr import CardKind
from cartesim.core.errors import (
    CardBlocked,
    CardDataError,
    CardDefinitivelyBlocked,
    CardError,
    CodeKind,
    LastTryNotConfirmed,
    WrongCode,
)
from cartesim.core.layout import HolderTag, SituationTag
from cartesim.core.sw import SW
from cartesim.core.transport import Transport

# The last-try guard's answer: a fixed yes/no, or a question asked when one try is left.
ConfirmLastTry = bool | Callable[[CodeKind], bool]


@dataclass(frozen=True)
class CpsHolder:
    """Informations sur le professionnel."""

    type_carte: str
    type_ident: str
    nir: str
    cle_nir: str
    civilite: str
    nom: str
    prenom: str


@dataclass(frozen=True)
class CpsSituation:
    """Détail d'une situation, fields in the order of the "Lire CPS" report."""

    numero: str
    mode_exercice: str
    statut_exercice: str
    secteur_activite: str
    type_structure: str
    numero_structure: str
    cle_structure: str
    raison_structure: str
    numero_facturation: str
    cle_facturation: str
    numero_remplacant: str
    cle_remplacant: str
    code_convention: str
    code_specialite: str
    zone_tarifaire: str
    zone_ik: str
    agrement1: str
    agrement2: str
    agrement3: str
    signature_facture: str
    signature_lot: str


@dataclass(frozen=True)
class CpsData:
    holder: CpsHolder
    situations: tuple[CpsSituation, ...]


@dataclass(frozen=True)
class PinStatus:
    """What the card says of its codes. ``None``: the card does not tell (a real CPS may not)."""

    pin_tries_left: int | None
    pin_tries_max: int | None
    pin_verified: bool
    unblock_usable: bool  # False: tries or uses exhausted, no unblock can ever succeed
    unblock_tries_left: int | None
    unblock_tries_max: int | None
    unblock_uses_left: int | None
    unblock_uses_max: int | None

    @property
    def blocked(self) -> bool:
        return self.pin_tries_left == 0

    @property
    def definitively_blocked(self) -> bool:
        return pins.definitively_blocked(self.pin_tries_left, not self.unblock_usable)


def _fields(
    raw: bytes, template: int, tags: type[HolderTag] | type[SituationTag], what: str
) -> dict[str, str]:
    """The text values of ``tags`` inside ``template``, keyed by their field names."""
    try:
        outer = tlv.find(tlv.decode(raw), template)
        if outer is None:
            raise CardDataError(f"{what}: template {template:02X} missing")
        children = outer.children()
        values: dict[str, str] = {}
        for tag in tags:
            item = tlv.find(children, tag)
            if item is None:
                raise CardDataError(f"{what}: tag {int(tag):02X} ({tag.name.lower()}) missing")
            values[tag.name.lower()] = item.value.decode("utf-8")
        return values
    except (tlv.TlvError, UnicodeDecodeError) as e:
        raise CardDataError(f"{what}: {e}") from None


def _tries(sw: int, info: dict[int, int]) -> int | None:
    if layout.TAG_PIN_TRIES_LEFT in info:
        return info[layout.TAG_PIN_TRIES_LEFT]
    if sw == SW.AUTH_BLOCKED:
        return 0
    return swmod.tries_left(sw)


class CpsCard:
    """A CPS behind any transport. A card known to be another (a Carte Vitale) is refused at
    once: WrongCard names it. A code that is not a string of 4 to 8 digits is BadCode."""

    def __init__(self, transport: Transport) -> None:
        self.t = transport
        transport.expect_kind(CardKind.CPS)

    # --- reading ----------------------------------------------------------------------------
    def read_holder(self) -> CpsHolder:
        commands.check("SELECT holder", commands.select_path(self.t, layout.FID_CPS_DF, layout.FID_HOLDER))
        raw = commands.read_binary(self.t)
        return CpsHolder(**_fields(raw, layout.TAG_HOLDER, HolderTag, "holder file"))

    def read_situations(self) -> tuple[CpsSituation, ...]:
        """Every situation file; the code porteur must have been verified."""
        out: list[CpsSituation] = []
        for i in range(layout.MAX_SITUATIONS):
            resp = commands.select_path(self.t, layout.FID_CPS_DF, layout.FID_SITUATION_FIRST + i)
            if resp.sw == SW.FILE_NOT_FOUND:
                break
            commands.check("SELECT situation", resp)
            try:
                raw = commands.read_binary(self.t)
            except CardError as e:
                if e.sw == SW.SECURITY_NOT_SATISFIED:
                    raise CardError("READ situation", e.sw, "Code porteur non présenté") from None
                raise
            out.append(CpsSituation(**_fields(raw, layout.TAG_SITUATION, SituationTag, f"situation {i + 1}")))
        return tuple(out)

    def read(self, pin: str, *, confirm_last_try: ConfirmLastTry = False) -> CpsData:
        """As "Lire Carte PS": present the code porteur, then read holder and situations."""
        with self.t.operation("Lire CPS"), self.t.transaction():
            self.verify(pin, confirm_last_try=confirm_last_try)
            return CpsData(self.read_holder(), self.read_situations())

    # --- codes ------------------------------------------------------------------------------
    def status(self) -> PinStatus:
        """Tries-left queries (they never consume a try), plus cartesim's counters if present."""
        with self.t.operation("état des codes"), self.t.transaction():
            pin_sw = commands.verify(self.t, layout.PIN_REF_PORTEUR).sw
            pin_info = self._pin_info(layout.PIN_REF_PORTEUR)
            unblock_sw = commands.verify(self.t, layout.PIN_REF_DEBLOCAGE).sw
            unblock_info = self._pin_info(layout.PIN_REF_DEBLOCAGE)
        if pin_sw != SW.OK and pin_sw != SW.AUTH_BLOCKED and swmod.tries_left(pin_sw) is None:
            raise CardError("tries-left query", pin_sw)
        return PinStatus(
            pin_tries_left=_tries(pin_sw, pin_info),
            pin_tries_max=pin_info.get(layout.TAG_PIN_TRIES_MAX),
            pin_verified=pin_sw == SW.OK,
            unblock_usable=unblock_sw != SW.AUTH_BLOCKED,
            unblock_tries_left=_tries(unblock_sw, unblock_info),
            unblock_tries_max=unblock_info.get(layout.TAG_PIN_TRIES_MAX),
            unblock_uses_left=unblock_info.get(layout.TAG_PIN_USES_LEFT),
            unblock_uses_max=unblock_info.get(layout.TAG_PIN_USES_MAX),
        )

    def _pin_info(self, ref: int) -> dict[int, int]:
        """cartesim's GET DATA of a PIN object's counters; empty where the card has none."""
        resp = commands.get_data(self.t, layout.GET_DATA_PIN_INFO_P1, ref)
        if resp.sw != SW.OK:
            return {}
        try:
            outer = tlv.find(tlv.decode(resp.data), layout.TAG_PIN_INFO)
            if outer is None:
                return {}
            return {c.tag: int.from_bytes(c.value, "big") for c in outer.children()}
        except tlv.TlvError:
            return {}

    def tries_left(self, kind: CodeKind) -> int | None:
        """The tries-left query (consumes no try): 0 when blocked, None when the card won't say."""
        ref = layout.PIN_REF_PORTEUR if kind is CodeKind.PORTEUR else layout.PIN_REF_DEBLOCAGE
        sw = commands.verify(self.t, ref).sw
        if sw == SW.AUTH_BLOCKED:
            return 0
        return swmod.tries_left(sw)

    def _guard(self, kind: CodeKind, confirm: ConfirmLastTry) -> None:
        """The last-try guard: with one try left, send no code unless the caller confirms.
        One typo must not lock a real card."""
        if self.tries_left(kind) == 1 and not (confirm(kind) if callable(confirm) else confirm):
            raise LastTryNotConfirmed(kind)

    def verify(self, pin: str, *, confirm_last_try: ConfirmLastTry = False) -> None:
        raw = pins.check_pin(pin)
        with self.t.operation("présentation du code porteur"), self.t.transaction():
            self._guard(CodeKind.PORTEUR, confirm_last_try)
            resp = commands.verify(self.t, layout.PIN_REF_PORTEUR, raw)
        self._pin_result("VERIFY", resp.sw, CodeKind.PORTEUR)

    def change_pin(
        self, old: str, new: str, confirmation: str, *, confirm_last_try: ConfirmLastTry = False
    ) -> None:
        raw_old = pins.check_pin(old)
        raw_new = pins.check_new_pin(new, confirmation)
        with self.t.operation("changement du code porteur"), self.t.transaction():
            self._guard(CodeKind.PORTEUR, confirm_last_try)
            resp = commands.change_reference_data(self.t, layout.PIN_REF_PORTEUR, raw_old, raw_new)
        self._pin_result("CHANGE REFERENCE DATA", resp.sw, CodeKind.PORTEUR)

    def unblock(
        self, unblock_code: str, new: str, confirmation: str, *, confirm_last_try: ConfirmLastTry = False
    ) -> None:
        """Code de déblocage + new code porteur, both checked here before anything is sent."""
        raw_code = pins.check_unblock_code(unblock_code)
        raw_new = pins.check_new_pin(new, confirmation)
        with self.t.operation("déblocage"), self.t.transaction():
            self._guard(CodeKind.DEBLOCAGE, confirm_last_try)
            resp = commands.reset_retry_counter(self.t, layout.PIN_REF_PORTEUR, raw_code, raw_new)
        self._pin_result("RESET RETRY COUNTER", resp.sw, CodeKind.DEBLOCAGE)

    @staticmethod
    def _pin_result(op: str, sw: int, kind: CodeKind) -> None:
        if sw == SW.OK:
            return
        left = swmod.tries_left(sw)
        if left:
            raise WrongCode(op, sw, kind, left)
        if sw == SW.AUTH_BLOCKED or left == 0:
            if kind is CodeKind.DEBLOCAGE:
                raise CardDefinitivelyBlocked(op, sw)
            raise CardBlocked(op, sw)
        raise CardError(op, sw)
