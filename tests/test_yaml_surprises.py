"""YAML without surprises: a value in a field of text that YAML 1.1 would change when written
unquoted (leading zeros and octal, base 60, 0x, '_', yes/no, a date) is refused in one line that
says to quote it; nothing is ever silently changed. What YAML reads as written stays accepted."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cartesim.emulator.profile import VitaleProfile, load_profile
from cartesim.harness.scenario.load import load_scenario
from tests.helpers import CARDS, run

VITALE = (CARDS / "vitale-famille.yaml").read_text(encoding="utf-8")


def _profile(tmp_path: Path, old: str, new: str) -> Path:
    assert old in VITALE
    path = tmp_path / "p.yaml"
    path.write_text(VITALE.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "where", "why"),
    [
        ('serial: "1234567890"', "serial: 0000021520", "serial", "leading zeros"),  # octal 9040
        ('regime: "01"', "regime: 010", "assure.regime", "leading zeros"),  # octal 8: "08"
        ('regime: "01"', "regime: 1:30", "assure.regime", "base 60"),  # 90
        ('regime: "01"', "regime: 0x1F", "assure.regime", "another base"),
        ('regime: "01"', "regime: 1_0", "assure.regime", "'_'"),
        ("  nom: DUPONT", "  nom: yes", "assure.nom", "true or false"),
        ("  nom: DUPONT", "  nom: off", "assure.nom", "true or false"),
        ("  nom: DUPONT", "  nom: 1982-05-12", "assure.nom", "as a date"),
        ('date_naissance: "19820512"', "date_naissance: 1982-05-12", "assure.date_naissance", "as a date"),
    ],
)
def test_what_yaml_would_change_is_refused(tmp_path: Path, old: str, new: str, where: str, why: str) -> None:
    path = _profile(tmp_path, old, new)
    r = run("profile", "check", str(path))
    assert r.returncode == 2 and r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"{path}: {where}:"), line
    assert why in line and line.endswith("write it quoted"), line
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("old", "new", "field", "value"),
    [
        ('regime: "01"', "regime: 01", "regime", "01"),  # leading zero, same number, same code
        ('regime: "01"', "regime: 1", "regime", "01"),  # a code of 2 digits, zero-padded
        ('caisse: "751"', "caisse: 751", "caisse", "751"),  # as written
    ],
)
def test_what_yaml_reads_as_written_is_kept(
    tmp_path: Path, old: str, new: str, field: str, value: str
) -> None:
    profile = load_profile(_profile(tmp_path, old, new))
    assert isinstance(profile, VitaleProfile)
    assert getattr(profile.assure, field) == value


def test_a_scenarios_expected_field_is_never_changed(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        textwrap.dedent(
            """
            cards: [cps-roulette]
            steps:
              - read_cps: "1234"
                expect:
                  fields:
                    situations[0].zone_ik: 02
            """
        ),
        encoding="utf-8",
    )
    r = run("scenario", "run", str(path))
    assert r.returncode == 2
    assert "steps[0].expect.fields.situations[0].zone_ik" in r.stderr
    assert "write it quoted" in r.stderr
    path.write_text(path.read_text().replace("zone_ik: 02", 'zone_ik: "02"'), encoding="utf-8")
    assert load_scenario(path).steps[0].step.expect.fields == {"situations[0].zone_ik": "02"}
