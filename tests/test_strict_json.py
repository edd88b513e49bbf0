"""The one reader of JSON cartesim does not write itself (state files, traces, control requests)."""

from __future__ import annotations

import pytest

from cartesim.core import strict_json


def test_plain_json_is_read() -> None:
    assert strict_json.loads(b'{"a": [1, -22, 3.5, "x", null]}', max_digits=2) == {
        "a": [1, -22, 3.5, "x", None]
    }


@pytest.mark.parametrize(
    ("text", "problem", "syntax"),
    [
        ("1" * 5000, "a number longer than 9 digits", False),
        ("-" + "9" * 10, "a number longer than 9 digits", False),
        ("[NaN]", "NaN is not a number", False),
        ("-Infinity", "-Infinity is not a number", False),
        ("[" * 100_000, "nested too deep", False),
        (b"\xff\xfe{", "not UTF-8 text", True),
        ('{"a": }', "Expecting value, line 1", True),
    ],
)
def test_refusals_are_one_line_and_echo_nothing(text: str | bytes, problem: str, syntax: bool) -> None:
    with pytest.raises(strict_json.BadJson) as e:
        strict_json.loads(text, max_digits=9)
    assert e.value.problem == problem and str(e.value) == problem
    assert e.value.syntax is syntax
    assert "\n" not in problem and "99999" not in problem and "11111" not in problem


def test_a_syntax_error_keeps_its_message_without_position() -> None:
    with pytest.raises(strict_json.BadJson) as e:
        strict_json.loads('{"a": }', max_digits=9)
    assert e.value.detail == "Expecting value"
