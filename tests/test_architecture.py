"""The dependency rules of design.md §2, checked on the source (not on a diagram)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

CORE_LEAVES = {"core.apdu", "core.sw", "core.tlv", "core.layout", "core.atr", "core.codes", "core.errors"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("emulator"), ids=lambda p: str(p.relative_to(ROOT)))
def test_emulator_uses_only_core_leaves(path: Path) -> None:
    for name in _imports(path):
        if name.startswith("core"):
            assert (
                name in CORE_LEAVES
                or name == "core"
                or any(name.startswith(leaf + ".") for leaf in CORE_LEAVES)
            ), f"{path.name} imports {name}"
        assert not name.startswith("harness"), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _modules("core"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_emulator_or_harness(path: Path) -> None:
    for name in _imports(path):
        assert not name.startswith(("emulator", "harness")), f"{path.name} imports {name}"


def test_core_leaves_use_only_the_stdlib_and_each_other() -> None:
    for leaf in CORE_LEAVES:
        path = ROOT / (leaf.replace(".", "/") + ".py")
        for name in _imports(path):
            if name.split(".")[0] in {
                "core",
                "emulator",
                "harness",
                "smartcard",
                "yaml",
                "pydantic",
                "click",
            }:
                assert name in CORE_LEAVES or name == "core" or name.rsplit(".", 1)[0] in CORE_LEAVES, (
                    f"{leaf} imports {name}"
                )


def test_pyscard_only_where_pcsc_is_used() -> None:
    allowed = {"core/transport/pcsc.py", "harness/pcscd.py"}
    for package in ("core", "emulator", "harness"):
        for path in _modules(package):
            rel = str(path.relative_to(ROOT))
            if any(n.startswith("smartcard") for n in _imports(path)):
                assert rel in allowed, f"{rel} imports pyscard"
