"""The wheel as someone else's project gets it: one import name, typed, with its samples and
schemas; installed alone in a fresh virtualenv (no compiler, no pyscard), it stays out of a
project that has its own ``core/`` package and its own ``fixtures/scenarios/*.yaml``, and the
README's pytest examples pass there as written."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import CARDS, ROOT, passed_failed, project, pytest_in, readme_test_modules


@contextmanager
def _once(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[Path, bool]]:
    """A folder shared by this run's pytest-xdist workers, and whether it still has to be made
    (under a lock: one worker makes it, the others wait and use it)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        folder = shared / name
        ready = folder / ".ready"
        yield folder, not ready.exists()
        ready.parent.mkdir(exist_ok=True)
        ready.touch()


def _run(*argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with _once(tmp_path_factory, "wheel") as (out, todo):
        if todo:
            _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, ROOT)
        (built,) = out.glob("cartesim-*.whl")
    return built


@pytest.fixture(scope="session")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh virtualenv with the wheel, pytest and hypothesis: nothing else of ours. Only
    binary packages (--only-binary :all:) and no C compiler (CC=false): plain `pip install
    cartesim` builds nothing."""
    with _once(tmp_path_factory, "venv") as (folder, todo):
        if todo:
            _run(sys.executable, "-m", "venv", folder)
            env = {**os.environ, "CC": "false", "CXX": "false", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
            env.pop("VIRTUAL_ENV", None)
            pip: list[str | Path] = [
                folder / "bin" / "python",
                "-m",
                "pip",
                "install",
                "-q",
                "--only-binary",
                ":all:",
            ]
            _run(*pip, wheel, "pytest", "hypothesis", env=env)
    return folder


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
        "cartesim/harness/cli/schema/cps.schema.json",
        "cartesim/harness/cli/schema/error.schema.json",
    ):
        assert needed in names
    samples = {
        Path(n).name for n in names if n.startswith("cartesim/emulator/samples/") and n.endswith(".yaml")
    }
    assert samples == {p.name for p in CARDS.glob("*.yaml")}
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt")
    assert b"cartesim = cartesim.harness.cli.main:main" in entry_points
    assert b"cartesim = cartesim.harness.pytest_plugin.fixtures" in entry_points
    assert b"cartesim-scenarios = cartesim.harness.pytest_plugin.scenarios" in entry_points
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in requires if "pyscard" in r] == ['Requires-Dist: pyscard>=2.0; extra == "pcsc"']


def test_python_m_cartesim() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cartesim", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith("cartesim, version ")


def test_plain_install_has_no_pyscard_and_says_what_needs_it(venv: Path) -> None:
    python = venv / "bin" / "python"
    assert (
        subprocess.run([python, "-c", "import smartcard"], capture_output=True, check=False).returncode == 1
    )
    cli = venv / "bin" / "cartesim"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARTESIM_", "PCSCLITE_"))}
    r = subprocess.run([cli, "readers"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert (r.returncode, r.stderr) == (
        3,
        "cartesim: pyscard n'est pas installé : pip install 'cartesim[pcsc]'\n",
    )
    r = subprocess.run(
        [cli, "cps", "verify"],
        input="1234\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (r.returncode, r.stdout) == (0, "Code porteur correct\n"), r.stderr


# Someone else's project: its own top-level `core` package, its own scenario files.
SCRATCH = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "core/__init__.py": "",
    "core/billing.py": """
        def fee(acts: int) -> int:
            return 25 * acts
    """,
    "fixtures/scenarios/checkout.yaml": """
        name: checkout
        steps: [add to cart, pay]
    """,
    "tests/test_billing.py": """
        from pathlib import Path

        import core.billing
        from core.billing import fee


        def test_our_core_is_ours():
            assert fee(2) == 50
            assert Path(core.billing.__file__).resolve().parent == Path("core").resolve()


        def test_our_scenarios_are_ours():
            assert "add to cart" in Path("fixtures/scenarios/checkout.yaml").read_text()


        def test_the_card_we_use_is_cartesim_s(cps_card):
            cps_card.verify("1234")
    """,
}


def test_a_scratch_project_is_unaffected_by_an_installed_cartesim(venv: Path, tmp_path: Path) -> None:
    folder = project(tmp_path, SCRATCH)
    done = pytest_in(folder, "-v", python=str(venv / "bin" / "python"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert passed_failed(done.stdout) == {"passed": 3}
    assert "checkout" not in done.stdout  # no scenario of cartesim's collected


def test_the_readme_pytest_examples_pass_in_a_fresh_venv(venv: Path, tmp_path: Path) -> None:
    modules = readme_test_modules()
    folder = project(tmp_path, {"pytest.ini": "[pytest]\n", **modules})
    done = pytest_in(folder, python=str(venv / "bin" / "python"))
    assert done.returncode == 0, done.stdout + done.stderr
    tests = sum(len(re.findall(r"^def test_", m, re.M)) for m in modules.values())
    assert passed_failed(done.stdout) == {"passed": tests}
