"""The shipped scenarios through pcscd + vpcd: the runner serves the cards on the vpcd slots
itself and talks to them through PC/SC, a card pulled mid-unblock included."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cartesim.harness.pytest_plugin.cards import CardSession
from cartesim.harness.scenario.run import run_scenario
from tests.helpers import MISMATCH, SCENARIOS, code_forms

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenario_through_pcscd(pcscd_free_slots: CardSession, path: Path) -> None:
    lines: list[str] = []
    result = run_scenario(path, "pcsc", say=lines.append)
    assert result.passed, "\n".join(lines)


def test_card_pulled_mid_unblock_through_pcscd(pcscd_free_slots: CardSession) -> None:
    lines: list[str] = []
    scenarios = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios"
    for name in ("removed-before-processing", "removed-before-answer"):
        assert run_scenario(scenarios / f"{name}.yaml", "pcsc", say=lines.append).passed, "\n".join(lines)
    pulled = [line for line in lines if "remove_card=" in line]
    assert len(pulled) == 2 and all("Carte retirée" in line for line in pulled), pulled


def test_mismatch_report_through_pcscd(pcscd_free_slots: CardSession, tmp_path: Path) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text(textwrap.dedent(MISMATCH), encoding="utf-8")
    lines: list[str] = []
    result = run_scenario(path, "pcsc", say=lines.append)
    assert not result.passed
    assert "tries_left:  expected 1, actual 2" in result.report()
    assert "0020000104********  -> 63C2" in result.report()
    output = "\n".join(lines).replace(str(path), "<scenario>")
    for secret in code_forms():
        assert secret not in output, secret
