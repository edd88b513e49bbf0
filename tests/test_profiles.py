"""Profiles: every shipped one loads and reads back; invalid ones give one precise line."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from cartesim.core.cps import CpsCard
from cartesim.core.errors import InputError
from cartesim.core.vitale import VitaleCard
from cartesim.emulator import profile as schema
from cartesim.emulator.catalog import SCHEMA_FILE, resolve_profile, sample_names
from cartesim.emulator.profile import CpsProfile, VitaleProfile, load_profile
from cartesim.harness.pytest_plugin.cards import CardFactory
from tests.helpers import CARDS

SHIPPED = sorted(CARDS.glob("*.yaml"))
REQUIRED = {
    "cps-roulette",
    "cps-blocked",
    "cps-last-try",
    "cps-definitively-blocked",
    "cps-two-situations",
    "vitale-famille",
    "vitale-expired-rights",
}


def test_required_samples_ship() -> None:
    assert set(sample_names()) >= REQUIRED
    cpf = [p for p in SHIPPED if yaml.safe_load(p.read_text()).get("holder", {}).get("type_carte") == 1]
    assert cpf, "a CPF (type carte 1) profile ships"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_profile_reads_back(path: Path, cartesim: CardFactory) -> None:
    p = load_profile(path)
    t = cartesim.insert(path).transport
    if isinstance(p, CpsProfile):
        card = CpsCard(t)
        holder = card.read_holder()
        assert (holder.nom, holder.prenom, holder.type_carte) == (
            p.holder.nom,
            p.holder.prenom,
            p.holder.type_carte,
        )
        st = card.status()
        assert st.pin_tries_left == (p.pin.tries_max if p.pin.tries_left is None else p.pin.tries_left)
        assert st.pin_tries_max == p.pin.tries_max
        assert card.read_serial() == p.serial
        if not st.blocked:
            data = card.read(p.pin.code, confirm_last_try=True)
            assert data.serial == p.serial
            assert len(data.situations) == len(p.situations)
            for number, got, want in zip(p.situation_numbers(), data.situations, p.situations, strict=True):
                assert got.numero == str(number)
                assert got.raison_structure == want.raison_structure
                assert got.code_specialite == want.code_specialite
    else:
        assert isinstance(p, VitaleProfile)
        v = VitaleCard(t).read()
        assert v.assure.nir + v.assure.cle_nir == p.assure.nir + p.assure.cle_nir
        assert [b.prenom for b in v.beneficiaires] == [b.prenom for b in p.beneficiaires]
        assert all(b.droits_amo for b in v.beneficiaires)


def test_sample_names_resolve() -> None:
    # Installed, the samples live inside the package (emulator/samples): the same bytes.
    assert resolve_profile("cps-roulette").read_bytes() == (CARDS / "cps-roulette.yaml").read_bytes()
    with pytest.raises(InputError, match="no such file, and no sample"):
        resolve_profile("cps-nope")


def _dates_to_text(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _dates_to_text(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_dates_to_text(v) for v in obj]
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.isoformat()
    return obj


def test_published_json_schema_is_current_and_accepts_samples() -> None:
    published = json.loads(SCHEMA_FILE.read_text())
    assert published == schema.json_schema(), (
        "run: cartesim profile schema > emulator/schema/profile.schema.json"
    )
    for path in SHIPPED:
        jsonschema.validate(_dates_to_text(yaml.safe_load(path.read_text())), published)


# --- invalid profiles --------------------------------------------------------------------------
ROULETTE = yaml.safe_load((CARDS / "cps-roulette.yaml").read_text())
FAMILLE = yaml.safe_load((CARDS / "vitale-famille.yaml").read_text())


def _set(doc: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if value is _DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return out


_DELETE = object()

INVALID = [
    # (base, field, value, expected "where", expected problem fragment)
    (ROULETTE, "pin.code", "123", "pin.code", "should match pattern"),
    (ROULETTE, "pin.code", 1234, "pin.code", "quoted"),
    (ROULETTE, "pin.code", "12a4", "pin.code", "should match pattern"),
    (ROULETTE, "unblock.code", "1234567", "unblock.code", "should match pattern"),
    (ROULETTE, "unblock.code", "123456789", "unblock.code", "should match pattern"),
    (ROULETTE, "pin.tries_left", 4, "pin", "greater than tries_max"),
    (ROULETTE, "pin.tries_max", 0, "pin.tries_max", "greater than or equal to 1"),
    (ROULETTE, "unblock.uses_left", 11, "unblock", "uses_left is greater than uses_max"),
    (ROULETTE, "holder.nom", "X" * 28, "holder.nom", "at most 27 characters"),
    (ROULETTE, "holder.nom", "", "holder.nom", "at least 1 character"),
    (ROULETTE, "holder.nom", "A\nB", "holder.nom", "should match pattern"),
    (ROULETTE, "holder.type_carte", 7, "holder.type_carte", "unknown code '7'"),
    (ROULETTE, "holder.civilite", "99", "holder.civilite", "unknown code"),
    (ROULETTE, "holder.type_ident", "2", "holder.type_ident", "unknown code"),
    (ROULETTE, "holder.prenom", _DELETE, "holder.prenom", "Field required"),
    (ROULETTE, "holder.age", 42, "holder.age", "Extra inputs are not permitted"),
    (ROULETTE, "situations", [], "situations", "at least 1 item"),
    (ROULETTE, "situations.0.code_specialite", "1", "situations[0].code_specialite", "should match pattern"),
    (ROULETTE, "situations.0.zone_ik", 123, "situations[0].zone_ik", "should match pattern"),
    (ROULETTE, "situations.0.raison_structure", "R" * 41, "situations[0].raison_structure", "at most 40"),
    (ROULETTE, "situations.0.mode_exercice", 3, "situations[0].mode_exercice", "unknown code"),
    (
        ROULETTE,
        "situations.0.numero_structure",
        "123456789012345",
        "situations[0].numero_structure",
        "at most 14",
    ),
    (ROULETTE, "situations.0.numero_facturation", "994-0048", "situations[0].numero_facturation", "pattern"),
    (ROULETTE, "type", "cpx", "type", "'cpx'; expected 'cps' or 'vitale'"),
    (ROULETTE, "type", _DELETE, "type", "missing; expected"),
    (ROULETTE, "serial", "12", "serial", "should match pattern"),
    (ROULETTE, "serial", "0000021520", "serial", "should match pattern"),  # 8 digits in the PAN
    (ROULETTE, "situations.0.numero", 17, "situations[0].numero", "less than or equal to 16"),
    (
        ROULETTE,
        "situations",
        [dict(ROULETTE["situations"][0], numero=2), dict(ROULETTE["situations"][0])],
        "(top)",
        "two situations have the same numero",
    ),
    (
        ROULETTE,
        "mise_a_jour",
        {"debut": dt.datetime(2025, 2, 1), "fin": dt.datetime(2025, 1, 1)},
        "mise_a_jour",
        "fin is before debut",
    ),
    (ROULETTE, "pin", "1234", "pin", "valid dictionary"),
    (FAMILLE, "assure.nir", "28205751234", "assure.nir", "should match pattern"),
    (FAMILLE, "assure.date_naissance", "1982-05-12", "assure.date_naissance", "should match pattern"),
    (FAMILLE, "beneficiaires.1.qualite", 7, "beneficiaires[1].qualite", "unknown code"),
    (FAMILLE, "beneficiaires.1.droits_amo", [], "beneficiaires[1].droits_amo", "at least 1 item"),
    (
        FAMILLE,
        "beneficiaires.1.droits_amo.0",
        {"debut": dt.date(2026, 1, 1), "fin": dt.date(2025, 1, 1)},
        "beneficiaires[1].droits_amo[0]",
        "fin is before debut",
    ),
    (
        FAMILLE,
        "beneficiaires",
        [copy.deepcopy(FAMILLE["beneficiaires"][0]) for _ in range(14)],
        "beneficiaires",
        "at most 13 items",
    ),
]


@pytest.mark.parametrize(("base", "field", "value", "where", "problem"), INVALID, ids=lambda v: None)
def test_invalid_profile_names_file_field_and_problem(
    tmp_path: Path, base: dict[str, Any], field: str, value: Any, where: str, problem: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_set(base, field, value), allow_unicode=True))
    with pytest.raises(InputError) as e:
        load_profile(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: {where}: "), msg
    assert problem in msg, msg
    assert "\n" not in msg
    if field.endswith(".code"):  # a code's value never shows in the error
        assert str(value) not in msg.replace(str(path), "")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty file"),
        (b"   \n# nothing\n", "empty file"),
        (b"type: cps\nholder: [unclosed\n", "invalid YAML"),
        (b"- a\n- b\n", "must hold a mapping"),
        (b"\xff\xfe\x00t", "not UTF-8"),
        (b"type: cps\ntype: vitale\n", "duplicate key 'type'"),
        (b"a: &x [1, 2]\nb: *x\n", "anchors are not allowed"),
        (b"x" * (1 << 20 + 1), "larger than 1024 KiB"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as e:
        load_profile(path)
    assert str(e.value).startswith(f"{path}: ")


def test_alias_bomb_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="not allowed"):
        load_profile(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No such file"):
        load_profile(tmp_path / "nope.yaml")


def test_tens_of_megabytes_refused_without_reading_them(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.write(b"type: cps\n")
        f.truncate(40 * 1024 * 1024)  # 40 MB, sparse
    with pytest.raises(InputError, match="larger than 1024 KiB"):
        load_profile(path)
