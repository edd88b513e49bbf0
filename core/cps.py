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
    serial: str = ""  # the card number of EF.SN.ICC's PAN


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
    if layout.TAG_TRIES_LEFT in info:
        return info[layout.TAG_TRIES_LEFT]
    if sw == SW.AUTH_BLOCKED:
        return 0
    return swmod.tries_left(sw)


def parse_sn_icc(raw: bytes) -> str:
    """The card number in EF.SN.ICC: 5A 0A <PAN>, the PAN being the issuer 8025000001, the card
    number, a Luhn digit and F padding (BCD)."""
    try:
        items = tlv.decode(raw)
    except tlv.TlvError as e:
        raise CardDataError(f"EF.SN.ICC: {e}") from None
    pan = tlv.find(items, layout.TAG_PAN)
    if pan is None:
        raise CardDataError("EF.SN.ICC: tag 5A missing")
    digits = pan.value.hex().upper().rstrip("F")
    issuer = layout.SN_ICC_ISSUER.hex()
    if (
        not digits.isdigit()
        or not digits.startswith(issuer)
        or len(digits) != len(issuer) + layout.SERIAL_DIGITS + 1
    ):
        raise CardDataError("EF.SN.ICC: not a CPS PAN")
    return digits[len(issuer) : -1]


class CpsCard:
    """A CPS behind any transport. A card known to be another (a Carte Vitale) is refused at
    once: WrongCard names it. A code that is not a string of 4 to 8 digits is BadCode."""

    def __init__(self, transport: Transport) -> None:
        self.t = transport
        transport.expect_kind(CardKind.CPS)

    # --- reading ----------------------------------------------------------------------------
    def read_serial(self) -> str:
        """The card number, from EF.SN.ICC (short file id 1C in the MF), as OpenSC reads it."""
        commands.select_mf(self.t)
        return parse_sn_icc(commands.read_binary(self.t, sfi=layout.SFI_SN_ICC))

    def read_holder(self) -> CpsHolder:
        commands.check("SELECT holder", commands.select_path(self.t, layout.FID_CPS_DF, layout.FID_HOLDER))
        raw = commands.read_binary(self.t)
        return CpsHolder(**_fields(raw, layout.TAG_HOLDER, HolderTag, "holder file"))

    def read_situations(self) -> tuple[CpsSituation, ...]:
        """Every situation file; the code porteur must have been verified. The numbering may
        have gaps: each of the 16 files is tried."""
        out: list[CpsSituation] = []
        for i in range(layout.MAX_SITUATIONS):
            resp = commands.select_path(self.t, layout.FID_CPS_DF, layout.FID_SITUATION_FIRST + i)
            if resp.sw == SW.FILE_NOT_FOUND:
                continue
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
            return CpsData(self.read_holder(), self.read_situations(), self.read_serial())

    # --- codes ------------------------------------------------------------------------------
    def status(self) -> PinStatus:
        """Tries-left queries (they never consume a try), then the counters of both codes as
        security data objects (GET DATA in the MF: 9A tries max, 9B tries left, 9C/9D uses)."""
        with self.t.operation("état des codes"), self.t.transaction():
            pin_sw = commands.verify(self.t, layout.PIN_REF_PORTEUR).sw
            unblock_sw = commands.verify(self.t, layout.PIN_REF_DEBLOCAGE).sw
            commands.select_mf(self.t)
            pin_info = self._counters(layout.PIN_REF_PORTEUR)
            unblock_info = self._counters(layout.PIN_REF_DEBLOCAGE)
        if pin_sw != SW.OK and pin_sw != SW.AUTH_BLOCKED and swmod.tries_left(pin_sw) is None:
            raise CardError("tries-left query", pin_sw)
        unblock_tries = _tries(unblock_sw, unblock_info)
        uses_left = unblock_info.get(layout.TAG_USES_LEFT)
        exhausted = unblock_tries is not None and pins.unblock_exhausted(unblock_tries, uses_left)
        return PinStatus(
            pin_tries_left=_tries(pin_sw, pin_info),
            pin_tries_max=pin_info.get(layout.TAG_TRIES_MAX),
            pin_verified=pin_sw == SW.OK,
            unblock_usable=unblock_sw != SW.AUTH_BLOCKED and not exhausted,
            unblock_tries_left=unblock_tries,
            unblock_tries_max=unblock_info.get(layout.TAG_TRIES_MAX),
            unblock_uses_left=uses_left,
            unblock_uses_max=unblock_info.get(layout.TAG_USES_MAX),
        )

    def _counters(self, ref: int) -> dict[int, int]:
        """The counters of a code's security data object; empty where the card tells none."""
        resp = commands.get_data_sdo(self.t, layout.SDO_CLASS_CHV, ref)
        if resp.sw != SW.OK:
            return {}
        try:
            (template,) = tlv.decode(resp.data)
            (sdo,) = template.children()
            docp = tlv.find(sdo.children(), layout.TAG_SDO_DOCP)
        except (tlv.TlvError, ValueError):
            return {}
        if docp is None:
            return {}
        counters = (layout.TAG_TRIES_MAX, layout.TAG_TRIES_LEFT, layout.TAG_USES_MAX, layout.TAG_USES_LEFT)
        return {c.tag: int.from_bytes(c.value, "big") for c in docp.children() if c.tag in counters}

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
