"""Reports: the golden "Lire CPS" text, several situations, Vitale, status, JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest

from cartesim.core import report
from cartesim.core.cps import CpsCard, CpsData
from cartesim.core.vitale import VitaleCard
from cartesim.harness.pytest_plugin.cards import CardFactory
from tests.helpers import DATA


@pytest.fixture
def read_cps(cartesim: CardFactory) -> Callable[[str, str], CpsData]:
    return lambda name, pin: CpsCard(cartesim.insert(name).transport).read(pin)


def test_lire_cps_equals_the_reference_page(read_cps: Callable[[str, str], CpsData]) -> None:
    golden = (DATA / "lire-cps-roulette.golden.txt").read_text(encoding="utf-8")
    assert report.lire_cps(read_cps("cps-roulette", "1234")) == golden


def test_two_situations_listed_and_detailed(read_cps: Callable[[str, str], CpsData]) -> None:
    text = report.lire_cps(read_cps("cps-two-situations", "4242"))
    assert "Détail de la situation n° [1]" in text
    assert "Détail de la situation n° [3]" in text  # situation 2 is a gap on this card
    assert "N° situation= 3\n" in text
    assert text.endswith("Liste des situations\n\nSituation n° [1]\nSituation n° [3]\n")
    assert "Raison structure= CENTRE DE SANTE DES LILAS\n" in text
    assert "Code civilité = 13\n" in text


def test_cpf_report(read_cps: Callable[[str, str], CpsData]) -> None:
    text = report.lire_cps(read_cps("cpf-infirmier-remplacant", "2468"))
    assert "Type carte = 1\n" in text
    assert "N° remplaçant= 69400778\n" in text


def test_cps_json(read_cps: Callable[[str, str], CpsData]) -> None:
    data = json.loads(report.cps_json(read_cps("cps-roulette", "1234")))
    assert data["holder"]["nom"] == "ROULETTE RPPS"
    assert data["situations"][0]["numero_remplacant"] == ""
    assert data["situations"][0]["zone_ik"] == "02"


def test_vitale_report_and_rights(vitale_card: VitaleCard) -> None:
    data = vitale_card.read()
    text = report.vitale(data, dt.date(2026, 11, 26))
    assert text.startswith("Informations sur l'assuré\n\nNom = DUPONT\nPrénom = MARIE\n")
    assert "Date de naissance = 12/05/1982\n" in text
    assert text.count("Droits au 26/11/2026= ouverts") == 4
    assert "Bénéficiaire n° [4] DUPONT HUGO\n" in text
    assert "Rang de naissance= 2\n" in text
    after = report.vitale(data, dt.date(2028, 1, 1))
    assert after.count("= expirés") == 4
    payload = json.loads(report.vitale_json(data, dt.date(2026, 11, 26)))
    assert payload["date_reference"] == "2026-11-26"
    assert [b["droits_ouverts"] for b in payload["beneficiaires"]] == [True] * 4
    assert payload["beneficiaires"][0]["droits_amo"][0] == {
        "debut": "2026-01-01",
        "fin": "2027-12-31",
        "code": "01",
    }


def test_vitale_expired_rights(cartesim: CardFactory) -> None:
    data = VitaleCard(cartesim.insert("vitale-expired-rights").transport).read()
    assert not data.beneficiaires[0].rights_on(dt.date(2026, 11, 26))
    assert "Droits au 26/11/2026= expirés" in report.vitale(data, dt.date(2026, 11, 26))
    assert data.beneficiaires[0].rights_on(dt.date(2024, 6, 1))


def test_status_texts(cartesim: CardFactory) -> None:
    for name, state in [
        ("cps-roulette", "État : Carte utilisable"),
        ("cps-blocked", "État : Carte bloquée"),
        ("cps-definitively-blocked", "État : Carte définitivement bloquée"),
    ]:
        st = CpsCard(cartesim.insert(name).transport).status()
        assert state in report.status(st)
        assert json.loads(report.status_json(st))["blocked"] == (name != "cps-roulette")
