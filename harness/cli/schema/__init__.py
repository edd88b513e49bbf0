"""The JSON Schemas of cartesim's ``--json`` outputs, shipped in the package (docs/json.md).

Every ``--json`` output is an object whose ``format`` names its schema: ``cartesim-cps/1`` is
``cps.schema.json`` here. Under ``--json`` an error is a ``cartesim-error/1`` object.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

_PACKAGE = "cartesim.harness.cli.schema"


def format_name(what: str) -> str:
    """The ``format`` value of an output: ``cps`` -> ``cartesim-cps/1``."""
    return f"cartesim-{what}/1"


def names() -> list[str]:
    """Every output with a schema: ``cps``, ``vitale``, ``error``…"""
    return sorted(
        p.name.removesuffix(".schema.json")
        for p in files(_PACKAGE).iterdir()
        if p.name.endswith(".schema.json")
    )


def load(what: str) -> dict[str, Any]:
    """The schema of an output, by name (``cps``) or by format (``cartesim-cps/1``)."""
    name = what.removeprefix("cartesim-").removesuffix("/1")
    schema: dict[str, Any] = json.loads((files(_PACKAGE) / f"{name}.schema.json").read_text(encoding="utf-8"))
    return schema
