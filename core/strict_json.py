"""JSON from what cartesim does not write itself (state files, traces, control requests): the one
reader, with the limits that keep a hostile input from costing time or a traceback."""

from __future__ import annotations

import json
from typing import Any


class BadJson(ValueError):
    """Not JSON, or JSON cartesim refuses; ``problem`` is one line that echoes no value."""

    def __init__(self, problem: str, *, syntax: bool = False, detail: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.syntax = syntax  # not JSON at all (as opposed to JSON refused)
        self.detail = detail or problem  # a syntax error's message, without its position


def loads(text: str | bytes, *, max_digits: int) -> Any:
    """Parse ``text``. Integers longer than ``max_digits`` digits are refused before Python
    converts them (a 5,000-digit number costs time and raises deep inside ``int``), so are
    NaN and Infinity, and nesting deep enough for a ``RecursionError``."""

    def short_int(digits: str) -> int:
        if len(digits.lstrip("-")) > max_digits:
            raise BadJson(f"a number longer than {max_digits} digits")
        return int(digits)

    def no_constant(name: str) -> Any:
        raise BadJson(f"{name} is not a number")

    try:
        return json.loads(text, parse_int=short_int, parse_constant=no_constant)
    except BadJson:
        raise
    except UnicodeDecodeError:
        raise BadJson("not UTF-8 text", syntax=True) from None
    except json.JSONDecodeError as e:
        raise BadJson(f"{e.msg}, line {e.lineno}", syntax=True, detail=e.msg) from None
    except RecursionError:
        raise BadJson("nested too deep") from None
