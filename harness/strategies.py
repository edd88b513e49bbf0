"""hypothesis strategies for valid card profiles, for property tests here and downstream.

    from hypothesis import given
    from cartesim.harness.strategies import cps_profiles

    @given(cps_profiles())
    def test_my_reader(profile): ...   # profile: emulator.profile.CpsProfile

    @given(cps_profiles(usable=True))  # only cards whose code porteur has a try left
    def test_my_billing(profile): ...

Every value drawn passes the profile schema (the strategies build the pydantic models). Drawing
usable cards filters nothing away: the counters are drawn within their usable range.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from cartesim.core import codes, layout
from cartesim.emulator.profile import CpsProfile, VitaleProfile
from cartesim.emulator.vitale_records import identity_record

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def digits(n: int, m: int | None = None) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n if m is None else m)


def names(max_size: int = 27) -> st.SearchStrategy[str]:
    """Names as cards print them: capitals, spaces, hyphens and apostrophes, some accents."""
    return st.text(_UPPER + " -'ÉÈÀÇ", min_size=1, max_size=max_size).filter(lambda s: s.strip() != "")


def _code(table: dict[str, str]) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(table))


def situations() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "mode_exercice": _code(codes.MODE_EXERCICE),
            "statut_exercice": digits(1),
            "secteur_activite": digits(2),
            "type_structure": digits(1),
            "numero_structure": digits(1, 14),
            "cle_structure": digits(1),
            "raison_structure": names(40),
            "numero_facturation": digits(0, 8),
            "cle_facturation": digits(1),
            "numero_remplacant": digits(0, 8),
            "cle_remplacant": digits(1),
            "code_convention": _code(codes.CODE_CONVENTION),
            "code_specialite": digits(2),
            "zone_tarifaire": digits(2),
            "zone_ik": digits(2),
            "agrement1": digits(1),
            "agrement2": digits(1),
            "agrement3": digits(1),
            "signature_facture": digits(1),
            "signature_lot": digits(1),
        }
    )


@st.composite
def _counters(
    draw: st.DrawFn, code: st.SearchStrategy[str], max_tries: int, uses: bool, least_left: int = 0
) -> dict[str, Any]:
    tries_max = draw(st.integers(1, max_tries))
    out: dict[str, Any] = {
        "code": draw(code),
        "tries_max": tries_max,
        "tries_left": draw(st.integers(least_left, tries_max)),
    }
    if uses:
        uses_max = draw(st.integers(1, 20))
        out |= {"uses_max": uses_max, "uses_left": draw(st.integers(0, uses_max))}
    return out


def cps_profile_dicts(*, usable: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Profiles as their YAML would load: plain dicts. ``usable``: only cards whose code porteur
    has a try left (else blocked and definitively blocked cards are drawn too)."""
    return st.fixed_dictionaries(
        {
            "type": st.just("cps"),
            "serial": digits(layout.SERIAL_DIGITS),
            "holder": st.fixed_dictionaries(
                {
                    "type_carte": _code(codes.TYPE_CARTE),
                    "type_ident": _code(codes.TYPE_IDENT),
                    "nir": digits(1, 30),
                    "cle_nir": digits(1),
                    "civilite": _code(codes.CIVILITE),
                    "nom": names(),
                    "prenom": names(),
                }
            ),
            "situations": st.lists(situations(), min_size=1, max_size=16),
            "pin": _counters(digits(4, 8), 15, uses=False, least_left=1 if usable else 0),
            "unblock": _counters(digits(8), 15, uses=True),
        }
    )


def cps_profiles(*, usable: bool = False) -> st.SearchStrategy[CpsProfile]:
    """CPS profiles as pydantic models; ``usable``: only cards whose code porteur has a try left."""
    return cps_profile_dicts(usable=usable).map(CpsProfile.model_validate)


@st.composite
def _period(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(st.dates(dt.date(2000, 1, 1), dt.date(2040, 12, 31)))
    return {
        "debut": start,
        "fin": start + dt.timedelta(days=draw(st.integers(0, 3650))),
        "code": draw(digits(2)),
    }


def _birth_date() -> st.SearchStrategy[str]:
    return st.dates(dt.date(1900, 1, 1), dt.date(2030, 12, 31)).map(lambda d: d.strftime("%Y%m%d"))


@st.composite
def vitale_profile_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """1 to 13 persons, the insured first, with names short enough for the identity file."""
    n = draw(st.integers(1, layout.VITALE_MAX_PERSONS))
    fixed = len(identity_record("", "", "00000000"))  # a record without its names
    share = (layout.VITALE_ONE_READ - n * fixed) // (2 * n)  # bytes for each name
    name = names(min(27, share)).filter(lambda s: len(s.encode()) <= share)
    assure: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {
                "nom": name,
                "prenom": name,
                "date_naissance": _birth_date(),
                "nir": st.builds(str.__add__, st.sampled_from("12"), digits(12)),
                "cle_nir": digits(2),
                "regime": digits(2),
                "caisse": digits(3),
                "centre": digits(4),
                "code_gestion": digits(2),
            }
        )
    )
    fin = draw(st.none() | st.dates(dt.date(2020, 1, 1), dt.date(2040, 1, 1)))
    if fin is not None:
        assure["fin_validite"] = fin
    if draw(st.booleans()):
        assure["debut_validite"] = draw(st.dates(dt.date(2000, 1, 1), fin or dt.date(2040, 1, 1)))

    def person(qualite: st.SearchStrategy[str], **identity: Any) -> dict[str, Any]:
        fields = {"nom": name, "prenom": name, "date_naissance": _birth_date()}
        fields |= {k: st.just(v) for k, v in identity.items()}
        return draw(
            st.fixed_dictionaries(
                {
                    **fields,
                    "rang_naissance": st.integers(1, 9),
                    "qualite": qualite,
                    "nir": st.just("") | digits(15),
                    "droits_amo": st.lists(_period(), min_size=1, max_size=4),
                }
            )
        )

    insured = {k: assure[k] for k in ("nom", "prenom", "date_naissance")}
    others = _code({k: v for k, v in codes.QUALITE.items() if k != "0"})
    return {
        "type": "vitale",
        "serial": draw(digits(10)),
        "assure": assure,
        "beneficiaires": [person(st.just("0"), **insured)] + [person(others) for _ in range(n - 1)],
    }


def vitale_profiles() -> st.SearchStrategy[VitaleProfile]:
    return vitale_profile_dicts().map(VitaleProfile.model_validate)
