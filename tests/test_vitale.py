"""The Carte Vitale 2 layout in-process: `vitale read` output kept, the most persons the layout
holds, and the profiles it refuses (in one line, exit 2)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from cartesim.core import layout, tlv
from cartesim.core.errors import CardDataError
from cartesim.core.transport.direct import DirectTransport
from cartesim.core.vitale import VitaleCard
from cartesim.emulator.cards import load_card
from cartesim.emulator.fs import EF
from tests.helpers import CARDS, DATA, apdu, run

VITALE = sorted(p.stem for p in CARDS.glob("vitale-*.yaml"))
GOLDEN = DATA / "vitale"
# The goldens of vitale-famille, vitale-expired-rights and vitale-seule were printed by the engine
# of the layout before this one (the beneficiaries in cartesim's own SFI 4); vitale-famille-nombreuse
# did not fit that layout (6 persons at most), its golden comes from this one. The JSON goldens
# were changed on purpose when JSON became a contract (docs/json.md): a "format" key
# (cartesim-vitale/1) and ISO 8601 dates (1982-05-12; the lunar 20200000 is 2020); the text
# goldens, and so `vitale read`'s text output, are byte for byte what they were.
ON = "2026-11-26"


def test_every_shipped_vitale_profile_has_its_golden() -> None:
    assert VITALE and {p.name for p in GOLDEN.iterdir()} == {
        f"{name}.golden.{ext}" for name in VITALE for ext in ("txt", "json")
    }


@pytest.mark.parametrize("name", VITALE)
@pytest.mark.parametrize("json_flag", [(), ("--json",)], ids=["text", "json"])
def test_vitale_read_prints_what_it_printed(name: str, json_flag: tuple[str, ...]) -> None:
    r = run("vitale", "read", "--profile", name, "--date", ON, *json_flag)
    assert r.returncode == 0, r.stderr
    ext = "json" if json_flag else "txt"
    assert r.stdout == (GOLDEN / f"{name}.golden.{ext}").read_text(encoding="utf-8")


def _identity_file(name: str) -> bytes:
    card = load_card(name)
    assert apdu(card, "00A4000C02 3F00") == "9000"
    r = apdu(card, "00B0820000")
    if r.startswith("6C"):
        r = apdu(card, f"00B08200{r[2:]}")
    assert r.endswith("9000")
    return bytes.fromhex(r[:-4])


def test_the_largest_family_fills_the_identity_file() -> None:
    raw = _identity_file("vitale-famille-nombreuse")
    assert len(raw) == layout.VITALE_ONE_READ == 256
    persons = tlv.decode(raw)
    assert len(persons) == layout.VITALE_MAX_PERSONS == 13
    assert all(p.tag == 0x65 for p in persons)


def test_a_single_person_card() -> None:
    (person,) = tlv.decode(_identity_file("vitale-seule"))
    assert tlv.find(person.children(), 0x81) == tlv.Tlv(0x81, b"CAMILLE")


def test_debut_de_validite_given_or_by_default() -> None:
    def card_file(name: str) -> dict[int, bytes]:
        card = load_card(name)
        assert apdu(card, "00A4040C0B D250000002564954414C45") == "9000"
        r = apdu(card, "00B0830000")
        (card_tlv,) = tlv.decode(bytes.fromhex(apdu(card, f"00B08300{r[2:]}"))[:-2])
        assert card_tlv.tag == 0x66
        return {t.tag: t.value for t in card_tlv.children()}

    assert card_file("vitale-seule")[0x80] == b"20210701"  # the profile's debut_validite
    assert card_file("vitale-famille")[0x80] == b"20260101"  # its earliest AMO period
    assert card_file("vitale-expired-rights")[0x80] == b"20220101"


def _tampered(fid: int, data: bytes) -> CardDataError:
    card = load_card("vitale-famille")
    app = card.mf.find_aid(layout.AID_VITALE)
    assert app is not None
    ef = app.child(fid)
    assert isinstance(ef, EF)
    ef.data = data
    with pytest.raises(CardDataError) as e:
        VitaleCard(DirectTransport(card)).read()
    return e.value


def test_engine_refuses_a_card_whose_files_disagree() -> None:
    card = load_card("vitale-famille")
    app = card.mf.find_aid(layout.AID_VITALE)
    assert app is not None
    rights = app.child(layout.FID_VITALE_RIGHTS)
    nir = app.child(layout.FID_VITALE_NIR)
    assert isinstance(rights, EF) and isinstance(nir, EF)
    three = tlv.encode_all(tlv.decode(rights.content())[:3])
    assert str(_tampered(layout.FID_VITALE_RIGHTS, three)) == "rights: 3 records for 4 persons"
    assert str(_tampered(layout.FID_VITALE_NIR, nir.content()[:19])) == "NIR: 1 records for 4 persons"
    assert "card: template 66 missing" in str(_tampered(layout.FID_VITALE_CARD, b"\x67\x00"))


# --- refused profiles: one line, exit 2 ----------------------------------------------------------
FAMILLE = yaml.safe_load((CARDS / "vitale-famille.yaml").read_text())
NOMBREUSE = yaml.safe_load((CARDS / "vitale-famille-nombreuse.yaml").read_text())


def _with(doc: dict[str, Any], change: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    change(out)
    return out


def _persons(doc: dict[str, Any], n: int) -> list[dict[str, Any]]:
    child = doc["beneficiaires"][-1]
    return doc["beneficiaires"] + [copy.deepcopy(dict(child, rang_naissance=i % 9 + 1)) for i in range(n)]


REFUSED = [
    # (profile, where, problem)
    (
        _with(NOMBREUSE, lambda d: d.update(beneficiaires=_persons(d, 1))),
        "beneficiaires",
        "at most 13 items",
    ),
    (
        _with(NOMBREUSE, lambda d: d["beneficiaires"][5].update(prenom="ZOEY")),
        "beneficiaires",
        "take 257 bytes, more than the 256 of one READ BINARY",
    ),
    (
        _with(FAMILLE, lambda d: d["beneficiaires"][2].update(date_naissance="20250230")),
        "beneficiaires[2].date_naissance",
        "'20250230' is not a date: day is out of range for month",
    ),
    (
        _with(FAMILLE, lambda d: d["beneficiaires"][2].update(date_naissance="20121314")),
        "beneficiaires[2].date_naissance",
        "'20121314' is not a date: month must be in 1..12",
    ),
    (
        _with(FAMILLE, lambda d: d["beneficiaires"][2].update(date_naissance="20120015")),
        "beneficiaires[2].date_naissance",
        "an unknown month (00) goes with an unknown day (00)",
    ),
    (
        _with(FAMILLE, lambda d: d["assure"].update(date_naissance="19820231")),
        "assure.date_naissance",
        "is not a date",
    ),
    (
        _with(FAMILLE, lambda d: d["assure"].update(fin_validite="2030-02-30")),
        "assure.fin_validite",
        "day value is outside expected range",
    ),
    (
        _with(FAMILLE, lambda d: d["assure"].update(fin_validite=20301231)),
        "assure.fin_validite",
        "write the date as YYYY-MM-DD",
    ),
    (
        _with(FAMILLE, lambda d: d["assure"].update(debut_validite="2031-01-01")),
        "assure",
        "fin_validite is before debut_validite",
    ),
    (
        _with(FAMILLE, lambda d: d["beneficiaires"][1]["droits_amo"][0].update(fin="2027-13-01")),
        "beneficiaires[1].droits_amo[0].fin",
        "month value is outside expected range",
    ),
    (
        _with(FAMILLE, lambda d: d["beneficiaires"].reverse()),
        "beneficiaires",
        "the first person on the card is the insured",
    ),
    (
        _with(FAMILLE, lambda d: d["beneficiaires"][0].update(qualite=2)),
        "beneficiaires",
        "the first person on the card is the insured",
    ),
    (
        _with(FAMILLE, lambda d: d["beneficiaires"][3].update(qualite=0)),
        "beneficiaires",
        "[3] has qualite 0 (assuré): only the first person",
    ),
]


@pytest.mark.parametrize(("doc", "where", "problem"), REFUSED, ids=lambda v: None)
def test_bad_vitale_profile_refused_in_one_line(
    tmp_path: Path, doc: dict[str, Any], where: str, problem: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    r = run("profile", "check", str(path))
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith(f"{path}: {where}: "), r.stderr
    assert problem in r.stderr
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("fin_validite: 2030-12-31", "", ""),
        ("fin_validite: 2030-02-30", "assure.fin_validite", "day value is outside expected range"),
        ("fin_validite: 2030-13-01", "assure.fin_validite", "month value is outside expected range"),
        ("debut_validite: 2026-02-29", "assure.debut_validite", "day value is outside expected range"),
    ],
)
def test_impossible_dates_written_as_yaml_dates(tmp_path: Path, text: str, where: str, problem: str) -> None:
    """YAML reads 2030-02-30 as a date it cannot build: still one line naming the field."""
    source = (CARDS / "vitale-famille.yaml").read_text(encoding="utf-8")
    path = tmp_path / "bad.yaml"
    path.write_text(source.replace("fin_validite: 2030-12-31", text), encoding="utf-8")
    r = run("profile", "check", str(path))
    if not where:
        assert (r.returncode, r.stdout) == (0, f"{path}: ok (vitale)\n")
        return
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.startswith(f"{path}: {where}: ") and problem in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
