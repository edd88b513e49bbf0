"""Untrusted input in one line: the first of pydantic's errors as an InputError naming the file,
the place in it (``situations[0].zone_ik``) and the problem. Profiles, state files and scenarios
all report their errors through here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from pydantic import ValidationError

from cartesim.core.errors import InputError

# A caller's own wording for an error it knows better (None: the plain message).
Explain = Callable[[Any], str | None]


def place(loc: tuple[int | str, ...], skip: Collection[str] = ()) -> str:
    """``('situations', 0, 'zone_ik')`` as ``situations[0].zone_ik``; ``skip``: names at the top
    that are noise (the branch names of a discriminated union)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not out and part in skip:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top)"


def plain_message(err: Any) -> str:
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def one_line(
    e: ValidationError, source: str, *, skip: Collection[str] = (), explain: Explain | None = None
) -> InputError:
    """The first error of ``e`` (and how many more) as one InputError."""
    errors = e.errors()
    first = errors[0]
    message = (explain(first) if explain else None) or plain_message(first)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InputError(source, place(first["loc"], skip), message + more)
