"""YAML loading for untrusted input files: a bounded regular file, UTF-8, no aliases, no duplicate
keys, bounded nesting, and every value that cannot be built refused in one line that names its
line and never echoes the value (it may be a code)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

from cartesim.core.errors import InputError
from cartesim.emulator.files import read_file

MAX_BYTES = 1 << 20  # profiles and scenarios are a few KiB; refuse big files before parsing
MAX_DEPTH = 32  # profiles nest 4 levels deep; far below Python's recursion limit
MAX_INT = 2**63  # no field of a profile or scenario holds a larger number

# What a failed constructor raises, by tag: the built-in messages repeat the value, so they are
# replaced; a date's message is only about the calendar (day out of range, month 1..12).
_KINDS = {
    "tag:yaml.org,2002:int": "not a valid whole number, or one too long",
    "tag:yaml.org,2002:float": "not a valid number",
    "tag:yaml.org,2002:bool": "not a valid boolean (true or false)",
    "tag:yaml.org,2002:timestamp": "not a valid date",
}
_BUILD_ERRORS = (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError)
QUOTE_IT = "write it quoted"


class PlainInt(int):
    """A whole number read from an unquoted scalar, with the text as written (``text``): YAML 1.1
    reads 0000021520 as the octal 9040, 1:30 as 90, 1_000 as 1000; a field of text must know."""

    text: str


class PlainFloat(float):
    text: str


def as_text(value: object, width: int = 0) -> str:
    """The text a field of text takes from a YAML value. A string as is; an unquoted number only
    if YAML read it as written (``20``, not ``0020``, ``0x14`` or ``1:30``), zero-padded to
    ``width`` digits for a code (so ``02`` and ``2`` are both "02"); anything else YAML turned into
    something else (a boolean from yes/no/on/off, a date, a changed number) is refused —
    ValueError, saying to quote it, never echoing the value (it may be a code)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise ValueError(f"YAML reads this unquoted word as true or false: {QUOTE_IT}")
    if isinstance(value, int | float):
        text = str(value).zfill(width) if isinstance(value, int) else str(value)
        written = getattr(value, "text", text)
        if written not in (text, str(value)):
            raise ValueError(f"{_how_yaml_reads(written)}: {QUOTE_IT}")
        return text
    if isinstance(value, dt.date):
        raise ValueError(f"YAML reads this unquoted value as a date: {QUOTE_IT}")
    raise ValueError("expected text")


def _how_yaml_reads(written: str) -> str:
    """What YAML 1.1 did to an unquoted number, without repeating it."""
    if ":" in written:
        return "YAML reads an unquoted number with ':' in base 60"
    if written.lstrip("+-")[:2].lower() in ("0x", "0o", "0b"):
        return "YAML reads an unquoted 0x, 0o or 0b number in another base"
    if "_" in written:
        return "YAML drops the '_' of an unquoted number"
    return "YAML drops the leading zeros of an unquoted number, and may read it in octal"


class _Loader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases (no alias bombs), with duplicate and non-scalar keys
    refused, nesting bounded, and constructor failures turned into marked YAML errors."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConstructorError(None, None, "aliases are not allowed", event.start_mark)
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise ConstructorError(None, None, "anchors are not allowed", event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise ConstructorError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            value = super().construct_object(node, deep=deep)
        except _BUILD_ERRORS as e:
            problem = _KINDS.get(node.tag, "a value that cannot be built")
            if node.tag == "tag:yaml.org,2002:timestamp" and isinstance(e, ValueError):
                problem += f" ({e})"  # "day is out of range for month": the calendar, not the value
            raise ConstructorError(None, None, problem, node.start_mark) from None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_INT:
            raise ConstructorError(None, None, "whole number too large", node.start_mark)
        if isinstance(node, ScalarNode) and node.style is None and type(value) in (int, float):
            plain: PlainInt | PlainFloat = (PlainInt if isinstance(value, int) else PlainFloat)(value)
            plain.text = node.value
            return plain
        return value

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, "expected a mapping", node.start_mark)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode):
                raise ConstructorError(
                    None, None, "a key must be a plain value, not a list or a mapping", key_node.start_mark
                )
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: Any) -> Any:
        """A date-looking scalar that is no date (2025-02-30, month 13) stays text: the schema
        then names the field and the problem, in one line."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def load_yaml(path: Path | str) -> dict[str, Any]:
    """The mapping at the top of a YAML file, or InputError with a one-line reason."""
    source = str(path)
    try:
        raw = read_file(path, MAX_BYTES)
    except FileNotFoundError as e:
        raise InputError(source, "", e.strerror or "no such file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(source, "", f"not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise InputError(source, "", "empty file")
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}" if mark else ""
        raise InputError(source, where, f"invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise InputError(source, "", f"invalid YAML: {e}") from None
    except (*_BUILD_ERRORS, RecursionError):
        # A tag on a node of the wrong shape (``!!map [1]``): the message would repeat the value.
        raise InputError(source, "", "invalid YAML: a tagged value of the wrong kind") from None
    if data is None:
        raise InputError(source, "", "empty file")
    if not isinstance(data, dict):
        raise InputError(source, "", "the file must hold a mapping (key: value) at the top")
    return data
