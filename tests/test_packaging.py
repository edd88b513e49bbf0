"""The wheel: one import name, typed, with its samples and schema; `python -m cartesim` runs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import CARDS, ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("cartesim-*.whl")
    return built


def test_the_wheel_holds_one_import_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"cartesim"}
    for needed in (
        "cartesim/py.typed",
        "cartesim/__main__.py",
        "cartesim/core/cps.py",
        "cartesim/emulator/cardos.py",
        "cartesim/harness/cli/main.py",
        "cartesim/emulator/schema/profile.schema.json",
    ):
        assert needed in names
    samples = {
        Path(n).name for n in names if n.startswith("cartesim/emulator/samples/") and n.endswith(".yaml")
    }
    assert samples == {p.name for p in CARDS.glob("*.yaml")}
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    )
    assert b"cartesim = cartesim.harness.cli.main:main" in entry_points
    assert b"cartesim.harness.pytest_plugin" in entry_points


def test_python_m_cartesim() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cartesim", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith("cartesim, version ")
