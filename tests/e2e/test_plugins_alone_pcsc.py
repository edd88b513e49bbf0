"""Each pytest plugin alone, through pcscd: the one that is on starts the session's own PC/SC
stack and stops it (pytest run as a process, in a project of its own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartesim.harness.pytest_plugin.cards import CardSession
from tests.helpers import passed_failed, project, pytest_in

pytestmark = pytest.mark.e2e

FILES = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        cartesim_scenarios = ["qa/*.yaml"]
    """,
    "qa/lockout.yaml": """
        description: three wrong codes, through pcscd
        cards: [cps-roulette]
        steps:
          - verify: "0000"
            expect: {sw: 63C2, tries_left: 2}
    """,
    "test_card.py": """
        from cartesim.core.transport.pcsc import PcscTransport

        def test_a_card_in_a_reader(cps_card, cps_transport):
            assert isinstance(cps_transport, PcscTransport)
            cps_card.verify("1234")
    """,
}


def test_each_plugin_alone_through_pcscd(pcscd_free_slots: CardSession, tmp_path: Path) -> None:
    folder = project(tmp_path, FILES)
    for args in (("-p", "no:cartesim", "qa"), ("-p", "no:cartesim-scenarios", "test_card.py")):
        done = pytest_in(folder, "--cartesim-transport=pcsc", *args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert passed_failed(done.stdout) == {"passed": 1}, done.stdout
