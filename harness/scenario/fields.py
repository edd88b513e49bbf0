"""Report fields by name, for ``expect: {fields: ...}``: ``nom``, ``situations[0].code_specialite``.

The card holder's fields (the professional on a CPS, the insured person on a Vitale) are named
bare; lists are indexed from 0, and a list's own name gives its length (``situations: 2``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
import typing
from typing import Any

from cartesim.core.atr import CardKind
from cartesim.core.cps import CpsData, CpsHolder, CpsSituation
from cartesim.core.vitale import Beneficiary, Insured, VitaleData

_INDEX = re.compile(r"\[\d+\]")
_KEY = re.compile(r"^[a-z0-9_]+(\[\d+\])?(\.[a-z0-9_]+(\[\d+\])?)*$")


def _names(cls: type, prefix: str = "") -> set[str]:
    """Every field name of a report dataclass, a list's items as ``name[].field``."""
    hints = typing.get_type_hints(cls)
    out: set[str] = set()
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        out.add(name)
        hint = hints[f.name]
        if typing.get_origin(hint) is tuple:
            out |= _names(typing.get_args(hint)[0], f"{name}[].")
    return out


KNOWN: dict[CardKind, frozenset[str]] = {
    CardKind.CPS: frozenset(_names(CpsHolder) | {"situations"} | _names(CpsSituation, "situations[].")),
    CardKind.VITALE: frozenset(_names(Insured) | {"beneficiaires"} | _names(Beneficiary, "beneficiaires[].")),
}


def check_key(key: str, kind: CardKind) -> str | None:
    """None if ``key`` names a field of a ``kind`` report, else the problem in a few words."""
    if not _KEY.match(key):
        return "not a field name (e.g. nom, situations[0].code_specialite)"
    generic = _INDEX.sub("[]", key)
    if generic in KNOWN[kind]:
        return None
    close = difflib.get_close_matches(generic, sorted(KNOWN[kind]), n=1)
    hint = f" (did you mean {close[0].replace('[]', '[0]')!r}?)" if close else ""
    return f"no such field in a {kind.value} report{hint}"


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _flatten(f"{prefix}.{f.name}" if prefix else f.name, getattr(value, f.name), out)
    elif isinstance(value, tuple):
        out[prefix] = str(len(value))
        for i, item in enumerate(value):
            _flatten(f"{prefix}[{i}]", item, out)
    elif isinstance(value, dt.date):
        out[prefix] = value.isoformat()
    else:
        out[prefix] = str(value)


def fields_of(data: CpsData | VitaleData) -> dict[str, str]:
    """Every field of a read, by the names ``check_key`` accepts."""
    out: dict[str, str] = {}
    if isinstance(data, CpsData):
        _flatten("", data.holder, out)
        _flatten("situations", data.situations, out)
    else:
        _flatten("", data.assure, out)
        _flatten("beneficiaires", data.beneficiaires, out)
    return out
