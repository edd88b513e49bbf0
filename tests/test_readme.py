"""The README's Python examples are tests: run as written, in a project of their own."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import (
    passed_failed,
    project,
    pytest_in,
    readme_pcsc_examples,
    readme_pkcs11_examples,
    readme_python_blocks,
    readme_test_modules,
)


def test_every_python_block_of_the_readme_is_run_somewhere() -> None:
    blocks = readme_python_blocks()
    assert len(blocks) >= 3
    covered = (
        set(readme_test_modules().values()) | set(readme_pcsc_examples()) | set(readme_pkcs11_examples())
    )
    assert [b for b in blocks if b not in covered] == []
    assert len(readme_pcsc_examples()) == 1  # run through pcscd: tests/e2e/test_readme_pcsc.py
    assert len(readme_pkcs11_examples()) == 1  # and tests/e2e/test_opensc_pcsc.py


def test_the_readme_pytest_examples_pass_as_written(tmp_path: Path) -> None:
    modules = readme_test_modules()
    tests = sum(len(re.findall(r"^def test_", m, re.M)) for m in modules.values())
    folder = project(tmp_path, {"pytest.ini": "[pytest]\n", **modules})
    done = pytest_in(folder, "-v")
    assert done.returncode == 0, done.stdout + done.stderr
    assert passed_failed(done.stdout) == {"passed": tests}
