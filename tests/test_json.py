"""JSON as a contract: every --json output names its format, matches its published schema
(shipped in the package, documented in docs/json.md), gives dates in ISO 8601; under --json an
error is a JSON object on stdout, with the command's exit code."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from cartesim.core.report import iso_date8
from cartesim.harness.cli import schema
from cartesim.harness.tools.bench import Figures
from tests.helpers import CARDS, DATA, ROOT, assert_valid, run

DOC = ROOT / "docs" / "json.md"
CPS = sorted(p.stem for p in CARDS.glob("cp*.yaml"))
VITALE = sorted(p.stem for p in CARDS.glob("vitale-*.yaml"))
PINS = {
    "cps-roulette": "1234",
    "cps-two-situations": "4242",
    "cpf-infirmier-remplacant": "2468",
    "cps-last-try": "1234",
}


def test_every_schema_is_a_schema_and_documented() -> None:
    names = schema.names()
    assert set(names) == {"cps", "cps-status", "vitale", "readers", "card-status", "replay", "bench", "error"}
    doc = DOC.read_text(encoding="utf-8")
    for name in names:
        Draft202012Validator.check_schema(schema.load(name))
        assert f"`{schema.format_name(name)}`" in doc, name
    for error in ("usage", "bad_input", "bad_code", "wrong_code", "blocked", "no_service", "pyscard_missing"):
        assert f"`{error}`" in doc


@pytest.mark.parametrize("name", sorted(PINS))
def test_cps_read_json(name: str) -> None:
    r = run("cps", "read", "--profile", name, "--json", env={"CARTESIM_PIN": PINS[name]})
    assert r.returncode == 0, r.stderr
    assert_valid(json.loads(r.stdout), "cps")


def test_cps_unblock_json() -> None:
    r = run("cps", "unblock", "--profile", "cps-blocked", "--json", stdin="12345678\n4321\n4321\n")
    assert r.returncode == 0, r.stderr
    assert_valid(json.loads(r.stdout), "cps")


@pytest.mark.parametrize("name", CPS)
def test_cps_status_json(name: str) -> None:
    r = run("cps", "status", "--profile", name, "--json")
    assert r.returncode == 0, r.stderr
    assert_valid(json.loads(r.stdout), "cps-status")


@pytest.mark.parametrize("name", VITALE)
def test_vitale_read_json_dates_are_iso_8601(name: str) -> None:
    r = run("vitale", "read", "--profile", name, "--json", "--date", "2026-11-26")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert_valid(doc, "vitale")
    dates = [doc["assure"]["date_naissance"], doc["assure"]["fin_validite"], doc["date_reference"]]
    for b in doc["beneficiaires"]:
        dates += [b["date_naissance"], *(d for p in b["droits_amo"] for d in (p["debut"], p["fin"]))]
    assert all(d is None or re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", d) for d in dates), dates


def test_lunar_dates_keep_what_they_know() -> None:
    assert [iso_date8(d) for d in ("19820512", "19800500", "19800000", "")] == [
        "1982-05-12",
        "1980-05",
        "1980",
        None,
    ]


@pytest.mark.parametrize(
    ("trace", "profile", "identical"),
    [
        ("cps-roulette--change-pin.jsonl", "cps-roulette", True),
        ("vitale-famille--read.jsonl", "vitale-seule", False),
    ],
)
def test_replay_json(trace: str, profile: str, identical: bool) -> None:
    r = run("replay", str(DATA / "traces" / trace), "--profile", profile, "--json")
    assert r.returncode == (0 if identical else 1), r.stderr
    doc = json.loads(r.stdout)
    assert_valid(doc, "replay")
    assert doc["identical"] is identical


def test_bench_figures_fit_their_schema() -> None:
    """The shape `bench --json` prints (run for real through pcscd in tests/e2e/test_cli_pcsc.py)."""
    for figures in (
        Figures(direct_apdu_per_s=270_000.0, note="pcscd unavailable"),
        Figures(1.0, 2.0, 2.0, 1.0, 2.5, 400.0),
    ):
        assert_valid({"format": schema.format_name("bench"), **asdict(figures)}, "bench")


@pytest.mark.parametrize(
    ("args", "stdin", "env", "code", "error"),
    [
        (["cps", "status", "--json", "--bogus"], "", {}, 2, "usage"),
        (["cps", "read", "--json", "--pin", "1234"], "", {}, 2, "usage"),
        (["cps", "read", "--json", "--profile", "nope"], "", {}, 2, "bad_input"),
        (["cps", "read", "--json"], "12\n", {}, 2, "bad_code"),
        (["cps", "read", "--json"], "0000\n", {}, 1, "wrong_code"),
        (["cps", "read", "--json", "--profile", "cps-blocked"], "1234\n", {}, 1, "blocked"),
        (
            ["cps", "unblock", "--json", "--profile", "cps-definitively-blocked"],
            "",
            {},
            1,
            "definitively_blocked",
        ),
        (["vitale", "read", "--json", "--profile", "cps-roulette"], "", {}, 2, "bad_input"),
        (["readers", "--json"], "", {"PCSCLITE_CSOCK_NAME": "/nonexistent/pcscd.comm"}, 3, "no_service"),
        (["card", "status", "--json", "--control", "/nonexistent/c.sock"], "", {}, 3, "transport"),
        (["replay", "/nonexistent.jsonl", "--profile", "cps-roulette", "--json"], "", {}, 2, "bad_input"),
    ],
)
def test_an_error_under_json_is_a_json_object_on_stdout(
    args: list[str], stdin: str, env: dict[str, str], code: int, error: str
) -> None:
    r = run(*args, stdin=stdin, env=env)
    assert r.returncode == code, r.stderr
    doc = json.loads(r.stdout)  # the whole of stdout: one object
    assert_valid(doc, "error")
    assert (doc["error"], doc["exit_code"]) == (error, code)
    assert r.stderr == doc["message"] + "\n"  # the same one line on stderr
    assert "1234" not in r.stdout + r.stderr


def test_schemas_are_shipped_in_the_package() -> None:
    shipped = Path(schema.__file__).parent
    assert {p.name for p in shipped.glob("*.schema.json")} == {f"{n}.schema.json" for n in schema.names()}
