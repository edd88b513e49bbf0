"""Mutation testing of the card's rules: mutmut on emulator/pin.py, emulator/cardos.py and
emulator/state.py, killed by the fast in-process tests that exercise them and a short fuzz run.

    python ci/mutation.py [--max-children N] [--min-score 95]    (tox -e mutation)

mutmut 3 names a mutant after the module its file path gives, and imports the mutated copy
from ``mutants/src``. The repository keeps the package's parts at its top (core/, emulator/,
harness/, installed as cartesim.* by package-dir), so this script stages an ordinary src layout
in build/mutation/ (src/cartesim/..., tests/, fixtures/, the mutmut settings below), runs
``mutmut run`` there, and prints the figure: mutants killed out of the total, each surviving
mutant named (``mutmut show NAME`` in build/mutation/ gives its diff). It exits 1 below the
minimum score. The survivors judged equivalent are listed, with why, in the README
(Reliability).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).parent / "mutmut"  # not python -m mutmut: it re-executes its main
STAGE = ROOT / "build" / "mutation"
MUTATED = ["emulator/pin.py", "emulator/cardos.py", "emulator/state.py"]
# The in-process tests that exercise these modules (CLI and e2e tests run the installed,
# unmutated cartesim in other processes: they could kill nothing here).
TESTS = [
    "tests/test_pin.py",
    "tests/test_cardos.py",
    "tests/test_state.py",
    "tests/test_ias.py",
    "tests/test_faults.py",
    "tests/test_model.py",
    "tests/test_vpcd.py",
    "tests/test_fuzz.py",
]
# test_fuzz's mutant tests rewrite methods from their source, which mutmut has replaced by
# trampolines: they prove the fuzzer's reach on the real code, not here.
DESELECT = "not test_fuzzer_catches_the_mutant and not test_the_unmutated_card_passes_the_same_run"


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def stage() -> None:
    """build/mutation/: the package in a src layout, the tests, the samples, the settings."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    package = STAGE / "src" / "cartesim"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src" / "cartesim", package, ignore=ignore)
    for part in ("core", "emulator", "harness"):
        shutil.copytree(ROOT / part, package / part, ignore=ignore)
    shutil.copytree(ROOT / "fixtures" / "cards", package / "emulator" / "samples", ignore=ignore)
    shutil.copytree(ROOT / "fixtures", STAGE / "fixtures", ignore=ignore)
    shutil.copytree(ROOT / "tests", STAGE / "tests", ignore=ignore)
    only = [f"src/cartesim/{m}" for m in MUTATED]
    (STAGE / "pyproject.toml").write_text(
        f"""[tool.mutmut]
source_paths = ["src"]
only_mutate = {_toml_list(only)}
also_copy = ["fixtures"]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "not e2e", "-k", {json.dumps(DESELECT)}]
pytest_add_cli_args_test_selection = {_toml_list(TESTS)}

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "--strict-markers"
markers = ["e2e: needs pcscd + vpcd (the pcsc transport)"]
"""
    )


def figures() -> tuple[dict[str, int], list[str]]:
    """mutmut's counts, and each mutant not killed with its status (survived, no tests...)."""
    mutmut = [str(MUTMUT)]
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=STAGE, check=True, stdout=subprocess.DEVNULL)
    stats = json.loads((STAGE / "mutants" / "mutmut-cicd-stats.json").read_text())
    listed = subprocess.run([*mutmut, "results"], cwd=STAGE, check=True, capture_output=True, text=True)
    alive = [line.strip() for line in listed.stdout.splitlines() if ": " in line and "timeout" not in line]
    return stats, alive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--min-score", type=float, default=95.0)
    args = parser.parse_args()
    stage()
    run = subprocess.run([str(MUTMUT), "run", "--max-children", str(args.max_children)], cwd=STAGE)
    if run.returncode:
        print(f"mutation: mutmut run failed (exit {run.returncode})", file=sys.stderr)
        return run.returncode
    stats, alive = figures()
    # A mutant whose tests time out (an endless loop) is caught too.
    killed, total = stats["killed"] + stats["timeout"], stats["total"]
    score = 100 * killed / total if total else 0.0
    print(f"mutation: {killed} of {total} mutants killed ({score:.1f} %) in {', '.join(MUTATED)}")
    print(
        f"  by {len(TESTS)} in-process test files and a short fuzz run; mutmut's counts: {json.dumps(stats)}"
    )
    print(f"  not killed ({len(alive)}; `mutmut show NAME` in {STAGE.relative_to(ROOT)} gives the diff):")
    for line in alive:
        print(f"    {line}")
    if score < args.min_score:
        print(f"mutation: below {args.min_score} %", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
