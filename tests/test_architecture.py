"""The import direction of docs/architecture.md, checked on the source (not on a diagram).

Every module is named as installed: core/x.py is ``cartesim.core.x``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

LAYERS = ("core", "emulator", "harness")
# The engine's modules the emulator may use: stdlib only, shared by both sides.
CORE_LEAVES = {
    "cartesim.core.apdu",
    "cartesim.core.sw",
    "cartesim.core.tlv",
    "cartesim.core.layout",
    "cartesim.core.atr",
    "cartesim.core.codes",
    "cartesim.core.errors",
    "cartesim.core.pins",
    "cartesim.core.strict_json",
}


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return "cartesim." + ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return out


def _sources(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


def _in(name: str, *modules: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


ALL = [p for layer in LAYERS for p in _sources(layer)]


def _id(p: Path) -> str:
    return str(p.relative_to(ROOT))


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_first_party_imports_use_the_one_name(path: Path) -> None:
    for name in _imports(path):
        assert name.split(".")[0] not in LAYERS, f"{_id(path)} imports {name}: write cartesim.{name}"


@pytest.mark.parametrize("path", _sources("emulator"), ids=_id)
def test_emulator_uses_only_core_leaves(path: Path) -> None:
    for name in _imports(path):
        if _in(name, "cartesim.core"):
            assert name == "cartesim.core" or _in(name, *CORE_LEAVES), f"{_id(path)} imports {name}"
        assert not _in(name, "cartesim.harness"), f"{_id(path)} imports {name}"


@pytest.mark.parametrize("path", _sources("core"), ids=_id)
def test_core_never_imports_emulator_or_harness(path: Path) -> None:
    for name in _imports(path):
        assert not _in(name, "cartesim.emulator", "cartesim.harness"), f"{_id(path)} imports {name}"


@pytest.mark.parametrize("leaf", sorted(CORE_LEAVES))
def test_core_leaves_use_only_the_stdlib_and_each_other(leaf: str) -> None:
    path = ROOT / (leaf.removeprefix("cartesim.").replace(".", "/") + ".py")
    for name in _imports(path):
        if _in(name, "cartesim", "smartcard", "yaml", "pydantic", "click", "pytest", "hypothesis"):
            assert name == "cartesim.core" or _in(name, *CORE_LEAVES), f"{leaf} imports {name}"


def test_pyscard_only_in_the_pcsc_transport() -> None:
    for path in ALL:
        if any(_in(n, "smartcard") for n in _imports(path)):
            assert _id(path) == "core/transport/pcsc.py", f"{_id(path)} imports pyscard"


def test_rooms_of_the_harness() -> None:
    """The harness is sub-packages, one per concept; only the strategies stand alone."""
    loose = sorted(p.name for p in (ROOT / "harness").glob("*.py") if p.name != "__init__.py")
    assert loose == ["strategies.py"]
