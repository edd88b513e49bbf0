"""The pytest plugins in someone else's project: out of the way until used, each one alone,
scenario files only where the project opts in, documented fixtures (pytest run as a process)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import passed_failed, pytest_in
from tests.helpers import project as make_project

HEAVY = ("pydantic", "yaml", "smartcard", "hypothesis", "cartesim.emulator", "cartesim.harness.scenario")

NOTHING_HEAVY = f"""
    import sys

    def test_nothing_heavy_was_imported():
        heavy = {HEAVY!r}
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy or m.startswith(heavy))
        assert loaded == []
"""

# A project of its own: its own fixtures/scenarios/*.yaml, which are no cartesim scenarios.
OWN_SCENARIOS = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "fixtures/scenarios/checkout.yaml": """
        name: checkout
        steps: [add to cart, pay]
    """,
    "tests/test_own.py": """
        from pathlib import Path

        import yaml

        def test_own_scenarios_are_ours():
            doc = yaml.safe_load(Path("fixtures/scenarios/checkout.yaml").read_text())
            assert doc["steps"] == ["add to cart", "pay"]
    """,
}

CARD_TEST = """
    from cartesim.core.cps import CpsCard

    def test_a_card(cps_card):
        assert isinstance(cps_card, CpsCard)
        cps_card.verify("1234")
"""

SCENARIO = """
    description: three wrong codes
    cards: [cps-roulette]
    steps:
      - verify: "0000"
        expect: {sw: 63C2, tries_left: 2}
"""


def test_the_plugins_import_nothing_heavy_at_pytest_start(tmp_path: Path) -> None:
    folder = make_project(tmp_path, {"pytest.ini": "[pytest]\n", "test_light.py": NOTHING_HEAVY})
    for args in ((), ("--cartesim-transport=direct",)):
        done = pytest_in(folder, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert passed_failed(done.stdout) == {"passed": 1}


def test_heavy_modules_come_with_the_first_fixture(tmp_path: Path) -> None:
    folder = make_project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "test_card.py": CARD_TEST
            + """
    import sys

    def test_then_the_emulator_is_there(cps_card):
        assert "cartesim.emulator" in sys.modules
""",
        },
    )
    done = pytest_in(folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert passed_failed(done.stdout) == {"passed": 2}


def test_a_project_with_its_own_scenario_files_is_unaffected(tmp_path: Path) -> None:
    folder = make_project(tmp_path, OWN_SCENARIOS)
    done = pytest_in(folder, "-v")
    assert done.returncode == 0, done.stdout + done.stderr
    assert passed_failed(done.stdout) == {"passed": 1}
    assert "checkout" not in done.stdout


def test_a_project_that_opts_in_gets_its_scenarios_collected(tmp_path: Path) -> None:
    folder = make_project(
        tmp_path,
        {
            "pyproject.toml": """
                [tool.pytest.ini_options]
                testpaths = ["tests"]
                cartesim_scenarios = ["qa/*.yaml"]
            """,
            "qa/lockout.yaml": SCENARIO,
            "tests/test_card.py": CARD_TEST,
        },
    )
    done = pytest_in(folder, "-v")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lockout.yaml::lockout PASSED" in done.stdout
    assert passed_failed(done.stdout) == {"passed": 2}
    # Or for one run, without the ini key:
    bare = make_project(tmp_path / "bare", {"pytest.ini": "[pytest]\n", "qa/lockout.yaml": SCENARIO})
    done = pytest_in(bare, "--cartesim-scenarios", "qa/*.yaml", "qa")
    assert passed_failed(done.stdout) == {"passed": 1}, done.stdout + done.stderr


def test_each_plugin_works_alone(tmp_path: Path) -> None:
    folder = make_project(
        tmp_path,
        {
            "pyproject.toml": """
                [tool.pytest.ini_options]
                cartesim_scenarios = ["qa/*.yaml"]
            """,
            "qa/lockout.yaml": SCENARIO,
            "test_card.py": CARD_TEST,
        },
    )
    only_scenarios = pytest_in(folder, "-p", "no:cartesim", "--cartesim-transport=direct", "qa")
    assert only_scenarios.returncode == 0, only_scenarios.stdout + only_scenarios.stderr
    assert passed_failed(only_scenarios.stdout) == {"passed": 1}
    only_fixtures = pytest_in(folder, "-p", "no:cartesim-scenarios", "--cartesim-transport=direct")
    assert only_fixtures.returncode == 0, only_fixtures.stdout + only_fixtures.stderr
    assert passed_failed(only_fixtures.stdout) == {"passed": 1}  # the test; the scenario plugin is off
    without_fixtures = pytest_in(folder, "-p", "no:cartesim", "test_card.py")
    assert "fixture 'cps_card' not found" in without_fixtures.stdout


PUBLIC = {
    "cartesim",
    "cps_card",
    "vitale_card",
    "cps_transport",
    "vitale_transport",
    "emulated_cps",
    "emulated_vitale",
    "apdu_trace",
    "pcscd_free_slots",
}


def _plugin_fixtures(listing: str) -> dict[str, str]:
    """Each fixture of cartesim's plugin in a ``pytest --fixtures`` listing, with its docstring."""
    section = listing.split("fixtures defined from cartesim.harness.pytest_plugin.fixtures", 1)[1]
    section = re.split(r"\n-+ fixtures defined from ", section, maxsplit=1)[0]
    found: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", section.split("\n", 1)[1].strip()):
        head, _, doc = block.partition("\n")
        found[head.split(" ")[0]] = doc.strip()
    return found


def test_every_public_fixture_is_documented_and_internal_ones_are_hidden(tmp_path: Path) -> None:
    folder = make_project(tmp_path, {"pytest.ini": "[pytest]\n"})
    listed = _plugin_fixtures(pytest_in(folder, "--fixtures").stdout)
    assert set(listed) == PUBLIC
    assert all(doc and doc != "no docstring available" for doc in listed.values()), listed
    everything = _plugin_fixtures(pytest_in(folder, "--fixtures", "-v").stdout)
    assert set(everything) - PUBLIC == {"_cartesim_session"}  # internal: shown with -v only
